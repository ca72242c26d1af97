"""Training speed on the CPU: each candidate option for the CPU recipe, as steps/s and as a
fraction of the matrix-multiply peak measured in the same run.

The workload is what an experiment point of ``phase-transition-cpu`` runs: forward, backward
and AdamW steps of the CPU recipe's character-level Llama (6 layers, d=128), on batches of 64
rows whose padded length varies from batch to batch as the recipe's does (36-38 tokens;
``pad_to_sequence_len: false``), one thread, in a fresh process per option. The FLOPs of a step
are counted by ``torch.utils.flop_counter``; the peak is a one-thread fp32 ``torch.mm`` of
1024 x 1024 matrices, and "step shapes" is the same at the shapes of the step's largest
products (2,432 tokens x 128 -> 512), the most a step could reach.

The options, each against "today" (what the recipe ran before this benchmark: 6 layers,
3,000 steps):

- AdamW as a for-loop (today), ``foreach`` or ``fused``;
- ``torch.compile`` (inductor's CPU code generation), with the recipe's varying lengths and with
  every batch padded to one length (what ``pad_to_sequence_len`` does);
- 2 threads for one point; 128 rows a step (reported per 64 rows, so the figures compare);
- a shallower model (4 layers, the same width);
- "recipe": the committed ``phase-transition-cpu`` spec's model and training options, read from
  the spec, so the row is always the recipe the main job runs.

"time to a fitted model" puts a recipe's steps beside its speed: today's recipe trained 3,000
steps; the recipe's are the spec's ``max_steps`` (or ``--steps-needed``, with
``--recipe-option`` naming the option it trains with), and the ratio is today's time over the
recipe's, its warm-up included. That the recipe's steps fit every point is the results page's
to show (``divplugin experiment run phase-transition-cpu``): speed alone proves nothing.

    python benchmarks/bench_training.py                 # about 6 minutes on an idle 2-core machine
    python benchmarks/bench_training.py --steps 20 --only fused,compile

Run it on an otherwise idle machine: the figures are speeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, chosen, write  # noqa: E402

TODAY_STEPS = 3000
TODAY_MODEL = {"layers": 6, "hidden": 128, "heads": 4}  # the recipe's model before this benchmark
# name -> worker settings: optimizer (loop, foreach, fused), compile, fixed length, rows, threads,
# and the model's shape where it differs from today's (layers, hidden, heads)
OPTIONS: dict[str, dict] = {
    "today": {},
    "foreach AdamW": {"optimizer": "foreach"},
    "fused AdamW": {"optimizer": "fused"},
    "torch.compile": {"compile": True},
    "torch.compile, one padded length": {"compile": True, "fixed_len": 40},
    "torch.compile + fused AdamW": {"compile": True, "optimizer": "fused"},
    "2 threads": {"threads": 2},
    "128 rows a step": {"rows": 128},
    "4 layers": {"layers": 4},
}
RECIPE = "recipe"


def recipe_settings(spec) -> dict:
    """The worker settings of a spec's recipe: its model's shape where it is not today's, and
    the training options of OPTIONS that its config turns on."""
    settings = {k: v for k, v in spec.base_model.model_dump().items() if k in TODAY_MODEL and v != TODAY_MODEL[k]}
    if spec.train.get("torch_compile"):
        settings["compile"] = True
    if spec.train.get("optimizer") == "adamw_torch_fused":
        settings["optimizer"] = "fused"
    if spec.train.get("micro_batch_size", 64) != 64:
        settings["rows"] = spec.train["micro_batch_size"]
    return settings


LENGTHS = (36, 37, 38)  # the padded lengths of the recipe's batches (rows of 34-38 tokens)


def worker(model_dir: str, steps: int, settings: dict) -> dict:
    """Time ``steps`` training steps (after warm-up) under ``settings``; one fresh process each."""
    import time

    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    opt_kind = settings.get("optimizer", "loop")
    kw = {"foreach": False} if opt_kind == "loop" else {opt_kind: True}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **kw)
    rows = settings.get("rows", 64)
    gen = torch.Generator().manual_seed(0)
    lengths = [settings["fixed_len"]] if settings.get("fixed_len") else list(LENGTHS)
    batches = [torch.randint(0, model.config.vocab_size, (rows, n), generator=gen) for n in lengths * 2]
    forward = torch.compile(model) if settings.get("compile") else model

    def step(x: torch.Tensor) -> float:
        loss = forward(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    start = time.perf_counter()
    for x in batches:  # every shape once: compilation and warm-up
        step(x)
    warm_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    seconds = time.perf_counter() - start
    with FlopCounterMode(display=False) as counter:  # one step of the middle length, eager
        x = batches[1 % len(batches)]
        model(input_ids=x, labels=x).loss.backward()
    opt.zero_grad()
    return {
        "steps_per_s": steps / seconds,
        "warm_s": warm_s,
        "flops_per_step": counter.get_total_flops(),
        "threads": torch.get_num_threads(),
    }


def peak(threads: int) -> dict:
    """One-thread fp32 matmul GFLOP/s: large square matrices, and the step's own largest shapes."""
    import time

    import torch

    torch.set_num_threads(threads)
    out = {}
    for name, (m, k, n) in {"square 1024": (1024, 1024, 1024), "step shapes": (2432, 128, 512)}.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            a @ b
            reps += 1
        out[name] = 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9
    return out


def run(model: Path, steps: int, settings: dict) -> dict:
    threads = str(settings.get("threads", 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(model), str(steps), json.dumps(settings)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the run failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        settings = json.loads(argv[3])
        print(json.dumps({**worker(argv[1], int(argv[2]), settings), "peak": peak(settings.get("threads", 1))}))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="Timed training steps per option (after warm-up).")
    ap.add_argument(
        "--only", help=f"Comma-separated options (default: all; 'today' always runs): {[*OPTIONS, RECIPE]}."
    )
    ap.add_argument(
        "--steps-needed",
        type=int,
        default=None,
        help="The new recipe's training steps (default: the phase-transition-cpu spec's max_steps).",
    )
    ap.add_argument(
        "--recipe-option",
        default=RECIPE,
        help="The option the new recipe trains with (default: recipe, the committed spec's own).",
    )
    add_json_flag(ap, "bench-training")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    names = chosen(ap, args.only, [*OPTIONS, RECIPE], "today", "option")
    if args.recipe_option not in [*OPTIONS, RECIPE]:
        ap.error(f"--recipe-option {args.recipe_option!r}: choose from {[*OPTIONS, RECIPE]}")
    if args.recipe_option not in names:  # the recipe's own option always runs, as today's does
        names.append(args.recipe_option)
    from divplugin.core.logs import quiet_dependencies
    from divplugin.experiments.platform import describe
    from divplugin.experiments.spec import load_spec
    from divplugin.models import build_tiny_model

    spec = load_spec("phase-transition-cpu")
    steps_needed = args.steps_needed or int(spec.train["max_steps"])
    options = {**OPTIONS, RECIPE: recipe_settings(spec)}
    quiet_dependencies()
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models: dict[tuple, Path] = {}
        for name in names:
            shape = {**TODAY_MODEL, **{k: v for k, v in options[name].items() if k in TODAY_MODEL}}
            key = tuple(sorted(shape.items()))
            if key not in models:
                models[key] = build_tiny_model(
                    Path(tmp) / f"model-{len(models)}", arch="llama", max_len=256, seed=0, **shape
                )
            r = run(models[key], args.steps, options[name])
            per64 = r["steps_per_s"] * options[name].get("rows", 64) / 64  # 64-row steps a second
            gflops = r["flops_per_step"] * r["steps_per_s"] / 1e9
            rows[name] = {
                "settings": options[name],
                **r,
                "steps_per_s_64_rows": per64,
                "gflops": gflops,
                "fraction_of_peak": gflops / (r["peak"]["square 1024"] * r["threads"]),
            }
            print(f"  {name:36} {per64:6.2f} steps/s  {gflops:5.1f} GFLOP/s  warm-up {r['warm_s']:5.1f} s", flush=True)
    today = rows["today"]
    print(f"\n{describe()['cpu']}; {args.steps} timed steps; one thread unless named; steps of 64 rows\n")
    print("| option | steps/s | / today | GFLOP/s | of matmul peak | warm-up s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['steps_per_s_64_rows']:.2f} | {r['steps_per_s_64_rows'] / today['steps_per_s_64_rows']:.2f} "
            f"| {r['gflops']:.1f} | {r['fraction_of_peak']:.0%} | {r['warm_s']:.1f} |"
        )
    p = today["peak"]
    print(
        f"\nmatmul peak, one thread: {p['square 1024']:.1f} GFLOP/s (1024^3); {p['step shapes']:.1f} GFLOP/s at the "
        f"step's largest shapes ({p['step shapes'] / p['square 1024']:.0%} of it)"
    )
    new = rows[args.recipe_option]
    today_s = TODAY_STEPS / today["steps_per_s_64_rows"]
    new_s = steps_needed / new["steps_per_s_64_rows"] + new["warm_s"]
    ratio = today_s / new_s
    print(
        f"time to a fitted model: today {TODAY_STEPS:,} steps = {today_s / 60:.1f} min; the recipe "
        f"({steps_needed:,} steps, {args.recipe_option}) = {new_s / 60:.1f} min: {ratio:.2f}x "
        f"({'meets' if ratio >= 2.2 else 'misses'} the goal of >= 2.2x)"
    )
    write(
        args.json,
        {
            "cpu": describe()["cpu"],
            "steps": args.steps,
            "rows": rows,
            "time_to_fit": {
                "today_steps": TODAY_STEPS,
                "today_seconds": today_s,
                "recipe_steps": steps_needed,
                "recipe_option": args.recipe_option,
                "recipe_seconds": new_s,
                "ratio": ratio,
            },
        },
        argv,
        __file__,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
