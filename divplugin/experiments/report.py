"""Results of a sweep as JSON, CSV, a PNG plot and a Markdown page."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from divplugin.experiments.runner import PointResult
from divplugin.experiments.spec import Spec


def x_of(spec: Spec, r: PointResult) -> Any:
    """Where point ``r`` sits on the plot's x axis."""
    value = r.values[spec.plot.x]
    return spec.plot.x_values.get(str(value), value) if spec.plot.x_values else value


def check_expectations(spec: Spec, results: list[PointResult]) -> list[tuple[str, bool]]:
    """(statement, met) for each of ``spec.expect``: ``first_at_most`` / ``last_at_least`` /
    ``monotone`` on ``metric`` along the x axis."""
    exp = spec.expect
    if not exp or "metric" not in exp:
        return []
    metric = exp["metric"]
    ys = [r.metrics.get(metric) for r in sorted(results, key=lambda r: x_of(spec, r))]
    if any(y is None for y in ys) or not ys:
        return [(f"{metric} at every point", False)]
    out = []
    if "first_at_most" in exp:
        out.append((f"{metric} at the smallest {spec.plot.x} = {ys[0]:.3f} <= {exp['first_at_most']}", ys[0] <= exp["first_at_most"]))
    if "last_at_least" in exp:
        out.append((f"{metric} at the largest {spec.plot.x} = {ys[-1]:.3f} >= {exp['last_at_least']}", ys[-1] >= exp["last_at_least"]))
    if exp.get("monotone"):
        ok = all(b >= a for a, b in zip(ys, ys[1:]))
        out.append((f"{metric} rises monotonically ({' -> '.join(f'{y:.3f}' for y in ys)})", ok))
    return out


def metric_columns(spec: Spec, results: list[PointResult]) -> list[str]:
    cols = list(spec.plot.metrics)
    for r in results:
        cols += [m for m in sorted(r.metrics) if m not in cols]
    return cols


def write_csv(spec: Spec, results: list[PointResult], path: Path) -> None:
    cols = metric_columns(spec, results)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", *spec.sweep, "status", *cols, "train_seconds", "eval_seconds"])
        for r in results:
            w.writerow([r.id, *(r.values[k] for k in spec.sweep), r.status,
                        *(r.metrics.get(c, "") for c in cols), r.train_seconds, r.eval_seconds])


def plot(spec: Spec, results: list[PointResult], path: Path) -> bool:
    """Draw ``spec.plot`` to ``path``; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    p = spec.plot
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    done = sorted((r for r in results if r.status == "done"), key=lambda r: x_of(spec, r))
    for metric in p.metrics:
        pts = [(x_of(spec, r), r.metrics[metric]) for r in done if metric in r.metrics]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=metric.replace("divplugin_", ""))
    for label, pts in p.reference.items():
        if pts:
            ax.plot(*zip(*pts), marker="s", linestyle="--", alpha=0.7, label=label)
    ax.set_xscale(p.xscale)
    ax.set_xlabel(p.xlabel or p.x.rsplit(".", 1)[-1])
    ax.set_ylabel(p.ylabel)
    ax.set_title(spec.name)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return True


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) and not math.isnan(v) else str(v)


def write_page(spec: Spec, results: list[PointResult], out: Path, plotted: bool, wall_seconds: float) -> Path:
    cols = spec.plot.metrics
    lines = [f"# {spec.name}", "", spec.description.strip(), ""]
    if plotted:
        lines += ["![results](results.png)", ""]
    lines += ["| point | status | " + " | ".join(c.replace("divplugin_", "") for c in cols) + " | train s | eval s |",
              "|---|---|" + "---:|" * len(cols) + "---:|---:|"]
    for r in results:
        lines.append(f"| {r.id} | {r.status} | " + " | ".join(_fmt(r.metrics.get(c, "")) for c in cols)
                     + f" | {r.train_seconds:.0f} | {r.eval_seconds:.0f} |")
    checks = check_expectations(spec, results)
    if checks:
        lines += ["", "## Expected", ""] + [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks]
    failed = [r for r in results if r.status != "done"]
    if failed:
        lines += ["", "## Failed points", ""]
        for r in failed:
            lines += [f"### {r.id}", "", "```text", r.error.strip(), "```", ""]
    lines += ["", f"Wall time of this run: {wall_seconds / 60:.1f} min. Files: `results.json`, `results.csv`, "
              "`points/<point>/` (train.yml, train.log, eval.log, model, eval).", ""]
    page = out / "README.md"
    page.write_text("\n".join(lines))
    return page


def write_all(spec: Spec, results: list[PointResult], out: Path, wall_seconds: float) -> dict[str, Path]:
    (out / "results.json").write_text(json.dumps({"spec": spec.model_dump(), "points": [asdict(r) for r in results],
                                                  "wall_seconds": round(wall_seconds, 1)}, indent=2, default=str) + "\n")
    write_csv(spec, results, out / "results.csv")
    plotted = plot(spec, results, out / "results.png")
    page = write_page(spec, results, out, plotted, wall_seconds)
    files = {"json": out / "results.json", "csv": out / "results.csv", "page": page}
    if plotted:
        files["plot"] = out / "results.png"
    return files
