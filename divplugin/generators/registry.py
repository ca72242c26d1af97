"""The registry of generators: ``name -> generator class``. A generator module registers its
class with ``@register_generator`` (the package imports its own); a plugin's module does the same."""

from __future__ import annotations

from divplugin.errors import ConfigError, did_you_mean
from divplugin.generators.base import Generator

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
        raise ConfigError(
            f"unknown generator {name!r}{did_you_mean(name, _REGISTRY)} Available: {', '.join(generator_names())}",
            "generator",
        ) from None
