"""Diversity scores against the number of distinct rules, beside the phase transition; and the
Vendi score's dual form against the defining n x n eigendecomposition, in the same run.

On divplugin's own training sets (the phase-transition spec's data: ``cpu-small``, 50,000
examples) with 20, 100, 400 and 2,000 rules, the instruction-diversity scores must rise with
the number of rules. The table and plot put them beside the unseen-rule exact match that
``docs/results/phase-transition-cpu-seeds`` measured (mean over seeds), or else the main
job's ``docs/results/phase-transition-cpu``, when one of them has every point.

    python benchmarks/bench_diversity.py [--out docs/results/diversity-vs-rules]
    python benchmarks/bench_diversity.py --out docs/results/diversity-vs-rules --report

``--report`` scores nothing: it takes the scores ``--out`` holds and puts them beside the
accuracy the results files hold now.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import command  # noqa: E402
from _record import platform as where_made

ROOT = Path(__file__).resolve().parents[1]
RULES = (20, 100, 400, 2000)
# unseen-rule accuracy: the seeded sweep where it has finished, else the main job
PHASES = [
    ROOT / "docs" / "results" / name / "results.json" for name in ("phase-transition-cpu-seeds", "phase-transition-cpu")
]
METRIC = "divplugin_markov_unseen/exact_match"


def unseen_accuracy(paths: list[Path]) -> tuple[dict[int, tuple[float, float, float, int]], str]:
    """num_rules -> (mean, min, max, n) of unseen-rule exact match in the first results.json
    of ``paths`` that has every point of RULES, and which file that was."""
    for path in paths:
        acc = _accuracy(path) if path.is_file() else {}
        if all(n in acc for n in RULES):
            return acc, str(path.relative_to(ROOT))
    return {}, ""


def _accuracy(path: Path) -> dict[int, tuple[float, float, float, int]]:
    out = {}
    for g in json.loads(path.read_text())["summary"]:
        st = g["metrics"].get(METRIC)
        if st:
            out[int(g["values"]["divplugin_settings.num_rules"])] = (st["mean"], st["lo"], st["hi"], st["n"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=2000, help="Rows scored per set.")
    ap.add_argument("--out", type=Path, help="Write results.json, README.md and results.png here.")
    ap.add_argument(
        "--report",
        action="store_true",
        help="Score nothing: remake --out's page from its scores and the current accuracy.",
    )
    args = ap.parse_args(argv)
    if args.report:
        if args.out is None or not (args.out / "results.json").is_file():
            ap.error("--report needs --out DIR holding a results.json this benchmark wrote")
        old = json.loads((args.out / "results.json").read_text())
        acc, source = unseen_accuracy(PHASES)
        rows = [{**r, "unseen_exact_match": acc.get(r["num_rules"])} for r in old["rows"]]
        write(args.out, rows, old["sample"], source, old.get("vendi"), old.get("platform"))
        return 0
    import numpy as np

    from divplugin.diversity.scores import score_texts, vendi_reference, vendi_score
    from divplugin.generators import create
    from divplugin.generators.presets import load_preset

    # 1. the dual form against the definition
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 384))
    t0 = time.perf_counter()
    ours = vendi_score(x)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = vendi_reference(x)
    t_ref = time.perf_counter() - t0
    print(
        f"Vendi of 2,000 x 384 embeddings: dual form {t_ours:.3f} s, n x n definition {t_ref:.3f} s "
        f"({t_ref / t_ours:.1f}x); |difference| = {abs(ours - ref):.2e}"
    )
    vendi = {
        "n": 2000,
        "dim": 384,
        "dual_s": round(t_ours, 4),
        "definition_s": round(t_ref, 4),
        "speedup": round(t_ref / t_ours, 1),
        "difference": float(abs(ours - ref)),
    }

    # 2. scores against the number of rules
    cfg = dict(load_preset("cpu-small"))
    name = cfg.pop("generator")
    acc, source = unseen_accuracy(PHASES)
    rows = []
    for n in RULES:
        gen = create(name, **{**cfg, "num_rules": n, "num_examples": 50_000, "seed": 0})
        texts = [r["instruction"] for r in gen.iter_split("train")]
        chars = score_texts(texts, sample=args.sample, embedder="chars")
        mini = score_texts(texts, sample=args.sample, embedder="minilm")
        rows.append(
            {
                "num_rules": n,
                "distinct_in_sample": chars.overall.distinct,
                "vendi_chars": round(chars.overall.vendi, 2),
                "vendi_minilm": round(mini.overall.vendi, 2) if mini.overall.vendi is not None else None,
                "ngram_diversity": round(chars.overall.ngram_diversity, 4),
                "compression_ratio": round(chars.overall.compression_ratio, 3),
                "unseen_exact_match": acc.get(n),
            }
        )
    print(f"\ninstruction diversity of cpu-small training sets (50,000 examples; {args.sample:,}-row samples)")
    head = f"  {'rules':>6} {'distinct':>9} {'Vendi (chars)':>14} {'Vendi (MiniLM)':>15} {'n-gram div.':>12} {'compression':>12} {'unseen EM':>10}"
    print(head)
    for r in rows:
        em = "" if r["unseen_exact_match"] is None else f"{r['unseen_exact_match'][0]:.3f}"
        mini = "-" if r["vendi_minilm"] is None else f"{r['vendi_minilm']:.2f}"
        print(
            f"  {r['num_rules']:>6,} {r['distinct_in_sample']:>9,} {r['vendi_chars']:>14.2f} {mini:>15} "
            f"{r['ngram_diversity']:>12.4f} {r['compression_ratio']:>12.3f} {em:>10}"
        )
    rising = all(
        b["vendi_chars"] > a["vendi_chars"]
        and b["ngram_diversity"] > a["ngram_diversity"]
        and b["compression_ratio"] < a["compression_ratio"]
        for a, b in zip(rows, rows[1:])
    )
    print(f"  every score more diverse with more rules: {'yes' if rising else 'NO'}")
    if args.out:
        write(args.out, rows, args.sample, source, vendi, where_made())
    return 0 if rising else 1


def _accuracy_note(source: str, rows: list[dict]) -> str:
    """Where the accuracy column comes from, in words: the file, and a mean of how many seeds."""
    if not source:
        return "."
    counts = sorted({r["unseen_exact_match"][3] for r in rows if r["unseen_exact_match"]})
    spec = json.loads((ROOT / source).read_text())["spec"]
    steps = spec["train"].get("max_steps")
    runs = "one seed" if counts == [1] else "mean of " + "/".join(map(str, counts)) + " seeds"
    return f"; unseen-rule exact match from `{source}` ({runs}, {steps:,} training steps)."


def write(
    out: Path, rows: list[dict], sample: int, source: str, vendi: dict | None = None, platform: dict | None = None
) -> None:
    """results.json, the page and the plot; ``platform``: where the scores were made (None: not
    recorded)."""
    with_acc = bool(source)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command(None, __file__),
        "sample": sample,
        "accuracy_from": source,
        "rows": rows,
        "vendi": vendi,
        "platform": platform,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Instruction diversity against the number of rules",
        "",
        f"Written by `python benchmarks/bench_diversity.py --out {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}`: "
        f"the instruction field of `cpu-small` training sets (50,000 examples, seed 0), a {sample:,}-row "
        "sample each" + _accuracy_note(source, rows),
        "",
        "| rules | distinct in sample | Vendi (char 3-grams) | Vendi (MiniLM) | n-gram diversity | compression ratio | unseen-rule exact match |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        em = "" if r["unseen_exact_match"] is None else f"{r['unseen_exact_match'][0]:.3f}"
        mini = "" if r["vendi_minilm"] is None else f"{r['vendi_minilm']:.2f}"
        lines.append(
            f"| {r['num_rules']:,} | {r['distinct_in_sample']:,} | {r['vendi_chars']:.2f} | {mini} | "
            f"{r['ngram_diversity']:.4f} | {r['compression_ratio']:.3f} | {em} |"
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        xs = [r["num_rules"] for r in rows]
        ax.plot(xs, [r["vendi_chars"] for r in rows], marker="o", label="Vendi (char 3-grams)")
        if all(r["vendi_minilm"] is not None for r in rows):
            ax.plot(xs, [r["vendi_minilm"] for r in rows], marker="o", label="Vendi (MiniLM)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distinct rules in training (50,000 examples)")
        ax.set_ylabel("Vendi score of the instructions")
        ax.grid(True, alpha=0.3)
        if with_acc:
            ax2 = ax.twinx()
            pts = [(r["num_rules"], r["unseen_exact_match"]) for r in rows if r["unseen_exact_match"]]
            ax2.errorbar(
                [p[0] for p in pts],
                [p[1][0] for p in pts],
                yerr=[[p[1][0] - p[1][1] for p in pts], [p[1][2] - p[1][0] for p in pts]],
                color="black",
                marker="s",
                linestyle="--",
                capsize=3,
                label="unseen-rule exact match",
            )
            ax2.set_ylabel("unseen-rule exact match")
            ax2.set_ylim(-0.02, 1.02)
            ax2.legend(loc="lower right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("instruction diversity and generalisation", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "results.png")
        plt.close(fig)
        lines += ["", "![diversity against rules](results.png)"]
    where = (
        ", ".join(f"{k} {platform[k]}" for k in ("cpu", "python", "torch", "divplugin", "commit") if platform.get(k))
        if platform
        else "not recorded (the scores were made before this benchmark recorded it)"
    )
    lines += ["", "## Where it was made", "", where]
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
