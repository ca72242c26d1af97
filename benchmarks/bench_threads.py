"""Training speed on a busy machine: thread count and OpenMP's wait policy, against a neighbour.

The workload is what an experiment point runs: forward, backward and AdamW steps of the
CPU recipe's character-level Llama (6 layers, d=128; batches of 64 x 40 tokens), timed in a
fresh process per setting. Each setting runs twice: on an otherwise idle machine, and beside
``--neighbours`` processes that each keep one core busy with a one-thread training loop of
the same model (another point, or a test suite's training test). The driver's default
(``divplugin experiment`` without ``--threads``) is the setting "driver": it counts the cores
other work leaves free just before the point starts (``divplugin.core.host.free_cores``).

    python benchmarks/bench_threads.py            # about 3 minutes on 2 cores
    python benchmarks/bench_threads.py --steps 20 --neighbours 1

Run it on an otherwise idle machine: its own neighbours are the load.
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

WORKLOAD = r"""
import json, sys, time, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(0)
x = torch.randint(0, model.config.vocab_size, (64, 40), generator=g)
steps, loop = int(sys.argv[2]), sys.argv[3] == "loop"

def step():
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
    opt.zero_grad()

for _ in range(2):
    step()
if loop:  # a neighbour: keep going until killed
    print("ready", flush=True)
    while True:
        step()
t = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t), "threads": torch.get_num_threads()}))
"""


def run(model: Path, steps: int, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(model), str(steps), "time"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the timed run failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def start_neighbours(model: Path, n: int) -> list[subprocess.Popen]:
    procs = []
    for _ in range(n):
        p = subprocess.Popen(
            [sys.executable, "-c", WORKLOAD, str(model), "0", "loop"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
        procs.append(p)
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit("a neighbour failed to start")
    return procs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="Timed steps per setting (after 2 warm-up steps).")
    ap.add_argument(
        "--neighbours", type=int, default=1, help="Processes that keep a core busy each, for the busy runs."
    )
    ap.add_argument("--loads", default="idle,busy", help="Which runs: idle, busy or both (idle,busy).")
    add_json_flag(ap, "bench-threads")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.neighbours < 1:
        ap.error("--steps and --neighbours must be >= 1")
    loads = [x.strip() for x in args.loads.split(",") if x.strip()]
    if not loads or not set(loads) <= {"idle", "busy"}:
        ap.error(f"--loads: idle, busy or idle,busy; got {args.loads!r}")
    from divplugin.core.host import free_cores
    from divplugin.core.logs import quiet_dependencies
    from divplugin.experiments.platform import describe
    from divplugin.models import build_tiny_model

    quiet_dependencies()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        build_tiny_model(model, arch="llama", layers=6, hidden=128, heads=4, max_len=256, seed=0)
        settings = {
            f"{cores} threads (all cores)": {"OMP_NUM_THREADS": str(cores)},
            f"{cores} threads, OMP_WAIT_POLICY=PASSIVE": {"OMP_NUM_THREADS": str(cores), "OMP_WAIT_POLICY": "PASSIVE"},
            "1 thread": {"OMP_NUM_THREADS": "1"},
        }
        rows: dict[str, dict[str, float]] = {}
        for load in loads:
            neighbours = start_neighbours(model, args.neighbours) if load == "busy" else []
            try:
                time.sleep(1.0 if neighbours else 0.0)
                driver = free_cores()  # what `divplugin experiment` gives a lone point now
                for name, env in {
                    **settings,
                    f"driver (free cores: {driver})": {"OMP_NUM_THREADS": str(driver)},
                }.items():
                    key = name.split(" (free")[0]
                    r = run(model, args.steps, env)
                    rows.setdefault(key, {})[load] = r["steps_per_s"]
                    rows[key][f"{load}_threads"] = r["threads"]
                    print(f"  {load:4}  {name:42} {r['steps_per_s']:6.2f} steps/s", flush=True)
            finally:
                for p in neighbours:
                    p.kill()
                    p.wait()
    print(f"\n{describe()['cpu']}, {cores} cores; busy = beside {args.neighbours} one-thread training loop(s)\n")
    print(
        "| setting | "
        + " | ".join(f"{load} steps/s" for load in loads)
        + (" | busy / idle" if len(loads) == 2 else "")
        + " | threads |"
    )
    print("|---" * (len(loads) + (3 if len(loads) == 2 else 2)) + "|")
    for name, r in rows.items():
        ratio = f" | {r['busy'] / r['idle']:.2f}" if len(loads) == 2 else ""
        print(
            f"| {name} | "
            + " | ".join(f"{r[load]:.2f}" for load in loads)
            + ratio
            + " | "
            + ", ".join(str(r[f"{load}_threads"]) for load in loads)
            + " |"
        )
    write(
        args.json,
        {"cpu": describe()["cpu"], "cores": cores, "neighbours": args.neighbours, "steps": args.steps, "rows": rows},
        argv,
        __file__,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
