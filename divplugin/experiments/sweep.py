"""A sweep: the points of a spec run (or resumed) in one out folder, several at once with
their share of the devices or cores, and the report written as each point ends."""

from __future__ import annotations

import fnmatch
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from divplugin.core.host import free_cores, usable_cores
from divplugin.errors import ConfigError
from divplugin.experiments.platform import KERNEL_VARIABLES
from divplugin.experiments.report import recorded_overrides, with_means, write_all
from divplugin.experiments.runner import (
    PointResult,
    Processes,
    build_base_model,
    finished,
    point_id,
    prepare_pretrained,
    run_point,
)
from divplugin.experiments.spec import Point, Spec


def slot_env(slot: int, parallel: int, devices: list[str] | None, threads: int | None) -> dict[str, str]:
    """Variables for the processes of worker ``slot`` of ``parallel``: its share of
    ``devices`` as CUDA_VISIBLE_DEVICES, and ``threads`` (default: the machine's cores shared
    out) as OMP_NUM_THREADS / MKL_NUM_THREADS and as axolotl's data processes
    (AXOLOTL_DATASET_NUM_PROC: by default one per core, which on a shared machine spends its
    time starting processes; a config's ``dataset_num_proc`` still wins)."""
    env: dict[str, str] = {}
    if devices:
        share = len(devices) // parallel
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices[slot * share : (slot + 1) * share])
    n = threads or max(1, usable_cores() // parallel)
    if threads or parallel > 1:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = env["AXOLOTL_DATASET_NUM_PROC"] = str(n)
    return env


def select(spec: Spec, only: list[str] | None) -> list[Point]:
    """The spec's points whose id matches one of ``only`` (glob patterns; None: all)."""
    points = spec.points()
    if not only:
        return points
    ids = [point_id(p) for p in points]
    for pattern in only:
        if not any(fnmatch.fnmatchcase(i, pattern) for i in ids):
            raise ConfigError(f"matches no point of {spec.name}; the points are: {', '.join(ids)}", f"--only {pattern}")
    return [p for p, i in zip(points, ids) if any(fnmatch.fnmatchcase(i, pat) for pat in only)]


def run_experiment(
    spec: Spec,
    out: str | Path,
    overrides: dict[str, Any] | None = None,
    hooks: dict[str, Callable] | None = None,
    *,
    parallel: int = 1,
    devices: list[str] | None = None,
    threads: int | None = None,
    only: list[str] | None = None,
    command: str | None = None,
) -> tuple[list[PointResult], dict[str, Path]]:
    """Run (or resume) the points of ``spec`` in ``out``; returns the results and report files.

    ``parallel`` points run at once, each with its share of ``devices`` (CUDA_VISIBLE_DEVICES)
    or of the CPU cores (``threads`` each). ``only``: glob patterns of point ids to run (for
    one point per cluster job); the report still covers every point already done.
    ``hooks``: optional ``point(index, id)``, ``phase(id, name)``, ``step(id, done, total)``
    and ``result(PointResult)`` callbacks for progress display. ``command``: the command line
    that started it, recorded in results.json with the settings it ran under."""
    if parallel < 1:
        raise ConfigError(f"must be >= 1, got {parallel}", "--parallel")
    if devices is not None and len(devices) < parallel:
        raise ConfigError(f"{len(devices)} devices cannot be shared by {parallel} parallel points", "--devices")
    hooks = hooks or {}
    overrides = dict(overrides or {})
    processes = Processes()  # this sweep's: stopping them stops no other sweep
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    todo = select(spec, only)
    results: dict[str, PointResult] = {}
    lock = threading.Lock()

    def report() -> dict[str, Path]:
        ordered = [results[i] for i in (point_id(p) for p in spec.points()) if i in results]
        return write_all(spec, ordered, out, earlier + time.perf_counter() - t0, overrides, invocation)

    done = {point_id(p): r for p in spec.points() if (r := finished(spec, p, out, overrides)) is not None}
    for p in spec.points():  # points done earlier (or by other jobs) count in the report
        if p not in todo and point_id(p) in done:
            results[point_id(p)] = done[point_id(p)]
    # a resumed sweep's wall time adds this command's to the earlier ones'
    earlier = _recorded_wall(out) if done else 0.0
    free = list(range(parallel))
    pending = [p for p in todo if point_id(p) not in done]
    if threads is None and not devices and pending:
        # the points running at once share the cores no other work uses: on a busy machine,
        # threads that wait by spinning on a shared core crawl (benchmarks/bench_threads.py);
        # training is deterministic by seed whatever the thread count, so results do not change
        threads = max(1, free_cores() // min(parallel, len(pending)))
    invocation = (
        {
            "command": command,
            "parallel": parallel,
            "threads": threads,
            "only": list(only or []),
            "env": {k: os.environ[k] for k in KERNEL_VARIABLES if os.environ.get(k)},
        }
        if pending
        else None
    )
    if spec.base_model is not None and "base_model" not in overrides:
        # built here, before any worker starts: lazy imports are not safe to race
        for seed in dict.fromkeys(p.seed for p in pending):
            build_base_model(spec, out, seed)
    if pending:
        prepare_pretrained(spec, overrides)

    def work(i: int, p: Point, slot: int) -> PointResult:
        pid = point_id(p)
        if "point" in hooks:
            hooks["point"](i, pid)
        step = hooks.get("step")
        phase = hooks.get("phase")
        return run_point(
            spec,
            p,
            out,
            overrides,
            (lambda d, t: step(pid, d, t)) if step else None,
            (lambda name: phase(pid, name)) if phase else None,
            slot_env(slot, parallel, devices, threads),
            processes,
        )

    pool = ThreadPoolExecutor(max_workers=parallel)
    running: dict[Future, int] = {}
    try:
        queue = list(enumerate(todo))
        while queue or running:
            while queue and free:
                i, p = queue.pop(0)
                slot = free.pop(0)
                running[pool.submit(work, i, p, slot)] = slot
            finished_now, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished_now:
                free.append(running.pop(fut))
                r = fut.result()
                with lock:
                    results[r.id] = r
                if "result" in hooks:
                    hooks["result"](r)
                report()
            free.sort()
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or failed: end the points in progress, keep what is done
        processes.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        report()
        raise
    pool.shutdown()
    return with_means(spec, [results[point_id(p)] for p in todo]), report()


def collect_report(
    spec: Spec, out: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[list[PointResult], dict[str, Path]]:
    """The results page, tables and plot from the points already done in ``out`` (by this
    machine or by cluster jobs that shared the folder), without running anything. Without
    ``overrides`` the ``--set`` overrides the folder's results.json records are used."""
    out = Path(out).resolve()
    if not (out / "points").is_dir():
        raise ConfigError(f"{out} holds no points of a run", "--out")
    if overrides is None:
        overrides = recorded_overrides(out)
    results = [r for p in spec.points() if (r := finished(spec, p, out, dict(overrides or {}))) is not None]
    return with_means(spec, results), write_all(spec, results, out, _recorded_wall(out), overrides)


def _recorded_wall(out: Path) -> float:
    """The wall time the folder's results.json records (the commands that ran its points), else 0."""
    try:
        return float(json.loads((out / "results.json").read_text()).get("wall_seconds", 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0
