"""Registry of data generators: ``name -> (config class, generator class)``.

>>> from divplugin.generators import create
>>> gen = create("markov_rewrite", num_rules=100, num_examples=1000, seed=1)
>>> gen.score_answer(gen[0]["output"], gen[0])
1.0
"""

from __future__ import annotations

from typing import Any

from divplugin.errors import ConfigError, did_you_mean
from divplugin.generators.base import SPLITS, Generator, GeneratorConfig
from divplugin.generators.settings import make_config

_REGISTRY: dict[str, type[Generator]] = {}


def register_generator(cls: type[Generator]) -> type[Generator]:
    """Class decorator (or call) adding a generator to the registry under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a generator named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def generator_names() -> list[str]:
    return sorted(_REGISTRY)


def get_generator_class(name: str) -> type[Generator]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r}{did_you_mean(name, _REGISTRY)} Available: {', '.join(generator_names())}", "generator") from None


def create(name: str, config: GeneratorConfig | None = None, **settings: Any) -> Generator:
    """A generator by name, from a config object or keyword settings."""
    cls = get_generator_class(name)
    if config is None:
        config = make_config(name, settings)
        return cls(config)
    return cls(config, **settings)


from divplugin.generators.markov_program import MarkovProgram  # noqa: E402
from divplugin.generators.markov_rewrite import MarkovRewrite  # noqa: E402

register_generator(MarkovRewrite)
register_generator(MarkovProgram)

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
