"""Data on several machines: one large set written as N shards by Ray tasks on N nodes and
joined, against one process writing it whole, in the same run.

By default it starts a local Ray cluster of a head and one worker node (one CPU each, so the
two shard tasks land on different nodes, as on two machines), generates the paper's main
setting (markov_rewrite, 1,000 rules, input length 50, pattern length 20) at 10^7 rows both
ways, and prints seconds, rows/s, the speed-up, and whether the joined folder equals the
one-process folder byte for byte (every file's sha256).

    python benchmarks/bench_shards.py                              # 10^7 rows, local cluster
    python benchmarks/bench_shards.py --address HOST:6379 --shards 8   # an existing cluster
    python benchmarks/bench_shards.py --examples 200000            # a quick look

Needs the ``[cluster]`` extra (Ray). Each shard task writes to ``--tmp`` (default: a temporary
folder), which every node must see, as the shard folders on a shared file system would be.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, write  # noqa: E402


def settings(examples: int, rules: int) -> dict[str, Any]:
    return {
        "num_rules": rules,
        "num_examples": examples,
        "test_examples": 0,
        "seen_test_examples": 0,
        "input_len": 50,
        "pattern_len": 20,
        "seed": 0,
    }


def one_process(cfg: dict[str, Any], out: Path) -> float:
    from divplugin.data.writer import write_dataset
    from divplugin.generators import create

    t0 = time.perf_counter()
    write_dataset(create("markov_rewrite", **cfg), out, workers=1)
    return time.perf_counter() - t0


def write_part(cfg: dict[str, Any], out: str, k: int, n: int) -> dict[str, Any]:
    """One shard, as ``divplugin generate --shard k/n`` writes it (run as a Ray task)."""
    import ray

    from divplugin.data.shards import write_shard
    from divplugin.generators import create

    t0 = time.perf_counter()
    write_shard(create("markov_rewrite", **cfg), out, (k, n), workers=1)
    return {"shard": k, "seconds": time.perf_counter() - t0, "node": ray.get_runtime_context().get_node_id()}


def digests(folder: Path) -> dict[str, str]:
    """Every file's sha256 under ``folder``, by relative path."""
    from divplugin.core.fsutil import sha256_file

    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


class LocalCluster:
    """A Ray head and ``workers - 1`` worker nodes on this machine, one CPU each (``ray start``)."""

    def __init__(self, nodes: int, tmp: Path):
        self.ray = Path(sys.executable).parent / "ray"
        if not self.ray.is_file():
            raise SystemExit("the ray command is not installed beside this Python: pip install 'divplugin[cluster]'")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        self.env = {**os.environ, "RAY_TMPDIR": str(tmp)}
        common = ["--num-cpus", "1", "--disable-usage-stats", "--object-store-memory", str(200 * 2**20)]
        self._start(["--head", "--port", str(port), "--include-dashboard", "false", *common])
        for _ in range(nodes - 1):
            self._start(["--address", self.address, *common])

    def _start(self, args: list[str]) -> None:
        r = subprocess.run([str(self.ray), "start", *args], capture_output=True, text=True, env=self.env, timeout=300)
        if r.returncode != 0:
            self.stop()
            raise SystemExit(f"ray start {' '.join(args[:2])} failed:\n{r.stderr[-2000:]}")

    def stop(self) -> None:
        subprocess.run([str(self.ray), "stop", "--force"], capture_output=True, env=self.env, timeout=120)


def on_ray(cfg: dict[str, Any], address: str, shards: int, tmp: Path, out: Path) -> tuple[float, float, list[dict]]:
    """Shards as Ray tasks (one CPU each, spread over the nodes), then the join: (seconds for
    the tasks, seconds for the join, each task's record)."""
    import ray

    from divplugin.data.shards import join_shards

    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(write_part)
        parts = [tmp / f"part{k}" for k in range(shards)]
        t0 = time.perf_counter()
        done = ray.get([task.remote(cfg, str(p), k, shards) for k, p in enumerate(parts)])
        t_tasks = time.perf_counter() - t0
    finally:
        ray.shutdown()
    t0 = time.perf_counter()
    join_shards(parts, out)
    t_join = time.perf_counter() - t0
    for p in parts:
        shutil.rmtree(p)
    return t_tasks, t_join, done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=10_000_000, help="training rows (default: 10^7)")
    ap.add_argument("--rules", type=int, default=1000, help="distinct rules (paper's main setting: 1,000)")
    ap.add_argument("--shards", type=int, default=2, help="shards, one Ray task each (default: 2)")
    ap.add_argument("--address", default=None, help="an existing Ray cluster (default: start a head and a worker here)")
    ap.add_argument("--tmp", type=Path, default=None, help="a folder every node sees (default: a temporary one)")
    add_json_flag(ap, "bench-shards")
    args = ap.parse_args(argv)
    if args.examples < 1 or args.shards < 1:
        ap.error("--examples and --shards must be >= 1")
    cfg = settings(args.examples, args.rules)

    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        tmp = Path(d)
        cluster = None
        t0 = time.perf_counter()
        if args.address is None:
            cluster = LocalCluster(args.shards, tmp / "ray")
        address = args.address or cluster.address
        t_start = time.perf_counter() - t0
        try:
            t_one = one_process(cfg, tmp / "one")
            t_tasks, t_join, parts = on_ray(cfg, address, args.shards, tmp, tmp / "joined")
        finally:
            if cluster is not None:
                cluster.stop()
        one, joined = digests(tmp / "one"), digests(tmp / "joined")
        same = one == joined
        size = (tmp / "one" / "train.jsonl").stat().st_size

    t_ray = t_tasks + t_join
    nodes = len({p["node"] for p in parts})
    print(
        f"\n{args.examples:,} rows of markov_rewrite ({args.rules:,} rules, input 50), train.jsonl {size / 1e9:.2f} GB"
    )
    print(f"{'how':<44} {'seconds':>9} {'rows/s':>12}")
    print(f"{'one process (1 worker)':<44} {t_one:>9.1f} {args.examples / t_one:>12,.0f}")
    label = f"Ray: {args.shards} shard tasks on {nodes} node(s) + join"
    print(f"{label:<44} {t_ray:>9.1f} {args.examples / t_ray:>12,.0f}")
    print(f"{'  of which the shard tasks':<44} {t_tasks:>9.1f}")
    print(f"{'  of which the join':<44} {t_join:>9.1f}")
    for p in sorted(parts, key=lambda p: p["shard"]):
        print(f"    shard {p['shard']}: {p['seconds']:.1f} s")
    print(f"speed-up: {t_one / t_ray:.2f}x ({t_one / t_tasks:.2f}x before the join)")
    print(f"joined folder equals the one-process folder byte for byte: {'yes' if same else 'NO'} ({len(one)} files)")
    if cluster is not None:
        print(f"(starting the local cluster took {t_start:.1f} s, not counted)")
    write(
        args.json,
        {
            "generator": "markov_rewrite",
            "rows": args.examples,
            "settings": cfg,
            "shards": args.shards,
            "cluster": "existing"
            if args.address
            else f"local: a head and {args.shards - 1} worker node(s), 1 CPU each",
            "train_jsonl_bytes": size,
            "seconds_one_process": round(t_one, 2),
            "seconds_ray": round(t_ray, 2),
            "seconds_ray_tasks": round(t_tasks, 2),
            "seconds_join": round(t_join, 2),
            "nodes": nodes,
            "seconds_shard": [round(p["seconds"], 2) for p in sorted(parts, key=lambda p: p["shard"])],
            "speedup": round(t_one / t_ray, 2),
            "speedup_before_join": round(t_one / t_tasks, 2),
            "byte_identical": same,
            "files": len(one),
        },
        argv,
        __file__,
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
