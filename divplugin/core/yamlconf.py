"""Loading specs: YAML files, built-in specs shipped in the package, and their validation.

Generator settings (presets, layers, command-line overrides) live in
:mod:`divplugin.generators.settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
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


def validate_mapping(model: type, data: Any, where: str) -> Any:
    """``model(**data)`` for a pydantic model; a non-mapping or invalid value raises ConfigError
    naming ``where`` and the field at fault."""

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


def load_builtin_or_file(
    name_or_path: str | Path, package: str, folder: str, kind: str
) -> tuple[Any, str, Path | None]:
    """(parsed YAML, where, file path or None) for a built-in ``kind`` by name or a YAML file;
    errors name the file or suggest the closest built-in."""
    from importlib import resources

    path = Path(name_or_path)
    # a file path (a .yaml name, or a file that exists); a folder that happens to share a
    # built-in's name (e.g. an experiment's output folder) does not hide the built-in
    if (
        path.suffix in (".yaml", ".yml")
        or path.is_file()
        or (path.is_dir() and str(name_or_path) not in builtin_names(package, folder))
    ):
        if not path.is_file():
            raise ConfigError(
                f"{path} does not exist" if not path.exists() else f"{path} is a folder, not a YAML file", "spec"
            )
        text, where, found = path.read_text(), str(path), path
    else:
        name, names = str(name_or_path), builtin_names(package, folder)
        if name not in names:
            raise ConfigError(
                f"unknown {kind} {name!r}{did_you_mean(name, names)} Built-in: {', '.join(names)}", "spec"
            )
        text, where, found = resources.files(package).joinpath(folder, f"{name}.yaml").read_text(), name, None
    try:
        return yaml.safe_load(text), where, found
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where) from None


def config_from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build and validate a config; unknown keys and bad types raise ConfigError naming the key."""
    known = list(cls.__pydantic_fields__)  # type: ignore[attr-defined]
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in known:
            raise ConfigError(
                f"unknown setting{did_you_mean(str(key), known)} Valid settings: {', '.join(known)}", f"{prefix}{key}"
            )
    try:
        cfg = cls(**data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        name = str(errors[0]["loc"][0]) if errors[0]["loc"] else "config"
        msgs = list(dict.fromkeys(e["msg"] for e in errors if e["loc"] and str(e["loc"][0]) == name))
        raise ConfigError(f"got {errors[0].get('input')!r}; expected: {' or '.join(msgs)}", f"{prefix}{name}") from None
    cfg.validate()
    return cfg


ADDED_LATER: dict[str, Any] = {"identity": "when-set"}
"""``json_schema_extra`` of a setting added after identities were first made from its class."""


def identity_dict(values: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``values`` as an identity (what data keys and settings hashes are made of): a setting
    declared with ``json_schema_extra=ADDED_LATER`` is left out while it holds its default, so
    that adding a setting never moves the keys of what was made before it existed."""
    out = dict(values)
    for name, info in fields.items():
        if info.json_schema_extra == ADDED_LATER and name in out and out[name] == info.default:
            del out[name]
    return out
