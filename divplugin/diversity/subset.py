"""A dataset in, its most diverse rows out: read anything ``divplugin diversity`` reads, drop
duplicates if asked, choose with :mod:`divplugin.diversity.select`, and write the chosen rows with a
manifest and a report (``divplugin select``; the plugin's ``divplugin_select``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from divplugin.core.fsutil import HashedFile, atomic_directory, check_new_output
from divplugin.data.cache import ensure_folder, subset_key
from divplugin.data.manifest import header, is_dataset, load_manifest, write_manifest
from divplugin.data.rows import groups_of, load_rows, texts_of
from divplugin.data.summary import selection_table, selection_title
from divplugin.data.writer import OUTPUT_FORMATS, write_formats
from divplugin.diversity.dedup import NearDuplicates, RowRef, text_key
from divplugin.diversity.select import SelectSettings, choose, random_rows
from divplugin.errors import ConfigError, did_you_mean

DEDUP = ("none", "exact", "near")
DEFAULT_FIELDS = ("instruction", "input")  # the text of a row that is compared, unless asked otherwise


def dedup_rows(texts: list[str], how: str, seed: int = 0) -> list[int]:
    """Indices of the rows kept (the first of each group): ``exact`` (case and whitespace
    normalised) or ``near`` (also MinHash near-duplicates, as ``divplugin mix`` finds them)."""
    if how not in DEDUP:
        raise ConfigError(f"unknown dedup {how!r}{did_you_mean(how, DEDUP)} Choose from: {', '.join(DEDUP)}", "dedup")
    if how == "none":
        return list(range(len(texts)))
    seen: set[bytes] = set()
    kept = []
    for i, t in enumerate(texts):
        key = text_key(t)
        if key not in seen:
            seen.add(key)
            kept.append(i)
    if how == "near":
        near = NearDuplicates(seed=seed)
        sketches = near.sketch([texts[i] for i in kept])
        kept = [i for i, sk in zip(kept, sketches) if near.seen(sk, RowRef(0, i)) is None]
    return kept


def select_dataset(
    data: str,
    out,
    budget: int,
    settings: SelectSettings,
    *,
    fields: list[str],
    split: str = "train",
    by: str | None = None,
    dedup: str = "none",
    formats: tuple[str, ...] = ("jsonl",),
    workers: int = 1,
    overwrite: bool = False,
    score_sample: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Read `data` (anything ``divplugin diversity`` reads), choose `budget` rows by the text of
    `fields`, and write them to the folder `out` with a manifest and a report; returns the
    manifest. A folder written by ``divplugin generate`` keeps its held-out splits beside."""
    from divplugin.diversity.scores import score_texts

    formats = tuple(dict.fromkeys(formats))
    if not formats or set(formats) - set(OUTPUT_FORMATS):
        raise ConfigError(f"must be a non-empty list from {OUTPUT_FORMATS}, got {list(formats)}", "format")
    settings.validate()
    check_new_output(out, overwrite)
    rows, kind = load_rows(data, split)
    texts = texts_of(rows, fields)
    groups = groups_of(rows, by) if by else None
    kept = dedup_rows(texts, dedup, settings.seed)
    if budget > len(kept):
        removed = f" ({len(rows) - len(kept):,} duplicates removed)" if len(kept) < len(rows) else ""
        raise ConfigError(f"asks for {budget:,} rows but the data has {len(kept):,}{removed}", "budget")
    t0 = time.perf_counter()
    local = choose(
        [texts[i] for i in kept],
        budget,
        settings,
        groups=[groups[i] for i in kept] if groups else None,
        workers=workers,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    chosen = [kept[int(i)] for i in local]
    baseline = random_rows(len(kept), budget, settings.seed + 1)
    scores = {}
    for name, idx in (("pool", range(len(kept))), ("selected", local), ("random", baseline)):
        sample = [texts[kept[int(i)]] for i in idx]
        rep = score_texts(sample, sample=score_sample, seed=settings.seed, embedder=settings.embedder)
        scores[name] = {"size": len(sample), **rep.overall.as_row()}
    source = Path(data)
    base = load_manifest(source) if is_dataset(source) else {}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        with HashedFile(tmp / f"{split}.jsonl") as f:
            for i in chosen:
                f.write((json.dumps(rows[i], ensure_ascii=False, separators=(",", ":")) + "\n").encode())
        manifest = {**base, **header("selected")}
        manifest.setdefault("record_format", "instruction")
        manifest.pop("instructions_file", None)  # per-rule counts of the pool, not of the subset
        splits = {k: v for k, v in base.get("splits", {}).items() if k != split}
        splits[split] = {"examples": len(chosen), "files": {"jsonl": f.entry}}
        for other in list(splits):  # the held-out splits of a generated folder, as they were
            if other != split and (source / f"{other}.jsonl").is_file():
                shutil.copy2(source / f"{other}.jsonl", tmp / f"{other}.jsonl")
        manifest["splits"] = splits
        manifest["selection"] = {
            "source": str(data),
            "source_kind": kind,
            "split": split,
            "pool": len(rows),
            "after_dedup": len(kept),
            "budget": budget,
            "fields": fields,
            "by": by,
            "dedup": dedup,
            **settings.to_dict(),
            "indices_sha256": hashlib.sha256(np.asarray(chosen, dtype=np.int64).tobytes()).hexdigest(),
            "seconds": round(seconds, 2),
            "scores": scores,
        }
        if "parquet" in formats or "hf" in formats:
            write_formats(tmp, [split], formats, manifest)
        if "jsonl" not in formats:
            (tmp / f"{split}.jsonl").unlink()
        (tmp / "report.md").write_text(selection_report(manifest["selection"]))
        write_manifest(tmp, manifest)
    return manifest


def selection_report(sel: dict[str, Any]) -> str:
    """The Markdown page of a selection: what was chosen, how, and the scores of pool, subset
    and a random subset of the same size."""
    lines = [
        f"# {selection_title(sel)}",
        "",
        f"Source: `{sel['source']}` ({sel['source_kind']}); text: {', '.join(sel['fields'])}; "
        f"embedder {sel['embedder']} (projected to {sel['dim'] or 'all'} dimensions); seed {sel['seed']}; "
        f"dedup {sel['dedup']}; {sel['seconds']:.1f} s.",
        "",
        selection_table(sel, "").markdown(),
        "",
        'Scores on a seeded sample of each set (`divplugin diversity`\'s); "random" is a seeded random '
        "subset of the same size, for comparison.",
        "",
    ]
    return "\n".join(lines)


def ensure_selected(root: str | os.PathLike, source: Path, subset: dict[str, Any]) -> tuple[Path, bool]:
    """(folder, created): the rows ``subset`` (see ``divplugin.axolotl.args.subset_request``)
    chooses from the data folder ``source``, written once beside the other selections."""
    settings = SelectSettings.of(subset)
    return ensure_folder(
        Path(root) / f"{source.name}-{subset_key(subset)}",
        lambda f: select_dataset(
            str(source),
            f,
            subset["budget"],
            settings,
            fields=subset["fields"],
            by=subset.get("by"),
            dedup=subset["dedup"],
            overwrite=True,
        ),
    )
