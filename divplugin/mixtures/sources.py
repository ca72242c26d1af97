"""Reading a source (hub dataset, local file or folder, divplugin generator) into records
``{instruction, input, output}`` through its adapter; errors name the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from divplugin.data.rows import read_path
from divplugin.errors import ConfigError, DataFileError
from divplugin.mixtures.adapters import ADAPTERS, mapping_adapter
from divplugin.mixtures.spec import Source


class SourceError(ConfigError):
    """A source cannot be read or does not match its adapter."""

    def __init__(self, source: str, message: str):
        super().__init__(message, f"source {source!r}")


def _read_local(src: Source) -> list[dict[str, Any]]:
    assert src.path is not None
    path = Path(src.path)
    if not path.exists():
        raise SourceError(src.name, f"path {path} does not exist")
    try:
        return read_path(path)
    except DataFileError as exc:
        raise SourceError(src.name, str(exc)) from None


def _read_hub(src: Source) -> list[dict[str, Any]]:
    import datasets

    hub = src.hub
    assert hub is not None
    try:
        ds = datasets.load_dataset(hub.id, hub.subset, split=hub.split, revision=hub.revision)
    except Exception as exc:  # offline, missing, gated: the message says which source and what to do
        raise SourceError(
            src.name,
            f"cannot load {hub.id!r} from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Offline? Download it elsewhere and give 'path:' "
            "to a local JSONL/Parquet/Arrow copy instead of 'hub:'",
        ) from None
    if src.limit:
        ds = ds.select(range(min(src.limit, len(ds))))
    return ds.to_list()


def _read_generator(src: Source) -> list[dict[str, Any]]:
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator

    g = src.generator
    assert g is not None
    try:
        name, cfg = resolve_generator(g.generator, g.preset, [("settings", g.settings)])
    except ConfigError as exc:
        raise SourceError(src.name, str(exc)) from None
    return list(create(name, cfg).iter_split("train"))


def read_rows(src: Source) -> list[dict[str, Any]]:
    """The raw rows of ``src`` (before its adapter), in the source's order."""
    try:
        if src.hub is not None:
            rows = _read_hub(src)
        elif src.path is not None:
            rows = _read_local(src)
        else:
            rows = _read_generator(src)
    except DataFileError as exc:
        raise SourceError(src.name, str(exc)) from None
    if src.limit:
        rows = rows[: src.limit]
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SourceError(src.name, f"row {i} is a {type(row).__name__}, not a mapping")
    return rows


def read_source(src: Source) -> list[dict[str, str]]:
    """The records of ``src`` (instruction/input/output strings), in the source's order."""
    rows = read_rows(src)
    adapt = ADAPTERS[src.adapter] if isinstance(src.adapter, str) else mapping_adapter(src.adapter)
    out = []
    for i, row in enumerate(rows):
        try:
            rec = adapt(row)
        except KeyError as exc:
            raise SourceError(src.name, f"row {i} does not match adapter {src.adapter!r}: {exc.args[0]}") from None
        for key in ("instruction", "input", "output"):
            if not isinstance(rec[key], str):
                raise SourceError(src.name, f"row {i}: field for {key!r} is a {type(rec[key]).__name__}, not text")
        out.append(rec)
    return out
