"""Writing generated data: parallel chunks, JSONL / Parquet / HF datasets, manifests
(:mod:`divplugin.data.manifest`).

Everything lands in a hidden ``.NAME.partial-*`` folder beside the target and is renamed
into place only once complete (manifest last), so an interrupted run never leaves a
dataset that looks finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from divplugin.core.fsutil import HashedFile, atomic_directory, sha256_file
from divplugin.core.host import usable_cores
from divplugin.data.manifest import INSTRUCTIONS, config_hash, header, write_manifest
from divplugin.data.records import RECORD_FORMATS, encode_jsonl
from divplugin.errors import ConfigError
from divplugin.generators.base import CHUNK_SIZE, SPLITS, Generator

OUTPUT_FORMATS = ("jsonl", "parquet", "hf")


# -- statistics -------------------------------------------------------------------
def chunk_stats(cols: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    meta = cols["metadata"]
    stats: dict[str, Any] = {"examples": len(cols["input"])}
    for name in ("input", "output"):
        lengths = list(map(len, cols[name]))
        stats[f"{name}_len"] = [min(lengths), max(lengths), sum(lengths)] if lengths else [0, 0, 0]
    stats["counts"] = {f: Counter(meta[f]) for f in fields if f in meta}
    return stats


def merge_stats(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    if total is None:
        return part
    total["examples"] += part["examples"]
    for key in ("input_len", "output_len"):
        a, b = total[key], part[key]
        total[key] = [min(a[0], b[0]), max(a[1], b[1]), a[2] + b[2]]
    for f, c in part["counts"].items():
        total["counts"].setdefault(f, Counter()).update(c)
    return total


def finish_stats(stats: dict[str, Any] | None) -> dict[str, Any]:
    if stats is None:
        return {"examples": 0}
    n = max(stats["examples"], 1)
    out = {"examples": stats["examples"]}
    for key in ("input_len", "output_len"):
        lo, hi, s = stats[key]
        out[key] = {"min": lo, "max": hi, "mean": round(s / n, 3)}
    out["counts"] = {
        f: {str(k): v for k, v in sorted(c.items(), key=lambda kv: numeric_sort_key(str(kv[0])))}
        for f, c in sorted(stats["counts"].items())
    }
    return out


def numeric_sort_key(value: str):
    """Numbers first, in numeric order, then other strings: "2" < "10" < "abc"."""
    return (0, int(value), "") if value.lstrip("-").isdigit() else (1, 0, value)


# -- parallel chunk generation ------------------------------------------------------
_WORKER_GEN: Generator | None = None


def _init_worker(gen: Generator | None) -> None:
    global _WORKER_GEN
    _WORKER_GEN = gen


def _encode_chunk(job: tuple[str, int, str]) -> tuple[bytes, dict[str, Any]]:
    split, index, record_format = job
    gen = _WORKER_GEN
    assert gen is not None, "a chunk encoded outside encoded_chunks"
    cols = gen.chunk(split, index)
    return encode_jsonl(cols, record_format, gen.config.prompt_template), chunk_stats(cols, gen.summary_fields)


def encoded_chunks(
    gen: Generator,
    split: str,
    record_format: str = "instruction",
    workers: int | None = None,
    chunks: range | None = None,
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """(JSONL bytes, stats) of each chunk of ``split`` (or of those in ``chunks``), in order,
    from ``workers`` processes.

    The bytes do not depend on ``workers``: every chunk has its own seed-derived streams.
    """
    if record_format not in RECORD_FORMATS:
        raise ConfigError(f"must be one of {RECORD_FORMATS}, got {record_format!r}", "record_format")
    workers = usable_cores() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"must be >= 1, got {workers}", "workers")
    chunks = range(gen.num_chunks(split)) if chunks is None else chunks
    jobs = [(split, c, record_format) for c in chunks]
    for s in SPLITS:  # plan in the parent so that workers inherit it
        gen.plan(s)
    if workers == 1 or len(jobs) <= 1:
        _init_worker(gen)
        try:
            yield from map(_encode_chunk, jobs)
        finally:
            _init_worker(None)  # the generator and its plans are not kept alive after the last chunk
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with cf.ProcessPoolExecutor(
        workers, mp_context=mp.get_context(method), initializer=_init_worker, initargs=(gen,)
    ) as ex:
        yield from ex.map(_encode_chunk, jobs, chunksize=2)


# -- the writer ---------------------------------------------------------------------
def check_formats(formats: tuple[str, ...] | list[str], record_format: str) -> tuple[str, ...]:
    """``formats`` without repeats; a named error for an unknown format or record format."""
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise ConfigError(f"must be a non-empty list from {OUTPUT_FORMATS}, got {list(formats)}", "formats")
    if record_format not in RECORD_FORMATS:
        raise ConfigError(f"must be one of {RECORD_FORMATS}, got {record_format!r}", "record_format")
    return formats


def dataset_head(gen: Generator, record_format: str, formats: tuple[str, ...] = ("jsonl",)) -> dict[str, Any]:
    """The manifest of ``gen``'s data before its splits are written."""
    cfg = gen.config.to_dict()
    return {
        **header("generated"),
        "generator": gen.name,
        "seed": gen.config.seed,
        "config": cfg,
        "config_hash": config_hash(gen.name, cfg),
        "chunk_size": CHUNK_SIZE,
        "record_format": record_format,
        "formats": list(formats),
        "splits": {},
    }


def write_chunks(
    pieces: Iterator[tuple[bytes, dict[str, Any] | None]],
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Write the (bytes, stats) ``pieces`` to ``path`` in order: its manifest entry and the
    merged stats (pieces without stats are written only)."""
    stats = None
    # writing and hashing release the GIL: a thread overlaps them with receiving chunks
    with HashedFile(path) as f, cf.ThreadPoolExecutor(1) as io:
        pending: list[cf.Future] = []
        for blob, part in pieces:
            pending.append(io.submit(f.write, blob))
            if part is None:
                continue
            stats = merge_stats(stats, part)
            if progress:
                progress(part["examples"])
            if len(pending) > 8:
                pending.pop(0).result()
        for fut in pending:
            fut.result()
    return f.entry, stats


def split_entry(gen: Generator, split: str, jsonl: dict[str, str], stats: dict[str, Any] | None) -> dict[str, Any]:
    """A generated split's manifest record: its counts, its JSONL file and its statistics."""
    plan = gen.plan(split)
    entry: dict[str, Any] = {"examples": len(plan), "instructions": int((plan.counts > 0).sum()), "files": {}}
    entry["files"]["jsonl"] = jsonl
    entry["stats"] = finish_stats(stats)
    return entry


def finish_dataset(gen: Generator, tmp: Path, manifest: dict[str, Any]) -> None:
    """Everything after the splits' JSONL: the other formats, the instructions and the manifest."""
    formats, splits = tuple(manifest["formats"]), list(manifest["splits"])
    if "parquet" in formats or "hf" in formats:
        write_formats(tmp, splits, formats, manifest)
    if "jsonl" not in formats:
        for split in splits:
            (tmp / f"{split}.jsonl").unlink()
            del manifest["splits"][split]["files"]["jsonl"]
    _write_instructions(gen, tmp / INSTRUCTIONS)
    manifest["instructions_file"] = {"path": INSTRUCTIONS, "sha256": sha256_file(tmp / INSTRUCTIONS)}
    write_manifest(tmp, manifest)


def write_dataset(
    gen: Generator,
    out: str | os.PathLike,
    formats: tuple[str, ...] | list[str] = ("jsonl",),
    record_format: str = "instruction",
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Generate every split of ``gen`` into folder ``out``; returns the manifest.

    ``out`` holds ``{split}.jsonl`` (and/or ``{split}.parquet``, ``hf/``),
    ``instructions.jsonl`` (every instruction with its split and example counts) and
    ``manifest.json`` (config, seed, counts, hashes, summary statistics).
    ``progress(split, n)`` is called as each chunk of ``n`` examples is done.
    """
    formats = check_formats(formats, record_format)
    manifest = dataset_head(gen, record_format, formats)
    with atomic_directory(out, overwrite) as tmp:
        for split in (s for s in SPLITS if gen.split_size(s)):
            pieces = encoded_chunks(gen, split, record_format, workers)
            tick = (lambda n, split=split: progress(split, n)) if progress else None
            jsonl, stats = write_chunks(pieces, tmp / f"{split}.jsonl", tick)
            manifest["splits"][split] = split_entry(gen, split, jsonl, stats)
        finish_dataset(gen, tmp, manifest)
    return manifest


def _write_instructions(gen: Generator, path: Path) -> None:
    counts = {s: gen.plan(s).counts for s in SPLITS}
    with open(path, "w") as f:
        for side in ("train", "test"):
            for i, inst in enumerate(gen.instructions(side)):
                rec = inst.record()
                if side == "train":
                    rec["examples"] = {"train": int(counts["train"][i]), "test_seen": int(counts["test_seen"][i])}
                else:
                    rec["examples"] = {"test": int(counts["test"][i])}
                f.write(json.dumps(rec) + "\n")


def write_formats(tmp: Path, splits: list[str], formats: tuple[str, ...], manifest: dict[str, Any]) -> None:
    """Parquet and/or a ``save_to_disk`` folder (``hf/``) of the ``{split}.jsonl`` files in
    ``tmp``, recorded in ``manifest``."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    tables = {}
    for split in splits:
        table = pj.read_json(tmp / f"{split}.jsonl")
        tables[split] = table
        if "parquet" in formats:
            path = tmp / f"{split}.parquet"
            pq.write_table(table, path)
            manifest["splits"][split]["files"]["parquet"] = {"path": path.name, "sha256": sha256_file(path)}
    if "hf" in formats:
        import datasets

        datasets.disable_progress_bars()
        dd = datasets.DatasetDict({s: datasets.Dataset(t) for s, t in tables.items()})
        dd.save_to_disk(str(tmp / "hf"))
        for split in splits:
            manifest["splits"][split]["files"]["hf"] = {"path": f"hf/{split}"}
