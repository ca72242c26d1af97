"""What scoring while training costs (``divplugin_eval``), against the same training without it,
in the same run: the CPU recipe's settings (``recipes/cpu-tiny-markov.yml``: micro batch 64,
AdamW, the cpu-small data at 2,000 rules) on the main job's model shape (6 layers, width 128),
``--steps`` optimizer steps, with ``divplugin_eval`` at its defaults (every 250 steps and at
the last, 500 rows of each of test and test_seen, batches of 64). The overhead is the extra
training wall time over the plain run's; the evaluations' own seconds come from
``divplugin_eval.jsonl`` (where the two runs' noise hides the difference, their share of the
plain run's time is the figure to read). Goal: at most 10% on this recipe.

    python benchmarks/bench_training_eval.py [--steps 500] [--every 250] [--examples 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml
from _record import add_json_flag, write  # noqa: E402
from bench_plugin import _train as train_runtime  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "cpu-tiny-markov.yml"


def _train(cfg: dict, tmp: Path, tag: str) -> tuple[float, list[dict]]:
    """bench_plugin's training run (train_runtime), and the scores divplugin_eval logged."""
    seconds = train_runtime(cfg, tmp, tag)
    log = tmp / tag / "out" / "divplugin_eval.jsonl"
    return seconds, [json.loads(line) for line in log.open()] if log.is_file() else []


def bench(model: Path, tmp: Path, steps: int, every: int, examples: int, batch_size: int) -> dict:
    recipe = yaml.safe_load(RECIPE.read_text())
    cfg = {
        **recipe,
        "base_model": str(model),
        "max_steps": steps,
        "warmup_steps": min(100, steps // 10),
        "save_strategy": "no",
        "logging_steps": max(1, steps // 5),
    }
    evaluation = {"every": every, "examples": examples, "batch_size": batch_size}
    plain, _ = _train(cfg, tmp, "plain")
    scored, records = _train({**cfg, "divplugin_eval": evaluation}, tmp, "scored")
    evals = sorted({r["step"] for r in records})
    eval_seconds = sum({r["step"]: r["seconds"] for r in records}.values())
    rows = sum(r["n"] for r in records)
    overhead = scored / plain - 1.0
    print(f"\ntraining {steps} steps of the CPU recipe (6 layers, width 128), with and without divplugin_eval")
    print(f"  {'run':<44} {'seconds':>8}")
    print(f"  {'plain':<44} {plain:>8.1f}")
    print(f"  {f'divplugin_eval {evaluation}':<44} {scored:>8.1f}")
    print(
        f"  overhead {overhead:.1%} (goal <= 10%): {len(evals)} evaluations at steps {evals}, {eval_seconds:.1f} s "
        f"({eval_seconds / plain:.1%} of the plain run's time), {rows / max(eval_seconds, 1e-9):,.0f} rows/s"
    )
    return {
        "steps": steps,
        "settings": evaluation,
        "plain_seconds": round(plain, 2),
        "scored_seconds": round(scored, 2),
        "overhead": round(overhead, 4),
        "evaluations": evals,
        "eval_seconds": round(eval_seconds, 2),
        "rows_per_second": round(rows / max(eval_seconds, 1e-9), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500, help="optimizer steps of each run")
    ap.add_argument("--every", type=int, default=250, help="divplugin_eval.every")
    ap.add_argument("--examples", type=int, default=500, help="divplugin_eval.examples")
    ap.add_argument("--batch-size", type=int, default=64, help="divplugin_eval.batch_size")
    ap.add_argument("--layers", type=int, default=6, help="layers of the model (the main job's: 6)")
    add_json_flag(ap, "bench-training-eval")
    args = ap.parse_args(argv)
    from divplugin.models import build_tiny_llama

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_llama(tmp / "model", layers=args.layers, hidden=128, heads=4, max_len=512)
        figures = bench(model, tmp, args.steps, args.every, args.examples, args.batch_size)
    write(args.json, figures, argv, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
