"""Rerunning recorded points: do the weights and metrics come out the same here, and if not,
how does this platform differ from the one the results were made on?

>>> from divplugin.experiments import load_spec
>>> from divplugin.experiments.verify import verify
>>> verify(load_spec("phase-transition-cpu"), "docs/results/phase-transition-cpu", "/tmp/rerun")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from divplugin.errors import ConfigError
from divplugin.experiments.platform import differences
from divplugin.experiments.report import recorded_overrides
from divplugin.experiments.runner import PointResult, load_result, point_hash, point_id
from divplugin.experiments.spec import Point, Spec


@dataclass
class Check:
    """One rerun point against its record."""

    id: str
    recorded: PointResult
    rerun: PointResult
    metrics: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    platform: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # {field: (recorded, here)}

    @property
    def metrics_equal(self) -> bool:
        return self.rerun.status == "done" and all(a == b for a, b in self.metrics.values())

    @property
    def weights(self) -> str:
        """ "equal", "differ", or "not recorded" (a result made before weights were recorded)."""
        if not self.recorded.weights or not self.rerun.weights:
            return "not recorded"
        return "equal" if self.recorded.weights == self.rerun.weights else "differ"

    @property
    def ok(self) -> bool:
        return self.metrics_equal and self.weights != "differ"


def recorded_results(reference: str | Path) -> dict[str, PointResult]:
    """The points a results folder holds (``points/ID/result.json``, else its ``results.json``)."""
    reference = Path(reference)
    if not reference.is_dir():
        raise ConfigError(f"{reference} is not a results folder", "RECORD")
    found: dict[str, PointResult] = {}
    files = sorted((reference / "points").glob("*/result.json"))
    try:
        if files:
            for f in files:
                r = load_result(json.loads(f.read_text()), f.parent)
                found[r.id] = r
        elif (reference / "results.json").is_file():
            for p in json.loads((reference / "results.json").read_text()).get("points", []):
                r = load_result(p)
                found[r.id] = r
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{reference}: unreadable result ({exc})", "RECORD") from None
    done = {k: r for k, r in found.items() if r.status == "done"}
    if not done:
        raise ConfigError(f"{reference} holds no finished point (points/*/result.json or results.json)", "RECORD")
    return done


def compare(recorded: PointResult, rerun: PointResult) -> Check:
    """The rerun's metrics beside the recorded ones, and the platform fields that differ
    (none listed when the record does not say where it was made)."""
    names = sorted(set(recorded.metrics) | set(rerun.metrics))
    metrics = {m: (recorded.metrics.get(m), rerun.metrics.get(m)) for m in names}
    platform = differences(recorded.platform, rerun.platform) if recorded.platform else {}
    return Check(recorded.id, recorded, rerun, metrics, platform)


def chosen_points(spec: Spec, recorded: dict[str, PointResult], only: list[str] | None) -> list[Point]:
    """The points to rerun: those ``only`` names (globs), else the first one recorded."""
    from divplugin.experiments.sweep import select

    points = [p for p in (select(spec, only) if only else spec.points()) if point_id(p) in recorded]
    if not points:
        wanted = ", ".join(only) if only else "any point"
        raise ConfigError(
            f"no finished point of {spec.name} matching {wanted} is recorded there "
            f"(recorded: {', '.join(sorted(recorded))})",
            "RECORD",
        )
    return points if only else points[:1]


def verify(
    spec: Spec,
    reference: str | Path,
    out: str | Path,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    hooks: dict[str, Callable] | None = None,
    threads: int | None = None,
) -> list[Check]:
    """Rerun recorded points of ``spec`` in ``out`` (a folder that holds none of them yet) and
    compare each with its record in ``reference``. A point whose config hash differs from the
    record's (the spec, the overrides or the data changed) cannot be compared: a named error."""
    from divplugin.experiments.sweep import run_experiment

    # no --set given: the record's own (a page made with --set says so in results.json)
    overrides = dict(overrides or recorded_overrides(reference))
    recorded = recorded_results(reference)
    points = chosen_points(spec, recorded, only)
    out = Path(out).resolve()
    for p in points:
        pid = point_id(p)
        digest = point_hash(spec, p, out, overrides)
        if recorded[pid].hash and recorded[pid].hash != digest:
            raise ConfigError(
                f"point {pid}: its config hash here is {digest}, the record's {recorded[pid].hash}; "
                "the spec, the overrides or the generated data differ, so there is nothing to compare",
                "RECORD",
            )
        if (out / "points" / pid / "result.json").exists():
            raise ConfigError(f"{out} already holds point {pid}; verify reruns into a folder that does not", "--out")
    if threads is None:  # as many threads as the record says it had, where it says
        threads = next(
            (
                r.platform["threads"]
                for r in (recorded[point_id(p)] for p in points)
                if isinstance(r.platform.get("threads"), int)
            ),
            None,
        )
    results, _ = run_experiment(
        spec, out, overrides, hooks, parallel=1, threads=threads, only=[point_id(p) for p in points]
    )
    by_id = {r.id: r for r in results}
    return [compare(recorded[point_id(p)], by_id[point_id(p)]) for p in points]
