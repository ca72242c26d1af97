"""Generated data written on several machines: shard K of N holds a contiguous run of each
split's chunks, and joining the N shards gives, byte for byte, the folder one machine writes.

A chunk's rows depend only on the seed, the split and the chunk's index, so any machine can
write any chunk. A shard folder has the chunks' JSONL and ``shard.json`` (written last; no
``manifest.json``, so no command takes a shard for a dataset); :func:`join_shards` checks that
the N shards are one generator's, with the same settings, each once and intact, then writes
the dataset folder with :mod:`divplugin.data.writer`'s own steps.

    divplugin generate -p cpu-small --shard 0/2 --out part0     # machine 1
    divplugin generate -p cpu-small --shard 1/2 --out part1     # machine 2
    divplugin join part0 part1 --out data                      # = divplugin generate -p cpu-small --out data
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from divplugin.core.fsutil import atomic_directory
from divplugin.data.manifest import config_hash
from divplugin.data.writer import (
    check_formats,
    dataset_head,
    encoded_chunks,
    finish_dataset,
    merge_stats,
    split_entry,
    write_chunks,
)
from divplugin.errors import ConfigError
from divplugin.generators.base import CHUNK_SIZE, SPLITS, Generator

SHARD_FILE = "shard.json"
SHARD_VERSION = 1


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), with 0 <= K < N; a named error otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"must be K/N (shard K of N, counted from 0), e.g. 0/4; got {text!r}", "shard")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or k >= n:
        raise ConfigError(f"K/N needs N >= 1 and 0 <= K < N; got {text!r}", "shard")
    return k, n


def shard_chunks(num_chunks: int, k: int, n: int) -> range:
    """The chunks of shard ``k`` of ``n``: a contiguous run, the runs differing by one at most."""
    return range(num_chunks * k // n, num_chunks * (k + 1) // n)


def _portable(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    """Merged chunk statistics as JSON keeps them (count keys as the strings the manifest shows)."""
    if stats is None:
        return None
    counts = {f: {str(key): v for key, v in c.items()} for f, c in stats["counts"].items()}
    return {**stats, "counts": counts}


def write_shard(
    gen: Generator,
    out: str | os.PathLike,
    shard: tuple[int, int],
    record_format: str = "instruction",
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Write shard ``shard`` = (K, N) of ``gen``'s splits into folder ``out``; returns its record."""
    k, n = shard
    check_formats(["jsonl"], record_format)
    record: dict[str, Any] = {
        "shard_version": SHARD_VERSION,
        "shard": [k, n],
        "generator": gen.name,
        "config": gen.config.to_dict(),
        "config_hash": config_hash(gen.name, gen.config.to_dict()),
        "chunk_size": CHUNK_SIZE,
        "record_format": record_format,
        "splits": {},
    }
    with atomic_directory(out, overwrite) as tmp:
        for split in (s for s in SPLITS if gen.split_size(s)):
            chunks = shard_chunks(gen.num_chunks(split), k, n)
            pieces = encoded_chunks(gen, split, record_format, workers, chunks)
            tick = (lambda m, split=split: progress(split, m)) if progress else None
            jsonl, stats = write_chunks(pieces, tmp / f"{split}.jsonl", tick)
            record["splits"][split] = {"chunks": [chunks.start, chunks.stop], "jsonl": jsonl, "stats": _portable(stats)}
        (tmp / SHARD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def read_shard(folder: str | os.PathLike) -> dict[str, Any]:
    """A shard folder's record; a named error when it is not one or is broken."""
    path = Path(folder) / SHARD_FILE
    if not path.is_file():
        hint = " (it is a dataset folder, not a shard)" if (Path(folder) / "manifest.json").is_file() else ""
        raise ConfigError(f"{folder} has no {SHARD_FILE}: not a finished shard{hint}", "shards")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}", "shards") from None
    if not isinstance(record, dict) or record.get("shard_version") != SHARD_VERSION:
        raise ConfigError(f"{path}: not a shard record this divplugin reads (shard_version {SHARD_VERSION})", "shards")
    return record


def _merge(total: dict[str, Any] | None, part: dict[str, Any] | None) -> dict[str, Any] | None:
    if part is None:
        return total
    part = {**part, "counts": {f: Counter(c) for f, c in part["counts"].items()}}
    return merge_stats(total, part)


def _pieces(
    folders: Sequence[Path], split: str, records: Sequence[dict[str, Any]]
) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
    """Each shard's JSONL of ``split``, in blocks, checked against its recorded sha256 as read."""
    import hashlib

    for folder, record in zip(folders, records):
        entry = record["splits"][split]
        digest = hashlib.sha256()
        with open(folder / entry["jsonl"]["path"], "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
                yield block, None
        if digest.hexdigest() != entry["jsonl"]["sha256"]:
            raise ConfigError(f"{folder}: {split}.jsonl does not match its sha256 in {SHARD_FILE}", "shards")


def join_shards(
    folders: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    formats: tuple[str, ...] | list[str] = ("jsonl",),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Join shards 0..N-1 (in any order) into the dataset folder ``out``; returns its manifest,
    the one ``divplugin generate`` writes without ``--shard``."""
    from divplugin.generators import create
    from divplugin.generators.settings import make_config

    paths = [Path(f) for f in folders]
    if not paths:
        raise ConfigError("give the shard folders to join", "shards")
    records = [read_shard(p) for p in paths]
    first = records[0]
    for path, rec in zip(paths, records):
        for key in ("generator", "config_hash", "chunk_size", "record_format"):
            if rec[key] != first[key]:
                raise ConfigError(f"{path} differs from {paths[0]} in {key}: shards of other data", "shards")
    n = first["shard"][1]
    have = sorted(rec["shard"][0] for rec in records)
    if any(rec["shard"][1] != n for rec in records) or have != list(range(n)):
        missing = sorted(set(range(n)) - set(have))
        twice = sorted({k for k in have if have.count(k) > 1})
        counts = sorted({rec["shard"][1] for rec in records})
        raise ConfigError(
            f"need shards 0..{n - 1} of {n}, each once; missing {missing}, given twice {twice}"
            + (f", shards of {counts} in all" if len(counts) > 1 else ""),
            "shards",
        )
    order = sorted(range(len(records)), key=lambda i: records[i]["shard"][0])
    paths, records = [paths[i] for i in order], [records[i] for i in order]
    formats = check_formats(formats, first["record_format"])
    gen = create(first["generator"], make_config(first["generator"], first["config"]))
    if config_hash(gen.name, gen.config.to_dict()) != first["config_hash"]:
        raise ConfigError(
            "this divplugin reads the shards' settings differently from the one that wrote them", "shards"
        )
    manifest = dataset_head(gen, first["record_format"], formats)
    with atomic_directory(out, overwrite) as tmp:
        for split in (s for s in SPLITS if gen.split_size(s)):
            ends = [tuple(rec["splits"][split]["chunks"]) for rec in records]
            want = [(r.start, r.stop) for r in (shard_chunks(gen.num_chunks(split), k, n) for k in range(n))]
            if ends != want:
                raise ConfigError(f"{split}: the shards hold chunks {ends}, not {want}", "shards")
            jsonl, _ = write_chunks(_pieces(paths, split, records), tmp / f"{split}.jsonl")
            stats = None
            for rec in records:
                stats = _merge(stats, rec["splits"][split]["stats"])
            manifest["splits"][split] = split_entry(gen, split, jsonl, stats)
        finish_dataset(gen, tmp, manifest)
    return manifest
