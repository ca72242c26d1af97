"""Experiments: generate -> train (axolotl + the plugin) -> evaluate (lm-eval) -> tables and plots.

>>> from divplugin.experiments import load_spec, run_experiment
>>> spec = load_spec("phase-transition-cpu")           # doctest: +SKIP
>>> run_experiment(spec, "results/phase-transition")   # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from divplugin.experiments.report import check_expectations, write_all
from divplugin.experiments.runner import PointResult, build_base_model, point_id, run_point
from divplugin.experiments.spec import Spec, load_spec, spec_names


def run_experiment(spec: Spec, out: str | Path, overrides: dict[str, Any] | None = None,
                   hooks: dict[str, Callable] | None = None) -> tuple[list[PointResult], dict[str, Path]]:
    """Run (or resume) every point of ``spec`` in ``out``; returns the results and report files.

    ``hooks``: optional ``point(index, id)``, ``phase(name)``, ``step(done, total)`` and
    ``result(PointResult)`` callbacks for progress display."""
    hooks = hooks or {}
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_base_model(spec, out)
    results = []
    for i, values in enumerate(spec.points()):
        if "point" in hooks:
            hooks["point"](i, point_id(values))
        r = run_point(spec, values, out, dict(overrides or {}), hooks.get("step"), hooks.get("phase"))
        results.append(r)
        if "result" in hooks:
            hooks["result"](r)
        write_all(spec, results, out, time.perf_counter() - t0)
    return results, write_all(spec, results, out, time.perf_counter() - t0)


__all__ = ["PointResult", "Spec", "check_expectations", "load_spec", "run_experiment", "spec_names"]
