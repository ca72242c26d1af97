"""Registry of data generators: ``name -> (config class, generator class)``.

>>> from divplugin.generators import create
>>> gen = create("markov_rewrite", num_rules=100, num_examples=1000, seed=1)
>>> gen.score_answer(gen[0]["output"], gen[0])
1.0
"""

from __future__ import annotations

from typing import Any

from divplugin.generators.base import SPLITS, Generator, GeneratorConfig

# each generator module registers its class (``@register_generator``) when it is imported
from divplugin.generators.markov_program import MarkovProgram
from divplugin.generators.markov_rewrite import MarkovRewrite
from divplugin.generators.registry import generator_names, get_generator_class, register_generator
from divplugin.generators.settings import make_config


def create(name: str, config: GeneratorConfig | None = None, **settings: Any) -> Generator:
    """A generator by name, from a config object or keyword settings."""
    cls = get_generator_class(name)
    if config is None:
        config = make_config(name, settings)
        return cls(config)
    return cls(config, **settings)


__all__ = [
    "SPLITS",
    "Generator",
    "GeneratorConfig",
    "MarkovProgram",
    "MarkovRewrite",
    "create",
    "generator_names",
    "get_generator_class",
    "make_config",
    "register_generator",
]
