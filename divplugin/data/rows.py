"""Rows read from wherever they are (a dataset folder, local files, the hub), and the texts and
groups of rows that :mod:`divplugin.diversity` measures and chooses from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from divplugin.data.manifest import is_dataset, load_manifest
from divplugin.data.records import read_jsonl
from divplugin.errors import ConfigError, DataFileError


def field_value(row: dict[str, Any], path: str) -> Any:
    """``row``'s value at a dotted ``path`` (``metadata.source``); KeyError names the path."""
    node: Any = row
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".arrow")


def _read_file(path: Path) -> list[dict[str, Any]]:
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        return read_jsonl(path)
    if name.endswith(".json"):
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise DataFileError(f"{path}: a .json source must hold a list of rows")
        return data
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if name.endswith(".arrow"):
        import pyarrow as pa

        with pa.memory_map(str(path)) as f:
            try:
                return pa.ipc.open_stream(f).read_all().to_pylist()
            except pa.ArrowInvalid:
                return pa.ipc.open_file(f).read_all().to_pylist()
    raise DataFileError(f"{path}: unsupported file type; use one of {', '.join(LOCAL_SUFFIXES)}")


def read_path(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL / JSON / Parquet / Arrow file, of a folder of them (in name order),
    or of a ``save_to_disk`` folder (its ``train`` split, else its first)."""
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            import datasets

            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else next(iter(ds.values()))
            return ds.to_list()
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(LOCAL_SUFFIXES))
        if not files:
            raise DataFileError(f"folder {path} holds no {', '.join(LOCAL_SUFFIXES)} files")
        rows = []
        for f in files:
            rows += _read_file(f)
        return rows
    return _read_file(path)


def load_rows(data: str, split: str = "train") -> tuple[list[dict[str, Any]], str]:
    """Rows of ``data`` and what it is: a dataset folder written by ``divplugin generate``,
    ``mix`` or ``select`` (its ``SPLIT.jsonl``), a JSONL / JSON / Parquet / Arrow file or folder,
    a ``save_to_disk`` folder, or a Hugging Face hub dataset id."""
    path = Path(data)
    if path.is_dir() and is_dataset(path):
        manifest = load_manifest(path)
        if split not in manifest["splits"] or not (path / f"{split}.jsonl").is_file():
            have = sorted(p.stem for p in path.glob("*.jsonl"))
            raise ConfigError(f"{path} has no {split}.jsonl (it has: {', '.join(have) or 'no JSONL files'})", "--split")
        return _checked(read_jsonl(path / f"{split}.jsonl"), data), f"{manifest['kind']} folder ({split})"
    if path.exists():
        return _checked(read_path(path), data), "local data"
    if "/" in data and not data.startswith((".", "/")) and not path.suffix:
        return _checked(read_hub(data, split=split), data), "hub dataset"
    raise ConfigError(f"{data} does not exist (give a file, a folder, or a hub dataset id)", "DATA")


def read_hub(
    name: str, subset: str | None = None, split: str = "train", revision: str | None = None
) -> list[dict[str, Any]]:
    """The rows of a Hugging Face hub dataset; offline or missing, an error that says what to do."""
    import datasets

    try:
        ds = datasets.load_dataset(name, subset, split=split, revision=revision)
    except Exception as exc:  # offline, missing, gated: the message says which dataset and what to do
        raise DataFileError(
            f"cannot load {name!r} from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Offline? Download it elsewhere and give "
            "a local JSONL/Parquet/Arrow copy instead"
        ) from None
    return ds.to_list()


def _checked(rows: list[Any], data: str) -> list[dict[str, Any]]:
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"row {i} is a {type(row).__name__}, not a mapping", data)
    return rows


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
                raise ConfigError(
                    f"row {i} has no field {f!r}; its fields are: {', '.join(sorted(row))}", "--fields"
                ) from None
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
