"""Diversity of a dataset: its rows read from wherever they are, and the texts and groups
that :mod:`divplugin.scores` measures (``divplugin diversity``, ``divplugin select``)."""

from __future__ import annotations

from typing import Any

from divplugin.errors import ConfigError


def field_value(row: dict[str, Any], path: str) -> Any:
    """``row``'s value at a dotted ``path`` (``metadata.source``); KeyError names the path."""
    node: Any = row
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def load_rows(data: str, split: str = "train") -> tuple[list[dict[str, Any]], str]:
    """Rows of ``data`` and what it is: a folder written by ``divplugin generate`` or ``divplugin
    mix`` (its ``SPLIT.jsonl``), a JSONL / JSON / Parquet / Arrow file or folder, a
    ``save_to_disk`` folder, or a Hugging Face hub dataset id."""
    from pathlib import Path

    from divplugin.mixtures.sources import read_rows
    from divplugin.mixtures.spec import HubSource, Source
    from divplugin.output import MANIFEST

    path = Path(data)
    if path.is_dir() and (path / MANIFEST).is_file():
        target = path / f"{split}.jsonl"
        if not target.is_file():
            have = sorted(p.stem for p in path.glob("*.jsonl"))
            raise ConfigError(f"{path} has no {split}.jsonl (it has: {', '.join(have) or 'no JSONL files'})", "--split")
        kind = "mixture" if "mixture" in _manifest(path) else "generated"
        return read_rows(Source(name=str(path), path=str(target))), f"{kind} folder ({split})"
    if path.exists():
        return read_rows(Source(name=str(path), path=str(path))), "local data"
    if "/" in data and not data.startswith((".", "/")) and not path.suffix:
        return read_rows(Source(name=data, hub=HubSource(id=data, split=split))), "hub dataset"
    raise ConfigError(f"{data} does not exist (give a file, a folder, or a hub dataset id)", "DATA")


def _manifest(folder) -> dict[str, Any]:
    import json

    from divplugin.output import MANIFEST

    return json.loads((folder / MANIFEST).read_text())


def texts_of(rows: list[dict[str, Any]], fields: list[str]) -> list[str]:
    """Each row's ``fields`` joined by newlines (chat ``messages`` are read as their turns);
    an error names the first missing field and the fields the rows have."""
    out = []
    for i, row in enumerate(rows):
        parts = []
        for f in fields:
            try:
                value = field_value(row, f)
            except KeyError:
                raise ConfigError(f"row {i} has no field {f!r}; its fields are: {', '.join(sorted(row))}", "--fields") from None
            if isinstance(value, list) and value and isinstance(value[0], dict) and "content" in value[0]:
                value = "\n".join(str(m.get("content", "")) for m in value)
            parts.append("" if value is None else str(value))
        out.append("\n".join(parts))
    return out


def groups_of(rows: list[dict[str, Any]], by: str) -> list[str]:
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(str(field_value(row, by)))
        except KeyError:
            raise ConfigError(f"row {i} has no field {by!r} to group by", "--by") from None
    return out
