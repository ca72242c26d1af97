"""Built-in generator settings for the paper's experiments (``divplugin presets``)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from divplugin.errors import ConfigError, did_you_mean


def preset_names() -> list[str]:
    from divplugin.core.yamlconf import builtin_names

    return builtin_names("divplugin.generators", "presets")


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise ConfigError(
            f"unknown preset {name!r}{did_you_mean(name, preset_names())} Available: {', '.join(preset_names())}",
            "preset",
        )
    return resources.files(__name__).joinpath(f"{name}.yaml").read_text()


def load_preset(name: str) -> dict[str, Any]:
    """The settings of preset ``name`` (including its ``generator:``)."""
    return yaml.safe_load(preset_text(name))


def preset_summary(name: str) -> str:
    """The first comment line of a preset."""
    for line in preset_text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
