"""Generator configuration, in one place: a generator's validated config from a name, a
preset, layers of settings (files, plugin keys, spec entries) and ``--name value`` overrides.

>>> from divplugin.generators.settings import resolve_generator
>>> name, config = resolve_generator(None, "cpu-small", [("settings", {"num_rules": 50})])
>>> name, config.num_rules
('markov_rewrite', 50)
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Union

import yaml

from divplugin.core.yamlconf import config_from_dict
from divplugin.errors import ConfigError, did_you_mean

if typing.TYPE_CHECKING:
    from divplugin.generators.base import GeneratorConfig


def make_config(name: str, settings: dict[str, Any] | None = None) -> GeneratorConfig:
    """A validated config for generator ``name`` (errors name the offending key)."""
    from divplugin.generators.registry import get_generator_class

    cls = get_generator_class(name)
    return config_from_dict(cls.config_class, dict(settings or {}), name)


def _is_plain_str(annotation: Any) -> bool:
    return annotation is str


def _list_only(annotation: Any) -> bool:
    """True for ``list[...]`` and ``Optional[list[...]]``, whose values are always lists."""
    kinds = (
        [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) in (Union, types.UnionType)
        else [annotation]
    )
    return bool(kinds) and all(typing.get_origin(a) is list for a in kinds)


def parse_value(raw: str, annotation: Any) -> Any:
    """A command-line value for a field: strings stay as typed, the rest is read as YAML
    (``3``, ``0.5``, ``[3, 6]``); ``a,b,c`` is a list, and so is a single ``a`` for a list field."""
    if _is_plain_str(annotation):
        return raw
    if "," in raw and not raw.lstrip().startswith(("[", "{")):
        raw = f"[{raw}]"
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return [value] if _list_only(annotation) and value is not None and not isinstance(value, list) else value


def parse_overrides(args: list[str], config_class: type, where: str) -> dict[str, Any]:
    """``--field value``, ``--field=value`` and ``--set field=value`` pairs to a settings dict."""
    fields = config_class.__pydantic_fields__  # type: ignore[attr-defined]
    hints = typing.get_type_hints(config_class)
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--set":
            if i + 1 >= len(args) or "=" not in args[i + 1]:
                raise ConfigError("expects KEY=VALUE", "--set")
            key, raw = args[i + 1].split("=", 1)
            i += 2
        elif arg.startswith("--"):
            key = arg[2:]
            if "=" in key:
                key, raw = key.split("=", 1)
                i += 1
            else:
                if i + 1 >= len(args):
                    raise ConfigError("expects a value", arg)
                raw = args[i + 1]
                i += 2
        else:
            raise ConfigError(f"unexpected argument {arg!r}; settings are given as --name value", "arguments")
        name = key.replace("-", "_")
        if name not in fields:
            hint = did_you_mean(name, fields, show=lambda c: "--" + c.replace("_", "-"))
            raise ConfigError(f"unknown setting for {where}{hint} (see 'divplugin generators {where}')", f"--{key}")
        out[name] = parse_value(raw, hints.get(name))
    return out


def resolve_generator(
    generator: str | None = None,
    preset: str | None = None,
    layers: Sequence[tuple[str, dict[str, Any]]] = (),
    overrides: Sequence[str] = (),
):
    """(name, validated config) from a generator name, a preset and further layers of
    settings, later layers winning; ``overrides`` are ``--name value`` command-line pairs.

    Each layer is ``(where, settings)``; a ``generator:`` key in a layer must agree with
    the generator named so far."""
    from divplugin.generators.presets import load_preset
    from divplugin.generators.registry import get_generator_class

    stack = [(f"preset {preset}", load_preset(preset))] if preset else []
    settings: dict[str, Any] = {}
    name = generator
    for where, layer in [*stack, *layers]:
        layer = dict(layer or {})
        layer_gen = layer.pop("generator", None)
        if name and layer_gen and layer_gen != name:
            raise ConfigError(f"generator {name!r} was named, but {where} is for generator {layer_gen!r}", "generator")
        name = name or layer_gen
        settings.update(layer)
    if not name:
        raise ConfigError("name a generator (e.g. markov_rewrite) or a preset", "generator")
    if overrides:
        settings.update(parse_overrides(list(overrides), get_generator_class(name).config_class, name))
    return name, make_config(name, settings)
