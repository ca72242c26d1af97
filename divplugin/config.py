"""Loading generator settings from YAML files and command-line overrides."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml

from divplugin.errors import ConfigError, did_you_mean


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; clear errors for a missing file, bad YAML or a non-mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist", "config")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}", "config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of settings, not {type(data).__name__}", "config")
    return data


def _is_plain_str(annotation: Any) -> bool:
    return annotation is str


def parse_value(raw: str, annotation: Any) -> Any:
    """A command-line value for a field: strings stay as typed, the rest is read as YAML
    (``3``, ``0.5``, ``[3, 6]``); ``a,b,c`` is a list."""
    if _is_plain_str(annotation):
        return raw
    if "," in raw and not raw.lstrip().startswith(("[", "{")):
        raw = f"[{raw}]"
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def parse_overrides(args: list[str], config_class: type, where: str) -> dict[str, Any]:
    """``--field value``, ``--field=value`` and ``--set field=value`` pairs to a settings dict."""
    fields = config_class.__pydantic_fields__
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


def resolve_generator(generator: str | None = None, preset: str | None = None,
                      layers: list[tuple[str, dict[str, Any]]] = (), overrides: list[str] = ()):
    """(name, validated config) from a generator name, a preset and further layers of
    settings, later layers winning; ``overrides`` are ``--name value`` command-line pairs.

    Each layer is ``(where, settings)``; a ``generator:`` key in a layer must agree with
    the generator named so far."""
    from divplugin.generators import get_generator_class, make_config
    from divplugin.presets import load_preset

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


def validate_mapping(model: type, data: Any, where: str) -> Any:
    """``model(**data)`` for a pydantic model; a non-mapping or invalid value raises ConfigError
    naming ``where`` and the field at fault."""
    import pydantic

    if not isinstance(data, dict):
        raise ConfigError(f"must be a mapping, not {type(data).__name__}", where)
    try:
        return model(**data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{loc + ': ' if loc else ''}{msg}", where) from None


def builtin_names(package: str, folder: str) -> list[str]:
    """Names of the ``*.yaml`` files shipped in ``package``'s ``folder``."""
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files(package).joinpath(folder).iterdir() if p.name.endswith(".yaml"))


def load_builtin_or_file(name_or_path: str | Path, package: str, folder: str, kind: str) -> tuple[Any, str, Path | None]:
    """(parsed YAML, where, file path or None) for a built-in ``kind`` by name or a YAML file;
    errors name the file or suggest the closest built-in."""
    from importlib import resources

    path = Path(name_or_path)
    # a file path (a .yaml name, or a file that exists); a folder that happens to share a
    # built-in's name (e.g. an experiment's output folder) does not hide the built-in
    if path.suffix in (".yaml", ".yml") or path.is_file() or (path.is_dir() and str(name_or_path) not in
                                                              builtin_names(package, folder)):
        if not path.is_file():
            raise ConfigError(f"{path} does not exist" if not path.exists() else f"{path} is a folder, not a YAML file", "spec")
        text, where, found = path.read_text(), str(path), path
    else:
        name, names = str(name_or_path), builtin_names(package, folder)
        if name not in names:
            raise ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, names)} Built-in: {', '.join(names)}", "spec")
        text, where, found = resources.files(package).joinpath(folder, f"{name}.yaml").read_text(), name, None
    try:
        return yaml.safe_load(text), where, found
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where) from None
