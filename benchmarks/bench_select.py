"""`divplugin select` speed against its peers, and what each method covers of a long-tailed pool.

1. Speed: choosing `--budget` (10,000) of `--rows` (100,000) generated rewrite examples on
   `--workers` cores, embedding included, for each method and embedder (goal: k-center with
   the chars embedder within 60 s). Peer: apricot-select's FacilityLocationSelection on a
   smaller pool (`--peer-rows`, default 10,000: its sparse neighbour path fails with current
   SciPy, and its dense path holds an n x n matrix), beside divplugin's facility location on
   the same rows.
2. ``--coverage OUT``: the select-long-tail-cpu spec's pools (500 rules, 200,000 examples,
   Power(0.05); seeds 0-2) cut to 50,000 by each method, and what the labels say of each
   subset: distinct rules covered and the effective number of rules (exp of the entropy of
   per-rule counts), beside the select-long-tail-cpu-balanced spec's subsets (balanced by the
   rule labels: the most even subset the pool holds). Writes OUT/README.md and
   OUT/coverage.json. With ``--run`` (the specs' results folders) it reads the subsets those
   runs trained on instead of making them again.

    python benchmarks/bench_select.py [--rows 100000] [--budget 10000] [--embedders chars[,minilm]]
    python benchmarks/bench_select.py --coverage docs/results/select-long-tail-coverage [--run FOLDER ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, write  # noqa: E402


def _pool(folder: Path, rows: int, rules: int, alpha: float | None, seed: int) -> list[dict]:
    from divplugin.data.writer import write_dataset
    from divplugin.generators import create

    settings = {"num_rules": rules, "num_examples": rows, "seed": seed, "test_examples": 100, "seen_test_examples": 100}
    if alpha is not None:
        settings.update(allocation="power", alpha=alpha)
    from divplugin.generators.settings import resolve_generator

    name, config = resolve_generator(None, "cpu-small", [("bench", settings)])
    write_dataset(create(name, config), folder, overwrite=True)
    return [json.loads(line) for line in (folder / "train.jsonl").open()]


def _texts(rows: list[dict]) -> list[str]:
    return [r["instruction"] + "\n" + r["input"] for r in rows]


def coverage(rules: list[str]) -> tuple[int, float]:
    """(distinct rules, effective number of rules: exp of the entropy of per-rule counts)."""
    counts = Counter(rules)
    n = sum(counts.values())
    return len(counts), math.exp(-sum(c / n * math.log(c / n) for c in counts.values()))


def speed(args) -> dict:
    from divplugin.diversity.select import SelectSettings, choose

    with tempfile.TemporaryDirectory() as tmp:
        rows = _pool(Path(tmp) / "pool", args.rows, args.rules, 0.05, 0)
    texts, rules = _texts(rows), [r["metadata"]["rule_id"] for r in rows]
    pool_cov = coverage(rules)
    print(
        f"pool: {len(rows):,} rows of {args.rules:,} rules, Power(0.05): {pool_cov[0]} rules, "
        f"effective {pool_cov[1]:.1f}; choosing {args.budget:,} on {args.workers} workers"
    )
    print("| method | embedder | seconds | rows/s | rules covered | effective rules |")
    print("|---|---|---:|---:|---:|---:|")
    runs = [("random", "chars")] + [(m, e) for e in args.embedders.split(",") for m in ("kcenter", "facility-location")]
    figures: dict = {
        "rows": len(rows),
        "rules": args.rules,
        "budget": args.budget,
        "workers": args.workers,
        "pool": {"rules": pool_cov[0], "effective": round(pool_cov[1], 2)},
        "methods": {},
    }
    for method, embedder in runs:
        t0 = time.perf_counter()
        try:
            idx = choose(texts, args.budget, SelectSettings(method=method, embedder=embedder), workers=args.workers)
        except Exception as exc:  # noqa: BLE001 - a missing extra is reported, not fatal
            print(f"| {method} | {embedder} | - | - | - | - | ({exc})")
            continue
        dt = time.perf_counter() - t0
        cov = coverage([rules[i] for i in idx])
        print(
            f"| {method} | {embedder if method != 'random' else '-'} | {dt:.1f} | {len(rows) / dt:,.0f} | {cov[0]} "
            f"| {cov[1]:.1f} |"
        )
        figures["methods"][method if method == "random" else f"{method}/{embedder}"] = {
            "seconds": round(dt, 2),
            "rules": cov[0],
            "effective": round(cov[1], 2),
        }
    figures["peer"] = peer(texts[: args.peer_rows], rules[: args.peer_rows], max(1, args.peer_rows // 10), args.workers)
    return figures


def peer(texts: list[str], rules: list[str], budget: int, workers: int) -> dict:
    import numpy as np

    from divplugin.diversity.select import SelectSettings, choose, embed_rows

    print(f"\nfacility location on {len(texts):,} rows, choosing {budget:,} (chars embedder, 64 dimensions):")
    settings = SelectSettings(method="facility-location")
    t0 = time.perf_counter()
    ours = choose(texts, budget, settings, workers=workers)
    ours_s = time.perf_counter() - t0
    print(
        f"  divplugin (folds of {settings.fold_size:,}, {settings.neighbours} neighbours): {ours_s:.1f} s, "
        f"{coverage([rules[i] for i in ours])[0]} rules"
    )
    out: dict = {
        "rows": len(texts),
        "budget": budget,
        "divplugin_s": round(ours_s, 2),
        "divplugin_rules": coverage([rules[i] for i in ours])[0],
    }
    try:
        from apricot import FacilityLocationSelection
    except ImportError:
        print("  apricot-select: not installed (pip install apricot-select)")
        return out
    x = embed_rows(texts, settings, workers)
    try:
        FacilityLocationSelection(
            budget, metric="cosine", n_neighbors=settings.neighbours, optimizer="lazy", random_state=0
        ).fit(x)
        sparse = "ran"
    except Exception as exc:  # noqa: BLE001 - the peer's own failure is the finding
        sparse = f"fails: {type(exc).__name__}: {str(exc)[:80]}"
    print(f"  apricot-select, sparse neighbour graph: {sparse}")
    t0 = time.perf_counter()
    sel = FacilityLocationSelection(budget, metric="euclidean", optimizer="lazy", random_state=0).fit(x)
    dense_s = time.perf_counter() - t0
    idx = np.asarray(sel.ranking)
    print(
        f"  apricot-select, dense (an n x n matrix): {dense_s:.1f} s, {coverage([rules[i] for i in idx])[0]} rules; "
        f"divplugin / apricot time: {ours_s / dense_s:.2f}x"
    )
    return {
        **out,
        "apricot_sparse": sparse,
        "apricot_dense_s": round(dense_s, 2),
        "apricot_rules": coverage([rules[i] for i in idx])[0],
        "ratio": round(ours_s / dense_s, 3),
    }


def _rule_ids(path: Path) -> list[str]:
    with open(path) as f:
        return [json.loads(line)["metadata"]["rule_id"] for line in f if line.strip()]


def _from_run(runs: list[Path], methods: list[str]) -> dict:
    """Coverage of the subsets experiment folders trained on (``RUN/data/selected/*``, each
    with the manifest `divplugin select` wrote), and of their pools, seed by seed."""
    found: dict[tuple[int, str], tuple[int, float, float]] = {}
    pools: dict[int, tuple[int, float]] = {}
    for run in runs:
        for manifest in sorted((run / "data" / "selected").glob("*/manifest.json")):
            sel = json.loads(manifest.read_text())["selection"]
            seed = int(sel["seed"])
            found[(seed, sel["method"])] = (
                *coverage(_rule_ids(manifest.parent / "train.jsonl")),
                float(sel["seconds"]),
            )
            if seed not in pools:
                pools[seed] = coverage(_rule_ids(run / "data" / Path(sel["source"]).name / "train.jsonl"))
    if not found:
        sys.exit(f"{', '.join(map(str, runs))}: no subsets (data/selected/*/manifest.json): run the spec into it first")
    table: dict = {"pool": [pools[s] for s in sorted(pools)]}
    for method in methods:
        if any((s, method) in found for s in pools):  # a seed not run yet shows as "-"
            table[method] = [found.get((s, method)) for s in sorted(pools)]
    table["seeds"] = sorted(pools)
    return table


def _specs():
    """select-long-tail-cpu and its label-balanced bound, with the pool settings, the selection
    request and the label field they use."""
    from divplugin.experiments import load_spec

    spec = load_spec("select-long-tail-cpu")
    reference = load_spec("select-long-tail-cpu-balanced")  # balanced by the rule labels: the bound
    return (
        spec,
        reference,
        spec.train["divplugin_settings"],
        spec.train["divplugin_select"],
        reference.train["divplugin_select"]["by"],
    )


def coverage_page(out: Path, workers: int, runs: list[Path] | None = None) -> None:
    """The subsets of the select-long-tail-cpu specs, seed by seed, measured by their labels:
    those experiment folders trained on (`runs`), else made again here."""
    from divplugin.data.rows import field_value
    from divplugin.diversity.select import SelectSettings, choose

    spec, reference, settings, subset, by = _specs()
    methods = spec.sweep["divplugin_select.method"] + reference.sweep["divplugin_select.method"]
    if runs:
        table = _from_run(runs, methods)
    else:
        table = {"seeds": list(spec.seeds)}
        for seed in spec.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                rows = _pool(
                    Path(tmp) / "pool", settings["num_examples"], settings["num_rules"], settings["alpha"], seed
                )
            texts, rules = _texts(rows), [r["metadata"]["rule_id"] for r in rows]
            table.setdefault("pool", []).append(coverage(rules))
            for method in methods:
                t0 = time.perf_counter()
                groups = [field_value(r, by) for r in rows] if method == "balanced" else None
                idx = choose(
                    texts,
                    subset["budget"],
                    SelectSettings(method=method, embedder=subset["embedder"], seed=seed),
                    groups=groups,
                    workers=workers,
                )
                table.setdefault(method, []).append((*coverage([rules[i] for i in idx]), time.perf_counter() - t0))
                print(seed, method, table[method][-1], flush=True)
    seeds = table.pop("seeds")
    source = (
        "the subsets the specs' runs trained on, read from their folders" if runs else "each subset made again here"
    )
    command = "python benchmarks/bench_select.py --coverage docs/results/select-long-tail-coverage" + (
        " --run results/select-long-tail-cpu --run results/select-long-tail-cpu-balanced" if runs else ""
    )
    from _record import platform

    write_coverage(out, {"seeds": seeds, **table, "source": source, "command": command, "platform": platform()})


def write_coverage(out: Path, record: dict) -> None:
    """coverage.json and the page, from a coverage record (the table, where its subsets came
    from, the command and the platform, None where not recorded)."""
    _, _, settings, subset, by = _specs()
    out.mkdir(parents=True, exist_ok=True)
    (out / "coverage.json").write_text(json.dumps(record, indent=2) + "\n")
    seeds = record["seeds"]
    table = {k: v for k, v in record.items() if k not in ("seeds", "source", "command", "platform")}
    lines = [
        "# What each selection method covers of a long-tailed pool",
        "",
        f"The pools and subsets of `select-long-tail-cpu` ({settings['num_examples']:,} examples of "
        f"{settings['num_rules']} rules, Power({settings['alpha']}); {subset['budget']:,} chosen by each method "
        f"from the text alone, {subset['embedder']} embedder; seeds {seeds}) and of "
        f"`select-long-tail-cpu-balanced` (the same budget balanced by the `{by}` labels, the most even "
        f"subset the pool holds), measured afterwards by their labels: {record.get('source')}.",
        "",
        "| set | rules covered (per seed) | effective rules (per seed) | seconds to choose |",
        "|---|---|---|---|",
    ]
    for name, runs in table.items():
        cells = [
            " / ".join("-" if r is None or i >= len(r) else fmt(r[i]) for r in runs)
            for i, fmt in enumerate((str, "{:.1f}".format, "{:.0f}".format))
        ]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {cells[2] if name != 'pool' else '-'} |")
    where = record.get("platform")
    lines += [
        "",
        "Effective rules: exp of the entropy of the per-rule counts (500 for a uniform allocation). The "
        "seconds to choose are those of the machine that chose (for subsets read from runs, the runs' own).",
        "",
        "## How it was made",
        "",
        f"`{record.get('command')}`",
        "",
        "## Where it was made",
        "",
        ", ".join(f"{k} {where[k]}" for k in ("cpu", "python", "divplugin", "commit") if where.get(k))
        if where
        else "not recorded (the subsets were chosen by the runs of `select-long-tail-cpu` and "
        "`select-long-tail-cpu-balanced`: see their pages)",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--budget", type=int, default=10_000)
    ap.add_argument("--rules", type=int, default=2_000)
    ap.add_argument(
        "--embedders", default="chars", help="comma-separated: chars, minilm (about 100 rows/s on 2 busy cores)"
    )
    ap.add_argument("--peer-rows", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--coverage", type=Path, default=None, help="write the spec's coverage page to this folder instead")
    ap.add_argument(
        "--report",
        action="store_true",
        help="with --coverage: remake the page from the coverage.json the folder holds, measuring nothing",
    )
    ap.add_argument(
        "--run",
        type=Path,
        action="append",
        default=None,
        help="with --coverage (repeatable): a spec's results folder, whose subsets are read instead of made again",
    )
    add_json_flag(ap, "bench-select")
    args = ap.parse_args(argv)
    if args.run and args.coverage is None:
        ap.error("--run goes with --coverage")
    if args.report and args.coverage is None:
        ap.error("--report goes with --coverage")
    if args.coverage and args.report:
        record = json.loads((args.coverage / "coverage.json").read_text())
        record.setdefault("source", "the subsets the specs' runs trained on, read from their folders")
        record.setdefault(
            "command",
            "python benchmarks/bench_select.py --coverage docs/results/select-long-tail-coverage"
            " --run results/select-long-tail-cpu --run results/select-long-tail-cpu-balanced",
        )
        write_coverage(args.coverage, {**record, "platform": record.get("platform")})
    elif args.coverage:
        coverage_page(args.coverage, args.workers, args.run)
    else:
        write(args.json, speed(args), argv, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
