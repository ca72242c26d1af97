"""Experiments: generate -> train (axolotl + the plugin) -> evaluate (lm-eval) -> tables and plots.

``spec`` (what a sweep is), ``runner`` (one point), ``sweep`` (the points of a spec, resumable,
in parallel), ``report`` (results.json, the page and the plot), ``plan`` (cost), ``verify``
(rerun a point and compare).

>>> from divplugin.experiments import load_spec, run_experiment
>>> spec = load_spec("phase-transition-cpu")           # doctest: +SKIP
>>> run_experiment(spec, "results/phase-transition")   # doctest: +SKIP
"""

from divplugin.experiments.report import check_expectations
from divplugin.experiments.runner import PointResult
from divplugin.experiments.spec import Point, Spec, load_spec, spec_names
from divplugin.experiments.sweep import collect_report, run_experiment, select, slot_env

__all__ = [
    "Point",
    "PointResult",
    "Spec",
    "check_expectations",
    "collect_report",
    "load_spec",
    "run_experiment",
    "select",
    "slot_env",
    "spec_names",
]
