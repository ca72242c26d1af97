"""Building a mixture: read each source, walk it in a seeded order dropping duplicates and
benchmark leaks until its budget is met, then shuffle everything deterministically."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from divplugin.core.fsutil import HashedFile, atomic_directory, check_new_output
from divplugin.data.cache import data_key, ensure_folder
from divplugin.data.manifest import header, write_manifest
from divplugin.data.records import user_turn
from divplugin.diversity.dedup import NearDuplicates, RowRef
from divplugin.errors import ConfigError
from divplugin.mixtures.budget import repeat_to_budget, split_total, token_counter
from divplugin.mixtures.hygiene import Decontaminator, exact_key, text_of
from divplugin.mixtures.sources import read_source
from divplugin.mixtures.spec import Mixture

SKETCH_BLOCK = 16_384  # rows whose near-dup sketches are computed together


@dataclass
class SourceStats:
    name: str
    available: int = 0
    target: int = 0
    examined: int = 0
    kept: int = 0
    repeated: int = 0  # upsampled repeats
    removed: dict[str, int] = field(
        default_factory=lambda: {
            "exact_within": 0,
            "exact_across": 0,
            "near_within": 0,
            "near_across": 0,
            "contaminated": 0,
        }
    )
    leaks: dict[str, int] = field(default_factory=dict)  # benchmark task id -> rows dropped
    selected: dict[str, Any] = field(default_factory=dict)  # chosen for diversity: method, from how many clean rows


@dataclass
class Built:
    rows: list[dict[str, Any]]
    stats: list[SourceStats]


def _targets(m: Mixture) -> dict[str, int]:
    # check_budget has made sure that every source sets the budget's field
    if m.budget == "counts":
        return {s.name: s.count or 0 for s in m.sources}
    if m.budget == "ratios":
        return dict(zip([s.name for s in m.sources], split_total(m.total or 0, [s.ratio or 0.0 for s in m.sources])))
    return {s.name: s.tokens or 0 for s in m.sources}  # token budgets


def _choose(src, seed: int, recs: list[dict[str, str]], kept: list[int], st: SourceStats) -> list[int]:
    """``st.target`` of the clean rows ``kept``, chosen by ``src.select`` from their text."""
    from divplugin.diversity.scores import score_texts
    from divplugin.diversity.select import SelectSettings, choose, random_rows

    settings = SelectSettings.of({**src.select.model_dump(), "seed": seed})
    texts = [recs[i]["instruction"] + "\n" + recs[i]["input"] for i in kept]
    chosen = choose(texts, st.target, settings)
    before = random_rows(len(kept), st.target, seed)  # what the seeded walk's way would have drawn
    scores = {
        name: score_texts(
            [texts[int(j)] for j in idx], sample=2000, seed=seed, embedder=settings.embedder
        ).overall.as_row()
        for name, idx in (("random", before), ("chosen", chosen))
    }
    st.selected = {"method": settings.method, "embedder": settings.embedder, "from": len(kept), "scores": scores}
    st.examined = len(kept)
    return [kept[int(j)] for j in chosen]


def build_mixture(m: Mixture, progress: Callable[[str, int, int], None] | None = None) -> Built:
    """The rows of mixture ``m`` (and what was removed, per source). Raises ConfigError naming
    the source when a budget cannot be met; nothing is written here."""
    targets = _targets(m)
    count_tokens = token_counter(m.tokenizer) if m.budget == "tokens" else None
    decon = None
    if m.decontaminate and m.decontaminate.benchmarks:
        decon = Decontaminator(
            m.decontaminate.benchmarks, m.decontaminate.ngram, m.decontaminate.data, m.decontaminate.min_words
        )
    near = (
        NearDuplicates(m.dedup.threshold, m.dedup.num_perm, m.dedup.shingle, seed=m.seed)
        if m.dedup and m.dedup.near
        else None
    )
    exact_seen: dict[bytes, int] = {}
    out: list[dict[str, Any]] = []
    stats: list[SourceStats] = []
    for si, src in enumerate(m.sources):
        st = SourceStats(src.name, target=targets[src.name])
        stats.append(st)
        if st.target == 0:
            continue
        recs = read_source(src)
        st.available = len(recs)
        if m.budget != "tokens" and st.target > len(recs) and not src.upsample:
            raise ConfigError(
                f"asks for {st.target:,} examples but holds {len(recs):,}; lower the budget or set upsample: true",
                f"source {src.name!r}",
            )
        rng = np.random.default_rng([m.seed, si])
        # what a row costs against the budget: one example, or its tokens
        texts = [text_of(r) for r in recs] if count_tokens is not None or near is not None else []
        cost = count_tokens(texts) if count_tokens is not None else [1] * len(recs)
        kept: list[int] = []
        used = 0
        met = False
        walk = rng.permutation(len(recs)).tolist()
        sketches: list[Any] = []  # near-dup sketches of the walk, made a block at a time
        choosing = src.select is not None  # walk every row, then choose among the clean ones
        for step, i in enumerate(walk):
            if not choosing and used + cost[i] > st.target:
                met = True
                break
            st.examined += 1
            rec = recs[i]
            if m.dedup and m.dedup.exact:
                key = exact_key(rec)
                if key in exact_seen:
                    st.removed["exact_within" if exact_seen[key] == si else "exact_across"] += 1
                    continue
                exact_seen[key] = si
            if decon is not None:
                leak = decon.hit(rec)
                if leak:
                    st.removed["contaminated"] += 1
                    st.leaks[leak] = st.leaks.get(leak, 0) + 1
                    continue
            if near is not None:
                if step >= len(sketches):
                    block = walk[len(sketches) : len(sketches) + SKETCH_BLOCK]
                    sketches += near.sketch([texts[j] for j in block])
                dup = near.seen(sketches[step], RowRef(si, i))
                if dup is not None:
                    st.removed["near_within" if dup.source == si else "near_across"] += 1
                    continue
            kept.append(i)
            used += cost[i]
            if progress and len(kept) % 1000 == 0:
                progress(src.name, len(kept), st.target)
        if choosing and len(kept) > st.target:
            kept, used, met = _choose(src, m.seed, recs, kept, st), st.target, True
        if not met and used < st.target:
            unit = "tokens" if count_tokens is not None else "examples"
            if not src.upsample:
                raise ConfigError(
                    f"asks for {st.target:,} {unit} but only {used:,} are left after removing "
                    f"duplicates and benchmark leaks ({sum(st.removed.values()):,} removed); lower the "
                    "budget or set upsample: true",
                    f"source {src.name!r}",
                )
            extra = repeat_to_budget([cost[i] for i in kept], used, st.target, rng, src.name)
            st.repeated = len(extra)
            kept += [kept[j] for j in extra]
        st.kept = len(kept)
        if progress:
            progress(src.name, st.kept, st.target)
        for i in kept:
            out.append({**recs[i], "metadata": {"source": src.name, "index": i}})
    order = np.random.default_rng([m.seed, len(m.sources), 7]).permutation(len(out))
    return Built([out[int(i)] for i in order], stats)


def write_mixture(
    m: Mixture, built: Built, out: str | os.PathLike, overwrite: bool = False, report: bool = True
) -> dict[str, Any]:
    """Write ``train.jsonl`` (axolotl's ``alpaca`` fields, or chat ``messages``), ``manifest.json``
    and the report into ``out``, atomically."""
    from divplugin.mixtures.report import write_report

    with atomic_directory(out, overwrite) as tmp:
        with HashedFile(tmp / "train.jsonl") as f:
            for row in built.rows:
                if m.record_format == "messages":
                    row = {
                        "messages": [
                            {"role": "user", "content": user_turn(row["instruction"], row["input"])},
                            {"role": "assistant", "content": row["output"]},
                        ],
                        "metadata": row["metadata"],
                    }
                f.write((json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
        manifest = {
            **header("mixture"),
            "mixture": m.name,
            "seed": m.seed,
            "budget": m.budget,
            "record_format": m.record_format,
            "examples": len(built.rows),
            "counts": {s.name: s.kept for s in built.stats},
            "splits": {"train": {"examples": len(built.rows), "files": {"jsonl": f.entry}}},
            "sources": [asdict(s) for s in built.stats],
            "spec": m.model_dump(),
        }
        if report:
            manifest["report"] = write_report(m, built, tmp)
        write_manifest(tmp, manifest)
    return manifest


def mix(
    m: Mixture, out: str | os.PathLike, overwrite: bool = False, progress=None, report: bool = True
) -> dict[str, Any]:
    """Build mixture ``m`` and write it to ``out``; returns the manifest."""
    check_new_output(out, overwrite)
    return write_mixture(m, build_mixture(m, progress), out, overwrite, report)


def ensure_mixture(root: str | os.PathLike, mixture: Mixture) -> tuple[Path, bool]:
    """(folder, created): the built mixture for ``mixture``, named by a hash of its spec, built
    once however many ranks ask (:func:`divplugin.data.cache.ensure_folder`)."""
    return ensure_folder(
        Path(root) / data_key("mixture", mixture.name, mixture), lambda f: mix(mixture, f, overwrite=True)
    )
