"""Generation throughput: the paper-scale markov_rewrite set vs reasoning-gym.

Generates the paper's main setting (N = 1,000,000 examples over I = 1,000 rules, input
length 50, pattern length 20) into JSONL with divplugin, and reasoning-gym's
``string_manipulation`` generator into JSONL in the same run, then prints examples/s
and the ratio.

    python benchmarks/bench_generate.py                 # full paper scale
    python benchmarks/bench_generate.py --examples 100000 --rg-examples 5000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, write  # noqa: E402


def bench_divplugin(examples: int, rules: int, workers: int | None, tmp: Path) -> tuple[float, dict]:
    from divplugin.data.writer import write_dataset
    from divplugin.generators import create

    t0 = time.perf_counter()
    gen = create(
        "markov_rewrite",
        num_rules=rules,
        num_examples=examples,
        test_examples=0,
        seen_test_examples=0,
        input_len=50,
        pattern_len=20,
        seed=0,
    )
    manifest = write_dataset(gen, tmp / f"div-{workers}", workers=workers)
    return time.perf_counter() - t0, manifest


def bench_reasoning_gym(examples: int, tmp: Path) -> float | None:
    try:
        import reasoning_gym
    except ImportError:
        return None
    t0 = time.perf_counter()
    data = reasoning_gym.create_dataset("string_manipulation", size=examples, seed=0)
    with open(tmp / "rg.jsonl", "w") as f:
        for i in range(examples):
            item = data[i]
            f.write(
                json.dumps({"question": item["question"], "answer": item["answer"], "metadata": item["metadata"]})
                + "\n"
            )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=1_000_000, help="divplugin training examples (paper: 10^6)")
    ap.add_argument("--rules", type=int, default=1000, help="distinct rules (paper's main setting: 1,000)")
    ap.add_argument("--rg-examples", type=int, default=20_000, help="reasoning-gym examples to time")
    ap.add_argument("--workers", type=int, default=None, help="divplugin workers (default: all cores)")
    add_json_flag(ap, "bench-generate")
    args = ap.parse_args(argv)

    from divplugin.core.host import usable_cores

    workers = args.workers or usable_cores()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        secs, manifest = bench_divplugin(args.examples, args.rules, workers, tmp)
        size = os.path.getsize(tmp / f"div-{workers}" / "train.jsonl")
        rows.append((f"divplugin markov_rewrite ({workers} workers)", args.examples, secs))
        if workers != 1:
            secs1, _ = bench_divplugin(args.examples, args.rules, 1, tmp)
            rows.append(("divplugin markov_rewrite (1 worker)", args.examples, secs1))
        rg = bench_reasoning_gym(args.rg_examples, tmp)
        if rg is not None:
            rows.append(("reasoning-gym string_manipulation (1 process)", args.rg_examples, rg))

    # One rounding for the table and the record, so the two always read the same.
    rows = [(name, n, max(round(s, 3), 0.001)) for name, n, s in rows]
    print(f"\nGeneration to JSONL on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{'generator':<48} {'examples':>10} {'seconds':>9} {'examples/s':>12}")
    for name, n, s in rows:
        print(f"{name:<48} {n:>10,} {s:>9.2f} {n / s:>12,.0f}")
    div_rate = rows[0][1] / rows[0][2]
    print(f"\ndivplugin train.jsonl: {size / 1e6:.0f} MB, {manifest['splits']['train']['instructions']:,} rules")
    if args.examples == 1_000_000:
        verdict = "meets" if rows[0][2] <= 10 else "misses"
        print(f"paper-scale set (10^6 examples) in {rows[0][2]:.2f} s: {verdict} the goal of <= 10 s")
    if rg is not None:
        ratio = div_rate / (args.rg_examples / rg)
        print(
            f"divplugin / reasoning-gym examples/s: {ratio:.1f}x ({'meets' if ratio >= 10 else 'misses'} the goal of >= 10x)"
        )
        if workers != 1:
            print(f"single-worker ratio: {(rows[1][1] / rows[1][2]) / (args.rg_examples / rg):.1f}x")
    else:
        print("reasoning-gym is not installed (pip install 'divplugin[bench]'): no ratio")
    keys = ["divplugin", "divplugin_1_worker", "reasoning_gym"] if workers != 1 else ["divplugin", "reasoning_gym"]
    runs = {
        key: {"name": name, "examples": n, "seconds": s, "examples_per_s": round(n / s, 1)}
        for key, (name, n, s) in zip(keys, rows)
    }
    write(
        args.json,
        {
            "workers": workers,
            "rules": args.rules,
            "runs": runs,
            "ratio": round(div_rate / (args.rg_examples / rg), 2) if rg is not None else None,
            "ratio_1_worker": round((rows[1][1] / rows[1][2]) / (args.rg_examples / rg), 2)
            if rg is not None and workers != 1
            else None,
        },
        argv,
        __file__,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
