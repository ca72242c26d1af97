"""A dataset in, its most diverse rows out: read anything ``divplugin diversity`` reads, drop
duplicates if asked, choose with :mod:`divplugin.selection`, and write the chosen rows with a
manifest and a report (``divplugin select``; the plugin's ``divplugin_select``)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from divplugin.errors import ConfigError, did_you_mean
from divplugin.selection import SelectSettings, choose, random_rows

DEDUP = ("none", "exact", "near")


def dedup_rows(texts: list[str], how: str, seed: int = 0) -> list[int]:
    """Indices of the rows kept (the first of each group): ``exact`` (case and whitespace
    normalised) or ``near`` (also MinHash near-duplicates, as ``divplugin mix`` finds them)."""
    import hashlib

    if how not in DEDUP:
        raise ConfigError(f"unknown dedup {how!r}{did_you_mean(how, DEDUP)} Choose from: {', '.join(DEDUP)}", "dedup")
    if how == "none":
        return list(range(len(texts)))
    seen: set[bytes] = set()
    kept = []
    for i, t in enumerate(texts):
        key = hashlib.blake2b(" ".join(t.lower().split()).encode(), digest_size=16).digest()
        if key not in seen:
            seen.add(key)
            kept.append(i)
    if how == "near":
        from divplugin.mixtures.hygiene import NearDuplicates, RowRef

        near = NearDuplicates(seed=seed)
        sketches = near.sketch([texts[i] for i in kept])
        kept = [i for i, sk in zip(kept, sketches) if near.seen(sk, RowRef(0, i)) is None]
    return kept


def select_dataset(data: str, out, budget: int, settings: SelectSettings, *, fields: list[str], split: str = "train",
                   by: Optional[str] = None, dedup: str = "none", formats: tuple[str, ...] = ("jsonl",),
                   workers: int = 1, overwrite: bool = False, score_sample: int = 2000,
                   progress: Optional[Callable[[int], None]] = None) -> dict:
    """Read `data` (anything ``divplugin diversity`` reads), choose `budget` rows by the text of
    `fields`, and write them to the folder `out` with a manifest and a report; returns the
    manifest. A folder written by ``divplugin generate`` keeps its held-out splits beside."""
    import hashlib
    import json
    import shutil
    import time
    from pathlib import Path

    from divplugin import __version__
    from divplugin.diversity import groups_of, load_rows, texts_of
    from divplugin.output import FORMAT_VERSION, MANIFEST, OUTPUT_FORMATS, atomic_directory
    from divplugin.scores import score_texts

    formats = tuple(dict.fromkeys(formats))
    if not formats or set(formats) - set(OUTPUT_FORMATS):
        raise ConfigError(f"must be a non-empty list from {OUTPUT_FORMATS}, got {list(formats)}", "format")
    settings.validate()
    if Path(out).exists() and not overwrite:
        raise ConfigError(f"output folder {out} exists; pass --overwrite to replace it", "out")
    rows, kind = load_rows(data, split)
    texts = texts_of(rows, fields)
    groups = groups_of(rows, by) if by else None
    kept = dedup_rows(texts, dedup, settings.seed)
    if budget > len(kept):
        removed = f" ({len(rows) - len(kept):,} duplicates removed)" if len(kept) < len(rows) else ""
        raise ConfigError(f"asks for {budget:,} rows but the data has {len(kept):,}{removed}", "budget")
    t0 = time.perf_counter()
    local = choose([texts[i] for i in kept], budget, settings, groups=[groups[i] for i in kept] if groups else None,
                   workers=workers, progress=progress)
    seconds = time.perf_counter() - t0
    chosen = [kept[int(i)] for i in local]
    baseline = random_rows(len(kept), budget, settings.seed + 1)
    scores = {}
    for name, idx in (("pool", range(len(kept))), ("selected", local), ("random", baseline)):
        sample = [texts[kept[int(i)]] for i in idx]
        rep = score_texts(sample, sample=score_sample, seed=settings.seed, embedder=settings.embedder)
        scores[name] = {"size": len(sample), **rep.overall.as_row()}
    source = Path(data)
    generated = source.is_dir() and (source / MANIFEST).is_file()
    base = json.loads((source / MANIFEST).read_text()) if generated else {}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        digest = hashlib.sha256()
        with open(tmp / f"{split}.jsonl", "wb") as f:
            for i in chosen:
                line = (json.dumps(rows[i], ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                f.write(line)
                digest.update(line)
        manifest = {**base, "format_version": base.get("format_version", FORMAT_VERSION),
                    "divplugin_version": __version__}
        manifest.pop("instructions_file", None)  # per-rule counts of the pool, not of the subset
        splits = {k: v for k, v in base.get("splits", {}).items() if k != split}
        splits[split] = {"examples": len(chosen), "files": {"jsonl": {"path": f"{split}.jsonl",
                                                                      "sha256": digest.hexdigest()}}}
        if generated:
            for other in splits:
                if other != split and (source / f"{other}.jsonl").is_file():
                    shutil.copy2(source / f"{other}.jsonl", tmp / f"{other}.jsonl")
        manifest["splits"] = splits
        manifest["selection"] = {
            "source": str(data), "source_kind": kind, "split": split, "pool": len(rows), "after_dedup": len(kept),
            "budget": budget, "fields": fields, "by": by, "dedup": dedup, **settings.__dict__,
            "indices_sha256": hashlib.sha256(np.asarray(chosen, dtype=np.int64).tobytes()).hexdigest(),
            "seconds": round(seconds, 2), "scores": scores}
        if "parquet" in formats or "hf" in formats:
            from divplugin.output import write_formats

            write_formats(tmp, [split], formats, manifest)
        if "jsonl" not in formats:
            (tmp / f"{split}.jsonl").unlink()
        (tmp / "report.md").write_text(selection_report(manifest["selection"]))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def selection_report(sel: dict) -> str:
    """The Markdown page of a selection: what was chosen, how, and the scores of pool, subset
    and a random subset of the same size."""
    lines = [f"# {sel['budget']:,} of {sel['after_dedup']:,} rows, by {sel['method']}", "",
             f"Source: `{sel['source']}` ({sel['source_kind']}); text: {', '.join(sel['fields'])}; "
             f"embedder {sel['embedder']} (projected to {sel['dim'] or 'all'} dimensions); seed {sel['seed']}; "
             f"dedup {sel['dedup']}; {sel['seconds']:.1f} s.", "",
             "| rows | count | Vendi | compression ratio (lower: more diverse) | n-gram diversity | mean cosine distance |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in ("pool", "selected", "random"):
        s = sel["scores"][name]
        vendi = f"{s['vendi']:.2f}" if s.get("vendi") is not None else "-"
        dist = f"{s['mean_cosine_distance']:.3f}" if s.get("mean_cosine_distance") is not None else "-"
        lines.append(f"| {name} | {s['size']:,} | {vendi} | {s['compression_ratio']:.3f} | {s['ngram_diversity']:.3f} "
                     f"| {dist} |")
    lines += ["", "Scores on a seeded sample of each set (`divplugin diversity`'s); \"random\" is a seeded random "
              "subset of the same size, for comparison.", ""]
    return "\n".join(lines)
