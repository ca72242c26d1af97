"""Where a sweep stands, read from its results folder alone, so that any machine that sees
the folder can tell (a login node, a laptop with the cluster's disk mounted).

Each point is one of:

- ``done``: its ``result.json`` holds the current config's hash and a result;
- ``failed``: the same, with the error (the next run retries it);
- ``running``: started (``running.json``, written by the process that runs it:
  :func:`divplugin.experiments.runner.mark_running`) and its logs moved within
  ``stale_after`` seconds;
- ``lost``: started, but its process is gone (same host, pid not alive) or its logs have been
  still for longer than ``stale_after`` (a job killed or preempted: the next run redoes it);
- ``stale``: a result of another config (the spec or ``--set`` changed: it will be redone);
- ``pending``: not started.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from divplugin.core.table import Table
from divplugin.experiments.runner import RUNNING, STEP, load_result, point_hash, point_id
from divplugin.experiments.spec import Point, Spec

STALE_AFTER = 900.0  # seconds without a log line before a started point counts as lost
STATES = ("done", "failed", "running", "lost", "stale", "pending")
State = Literal["done", "failed", "running", "lost", "stale", "pending"]


@dataclass
class PointStatus:
    id: str
    state: State
    host: str = ""
    started: float | None = None  # epoch seconds
    quiet: float | None = None  # seconds since its logs last moved
    progress: str = ""  # e.g. "train 1,328/3,000"
    error: str = ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _progress(pdir: Path, total: Any, phase: str) -> str:
    log = pdir / "train.log"
    if phase == "eval":
        return "eval"
    if not log.is_file():
        return phase
    with open(log, "rb") as f:  # the last few KB hold the progress bar's last state
        f.seek(max(0, log.stat().st_size - 8192))
        tail = f.read().decode(errors="replace")
    steps = [int(done) for done, of in STEP.findall(tail) if str(of) == str(total)]
    return f"train {steps[-1]:,}/{int(total):,}" if steps and total else "train"


def point_status(
    spec: Spec,
    point: Point,
    out: Path,
    overrides: dict[str, Any],
    now: float | None = None,
    stale_after: float = STALE_AFTER,
) -> PointStatus:
    """The state of one point, from ``out`` alone."""
    now = time.time() if now is None else now
    pid_ = point_id(point)
    pdir = out / "points" / pid_
    done = pdir / "result.json"
    marker = pdir / RUNNING
    if done.is_file():  # a run deletes it before it starts: a result is the last word
        try:
            old = load_result(json.loads(done.read_text()), pdir)
        except (ValueError, TypeError):
            return PointStatus(pid_, "stale", error="result.json cannot be read")
        if old.hash != point_hash(spec, point, out, overrides):
            return PointStatus(pid_, "stale")
        error = old.error.strip().splitlines()[0] if old.error.strip() else ""
        return PointStatus(pid_, "done" if old.status == "done" else "failed", error=error)
    if not marker.is_file() and not (pdir / "train.yml").is_file():
        return PointStatus(pid_, "pending")
    info: dict[str, Any] = {}
    if marker.is_file():
        try:
            info = json.loads(marker.read_text())
        except ValueError:
            info = {}
    logs = [p for p in (marker, pdir / "train.log", pdir / "eval.log") if p.is_file()]
    quiet = now - max(p.stat().st_mtime for p in logs) if logs else None
    host, pid = str(info.get("host", "")), info.get("pid")
    gone = host == socket.gethostname() and isinstance(pid, int) and not _alive(pid)
    state: State = "lost" if gone or quiet is None or quiet > stale_after else "running"
    total = spec.train.get("max_steps") if "max_steps" not in overrides else overrides["max_steps"]
    return PointStatus(
        pid_,
        state,
        host=host,
        started=info.get("started"),
        quiet=None if quiet is None else round(quiet, 1),
        progress=_progress(pdir, total, str(info.get("phase", "train"))),
    )


def sweep_status(
    spec: Spec,
    out: Path,
    overrides: dict[str, Any],
    points: list[Point] | None = None,
    stale_after: float = STALE_AFTER,
) -> list[PointStatus]:
    now = time.time()
    return [point_status(spec, p, out, overrides, now, stale_after) for p in (points or spec.points())]


def counts(states: list[PointStatus]) -> dict[str, int]:
    return {s: sum(p.state == s for p in states) for s in STATES}


def status_table(states: list[PointStatus]) -> Table:
    def ago(seconds: float | None) -> str:
        if seconds is None:
            return ""
        return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"

    now = time.time()
    rows = [
        [
            p.id,
            p.state,
            p.progress,
            p.host,
            ago(now - p.started) if p.started else "",
            ago(p.quiet),
            p.error[:80],
        ]
        for p in states
    ]
    n = counts(states)
    caption = ", ".join(f"{v} {k}" for k, v in n.items() if v)
    return Table(
        "points",
        ["point", "state", "progress", "host", "running for", "last log", "error"],
        rows,
        caption,
        left=(0, 1, 2, 3, 6),
    )


def as_json(states: list[PointStatus]) -> str:
    return json.dumps({"counts": counts(states), "points": [asdict(p) for p in states]}, indent=2)
