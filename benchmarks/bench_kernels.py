"""Which kernel settings move the weights: torch's, oneDNN's and MKL's instruction sets, MKL's
reproducibility mode and the thread count, against the cost of pinning them.

The workload is what an experiment point runs on a CPU: forward, backward and AdamW steps of
the CPU recipe's character-level Llama (6 layers, d=128; batches of 64 x 40 tokens), seeded,
with deterministic algorithms, in a fresh process per setting (the variables are read when
the libraries load). Each setting prints the sha256 of the trained weights, whether they are
the native run's, the final loss and steps/s against the native run's.

A setting that pins every kernel choice gives the same weights whatever else the machine
offers: "portable" (ATen's default kernels, MKL's COMPATIBLE reproducibility branch, oneDNN
held to SSE4.1) is run again with MKL offered SSE4.2 only (oneDNN already is held to SSE4.1),
which is what an older CPU would offer, and with 2 threads; the same weights under all say the
choice no longer depends on the instruction set.

    python benchmarks/bench_kernels.py               # about 3 minutes on one core
    python benchmarks/bench_kernels.py --steps 10 --json kernels.json

Run it on an otherwise idle machine for the steps/s; the weights do not depend on the load.
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

WORKLOAD = r"""
import hashlib, json, sys, time, torch
from transformers import AutoModelForCausalLM
torch.use_deterministic_algorithms(True)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(0)
steps = int(sys.argv[2])
batches = [torch.randint(0, model.config.vocab_size, (64, 40), generator=g) for _ in range(4)]
t = time.perf_counter()
for i in range(steps):
    x = batches[i % len(batches)]
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
seconds = time.perf_counter() - t
h = hashlib.sha256()
for name, p in sorted(model.state_dict().items()):
    h.update(name.encode())
    h.update(p.detach().contiguous().numpy().tobytes())
print(json.dumps({"sha256": h.hexdigest(), "loss": loss.item(), "steps_per_s": steps / seconds,
                  "threads": torch.get_num_threads(), "capability": torch.backends.cpu.get_cpu_capability()}))
"""

PORTABLE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}

SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "ONEDNN_MAX_CPU_ISA=SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "MKL_ENABLE_INSTRUCTIONS=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2"},
    "2 threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "portable": PORTABLE,
    "portable, MKL and oneDNN offered SSE4": {**PORTABLE, "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "portable, 2 threads": {**PORTABLE, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
}


def run(model: Path, steps: int, env: dict[str, str]) -> dict:
    from divplugin.experiments.platform import KERNEL_VARIABLES

    base = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(model), str(steps)],
        env={**base, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the run failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="Training steps per setting.")
    ap.add_argument("--only", help="Comma-separated setting names to run (default: all; 'native' always runs).")
    add_json_flag(ap, "bench-kernels")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    names = chosen(ap, args.only, SETTINGS, "native", "setting")
    from divplugin.core.logs import quiet_dependencies
    from divplugin.experiments.platform import describe
    from divplugin.models import build_tiny_model

    quiet_dependencies()
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        build_tiny_model(model, arch="llama", layers=6, hidden=128, heads=4, max_len=256, seed=0)
        for name in names:
            rows[name] = {"env": SETTINGS[name], **run(model, args.steps, SETTINGS[name])}
            print(f"  {name:40} {rows[name]['sha256'][:12]}  {rows[name]['steps_per_s']:6.2f} steps/s", flush=True)
    native = rows["native"]
    print(f"\n{describe()['cpu']}, torch kernels {native['capability']}; {args.steps} steps, one thread unless named\n")
    print("| setting | weights (sha256) | native's weights | final loss | steps/s | / native |")
    print("|---|---|---|---:|---:|---:|")
    for name, r in rows.items():
        same = "yes" if r["sha256"] == native["sha256"] else "no"
        print(
            f"| {name} | `{r['sha256'][:12]}` | {same} | {r['loss']:.6f} | {r['steps_per_s']:.2f} | "
            f"{r['steps_per_s'] / native['steps_per_s']:.2f} |"
        )
    portable = [r["sha256"] for n, r in rows.items() if n.startswith("portable")]
    if len(portable) > 1:
        print(f"\nportable settings agree with each other: {'yes' if len(set(portable)) == 1 else 'no'}")
    write(args.json, {"cpu": describe()["cpu"], "steps": args.steps, "rows": rows}, argv, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
