"""Sweeps past one machine: each point not done yet runs as a Slurm job (through submitit) or
as a Ray task, with the resources the spec's ``resources:`` asks for (flags override them), in
the shared results folder, exactly as the local sweep runs it (:func:`run_one`).

- Slurm: one array job for the points; each point keeps its logs in ``points/ID/`` (the job's
  own in ``slurm/``); a preempted or timed-out point is requeued (submitit's checkpointing) and
  starts again from the beginning; a dependent job makes the results page when the last point
  ends; ``divplugin experiment status`` and ``report`` work any time from any machine that sees
  the folder. While the driver waits, a job that died without a result (node failure, kill) is
  submitted again, ``retries`` times at most.
- Ray: each point is a task with its CPUs and GPUs on the cluster at ``address`` (default: a
  local one started for the run); a task whose worker or node is lost is retried.

The folder is the only thing the jobs share: the base model and the data cache are built
under file locks, and axolotl prepares datasets under its own lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from divplugin.errors import ConfigError
from divplugin.experiments.runner import PointResult, Processes, finished, point_id, run_point
from divplugin.experiments.spec import Point, Resources, Spec

EXECUTORS = ("local", "slurm", "ray")
DEAD = ("FAILED", "NODE_FAIL", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED")


def point_env(cpus: int) -> dict[str, str]:
    """A point's thread variables on its node: its cores, as the local sweep gives a slot."""
    n = str(cpus)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "AXOLOTL_DATASET_NUM_PROC": n}


def run_one(spec: Spec, point: Point, out: str | Path, overrides: dict[str, Any], cpus: int) -> dict[str, Any]:
    """What one job runs: the point, in the shared folder ``out``; its result as a dict.

    A SIGTERM (the scheduler cancelling or preempting the job) ends the point's processes and
    raises :class:`~divplugin.experiments.runner.Stopped`: no result is written, so the point
    counts as not run (its job is submitted again, or the next run does it), never as failed."""
    import signal
    import threading

    processes = Processes()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: processes.stop())
    try:
        result = run_point(spec, point, Path(out), overrides, env=point_env(cpus), processes=processes)
    finally:
        processes.stop()  # nothing of the point outlives its job
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return asdict(result)


def _needs(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"needs {module}, which is not installed: pip install 'divplugin[cluster]'", "--executor"
        ) from None


def resources(spec: Spec, **flags: Any) -> Resources:
    """The spec's per-point resources with the flags given (None: the spec's) over them."""
    return spec.resources.model_copy(update={k: v for k, v in flags.items() if v is not None})


def slurm_parameters(spec: Spec, res: Resources, points: int) -> dict[str, Any]:
    """submitit's parameters for the points' array job."""
    params: dict[str, Any] = {
        "name": f"divplugin-{spec.name}",
        "timeout_min": res.time_min,
        "cpus_per_task": res.cpus,
        "mem_gb": res.mem_gb,
        "tasks_per_node": 1,
        "slurm_array_parallelism": max(1, points),
    }
    if res.gpus:
        params["gpus_per_node"] = res.gpus
    if res.partition:
        params["slurm_partition"] = res.partition
    if res.account:
        params["slurm_account"] = res.account
    return params


class PointJob:
    """What a Slurm job calls (through submitit): one point. Its ``checkpoint`` makes submitit
    requeue the job when Slurm preempts it or its time runs out; the point then starts again."""

    def __call__(self, spec: Spec, point: Point, out: str, overrides: dict[str, Any], cpus: int) -> dict[str, Any]:
        return run_one(spec, point, out, overrides, cpus)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def report_job(spec: Spec, out: str, overrides: dict[str, Any]) -> str:
    """The dependent job's work: the results page from the points done in ``out``."""
    from divplugin.experiments.sweep import collect_report

    _, files = collect_report(spec, out, overrides or None)
    return str(files["page"])


def submit_slurm(
    spec: Spec,
    out: Path,
    overrides: dict[str, Any],
    points: list[Point],
    res: Resources,
    *,
    wait: bool = True,
    retries: int = 1,
    poll: float = 5.0,
    log: Callable[[str], None] = print,
) -> list[PointResult] | None:
    """Submit ``points`` as one array job and the page as a job after it; with ``wait``, follow
    them (resubmitting a point whose job died, ``retries`` times) and return the results."""
    submitit = _needs("submitit")
    out = Path(out).resolve()
    folder = out / "slurm" / "%j"
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(**slurm_parameters(spec, res, len(points)))
    task = PointJob()
    with ex.batch():
        jobs = [ex.submit(task, spec, p, str(out), overrides, res.cpus) for p in points]
    array = jobs[0].job_id.split("_")[0]
    log(f"submitted {len(jobs)} points as Slurm array job {array} (logs: points/ID/, {out / 'slurm'})")
    page = submitit.AutoExecutor(folder=folder, cluster="slurm")
    page.update_parameters(
        name=f"divplugin-{spec.name}-page",
        timeout_min=30,
        cpus_per_task=1,
        mem_gb=4,
        slurm_partition=res.partition,
        slurm_additional_parameters={"dependency": f"afterany:{array}", "kill-on-invalid-dep": "yes"},
    )
    page_job = page.submit(report_job, spec, str(out), overrides)
    log(f"the results page: job {page_job.job_id}, after the points (or 'divplugin experiment report')")
    if not wait:
        return None
    live = dict(zip((point_id(p) for p in points), zip(points, jobs)))
    tries = dict.fromkeys(live, 0)
    results: dict[str, PointResult] = {}
    while live:
        time.sleep(poll)
        for pid, (p, job) in list(live.items()):
            state = str(job.state).split()[0]  # "CANCELLED by 0" -> CANCELLED
            if state not in DEAD and not job.done():
                continue
            r = finished(spec, p, out, overrides) or _recorded(out, pid)
            if r is None and tries[pid] < retries:
                tries[pid] += 1
                log(f"point {pid}: job {job.job_id} ended {state} without a result; submitting it again")
                again = submitit.AutoExecutor(folder=folder, cluster="slurm")
                again.update_parameters(**slurm_parameters(spec, res, 1))
                live[pid] = (p, again.submit(task, spec, p, str(out), overrides, res.cpus))
                continue
            results[pid] = r or PointResult(pid, p.values, "failed", seed=p.seed, error=f"Slurm job {state}")
            log(f"point {pid}: {results[pid].status}")
            del live[pid]
    return [results[point_id(p)] for p in points]


def _recorded(out: Path, pid: str) -> PointResult | None:
    """A point's result.json as written (a failure too), None when there is none."""
    from divplugin.experiments.runner import load_result

    path = out / "points" / pid / "result.json"
    try:
        return load_result(json.loads(path.read_text()), path.parent)
    except (OSError, ValueError, TypeError):
        return None


def run_ray(
    spec: Spec,
    out: Path,
    overrides: dict[str, Any],
    points: list[Point],
    res: Resources,
    *,
    address: str | None = None,
    retries: int = 2,
    log: Callable[[str], None] = print,
    on_result: Callable[[PointResult], None] | None = None,
) -> list[PointResult]:
    """Run ``points`` as Ray tasks on the cluster at ``address`` (None: a local one)."""
    ray = _needs("ray")
    out = Path(out).resolve()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        remote = ray.remote(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=retries, retry_exceptions=False)(run_one)
        refs = {remote.remote(spec, p, str(out), overrides, res.cpus): p for p in points}
        log(f"{len(refs)} points as Ray tasks ({res.cpus} CPUs, {res.gpus} GPUs each)")
        results: dict[str, PointResult] = {}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            p = refs.pop(ready[0])
            pid = point_id(p)
            try:
                r = PointResult(**ray.get(ready[0]))
            except Exception as exc:  # the task failed past its retries
                r = _recorded(out, pid) or PointResult(pid, p.values, "failed", seed=p.seed, error=f"Ray: {exc}")
            results[pid] = r
            if on_result:
                on_result(r)
        return [results[point_id(p)] for p in points]
    finally:
        if started:
            ray.shutdown()
