"""Reading a source (hub dataset, local file or folder, divplugin generator) into records
``{instruction, input, output}`` through its adapter; errors name the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from divplugin.errors import ConfigError, DataFileError
from divplugin.mixtures.adapters import ADAPTERS, mapping_adapter
from divplugin.mixtures.spec import Source

LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".arrow")


class SourceError(ConfigError):
    """A source cannot be read or does not match its adapter."""

    def __init__(self, source: str, message: str):
        super().__init__(message, f"source {source!r}")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(LOCAL_SUFFIXES))


def _read_file(path: Path) -> list[dict[str, Any]]:
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        from divplugin.records import read_jsonl

        return read_jsonl(path)
    if name.endswith(".json"):
        import json

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


def _read_local(src: Source) -> list[dict[str, Any]]:
    path = Path(src.path)
    if not path.exists():
        raise SourceError(src.name, f"path {path} does not exist")
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            import datasets

            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else next(iter(ds.values()))
            return ds.to_list()
        files = _files(path)
        if not files:
            raise SourceError(src.name, f"folder {path} holds no {', '.join(LOCAL_SUFFIXES)} files")
        rows = []
        for f in files:
            rows += _read_file(f)
        return rows
    return _read_file(path)


def _read_hub(src: Source) -> list[dict[str, Any]]:
    import datasets

    hub = src.hub
    try:
        ds = datasets.load_dataset(hub.id, hub.subset, split=hub.split, revision=hub.revision)
    except Exception as exc:  # offline, missing, gated: the message says which source and what to do
        raise SourceError(src.name, f"cannot load {hub.id!r} from the Hugging Face hub ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}). Offline? Download it elsewhere and give 'path:' "
                          "to a local JSONL/Parquet/Arrow copy instead of 'hub:'") from None
    if src.limit:
        ds = ds.select(range(min(src.limit, len(ds))))
    return ds.to_list()


def _read_generator(src: Source) -> list[dict[str, Any]]:
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator

    g = src.generator
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
