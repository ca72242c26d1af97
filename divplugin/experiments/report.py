"""Results of a sweep as JSON, CSV, a PNG plot and a Markdown page.

Replicates (``seeds:``) of the same sweep values form a group; tables, plots and the
expectations use each group's mean, with the spread (standard deviation, min and max) beside
it. A threshold estimate reads off the x at which a metric's mean first reaches a level.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from divplugin.core.table import Table
from divplugin.experiments.platform import KERNEL_VARIABLES
from divplugin.experiments.runner import RESULT_SCHEMA, PointResult, point_id
from divplugin.experiments.spec import Spec


def _recorded(folder: str | Path, key: str) -> Any:
    """One field of a results folder's results.json (None when the file or field is missing or broken)."""
    try:
        return json.loads((Path(folder) / "results.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def recorded_overrides(reference: str | Path) -> dict[str, Any]:
    """The ``--set`` overrides a results folder's results.json records ({} when none)."""
    found = _recorded(reference, "overrides")
    return dict(found) if isinstance(found, dict) else {}


def x_of(spec: Spec, values: dict[str, Any]) -> Any:
    """Where sweep values ``values`` sit on the plot's x axis."""
    value = values[spec.plot.x]
    return spec.plot.x_values.get(str(value), value)


def short_label(values: dict[str, Any], sep: str = ",") -> str:
    """Sweep values as ``num_rules=400,noop_fraction=0.1`` (the last part of each dotted key,
    without the plugin's ``divplugin_`` prefix)."""
    return sep.join(f"{k.rsplit('.', 1)[-1].removeprefix('divplugin_')}={v}" for k, v in values.items())


@dataclass(frozen=True)
class Stat:
    """One metric over the replicates of a group."""

    mean: float
    std: float  # sample standard deviation; 0 for one replicate
    lo: float
    hi: float
    n: int

    def text(self) -> str:
        if self.n == 1:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} ± {self.std:.3f} ({self.lo:.3f}-{self.hi:.3f}, n={self.n})"


@dataclass
class Group:
    """The replicates of one combination of sweep values."""

    values: dict[str, Any]
    runs: list[PointResult]

    @property
    def label(self) -> str:
        return short_label(self.values)

    @property
    def done(self) -> list[PointResult]:
        return [r for r in self.runs if r.status == "done"]

    def stat(self, metric: str) -> Stat | None:
        ys = [r.metrics[metric] for r in self.done if metric in r.metrics]
        if not ys:
            return None
        return Stat(statistics.fmean(ys), statistics.stdev(ys) if len(ys) > 1 else 0.0, min(ys), max(ys), len(ys))


def group(results: list[PointResult]) -> list[Group]:
    """Results grouped by sweep values, in the order first seen."""
    out: dict[str, Group] = {}
    for r in results:
        key = json.dumps(r.values, sort_keys=True, default=str)
        out.setdefault(key, Group(r.values, [])).runs.append(r)
    return list(out.values())


def _series(spec: Spec, groups: list[Group], metric: str, keep: dict[str, Any] | None = None) -> list[tuple[Any, Stat]]:
    """(x, stat) along the x axis for the groups matching ``keep`` (other sweep keys)."""
    pts = []
    for g in groups:
        if keep and any(g.values.get(k) != v for k, v in keep.items()):
            continue
        st = g.stat(metric)
        if st is not None:
            pts.append((x_of(spec, g.values), st))
    return sorted(pts, key=lambda p: p[0])


def _lines(spec: Spec, groups: list[Group]) -> list[dict[str, Any]]:
    """One line per combination of the sweep keys other than x ({}: a single line)."""
    others = [k for k in spec.sweep if k != spec.plot.x]
    seen: list[dict[str, Any]] = []
    for g in groups:
        keep = {k: g.values[k] for k in others}
        if keep not in seen:
            seen.append(keep)
    return seen or [{}]


def threshold(points: list[tuple[float, float]], level: float, log: bool = True) -> float | None:
    """The smallest x at which the curve ``points`` (x, y) reaches ``level``, interpolated
    linearly (in log x when ``log``) between the last point below and the first at or above;
    None when it never does. The first point already at ``level`` gives its own x."""
    pts = sorted(points)
    for i, (x, y) in enumerate(pts):
        if y >= level:
            if i == 0:
                return float(x)
            x0, y0 = pts[i - 1]
            t = (level - y0) / (y - y0)
            if log and x0 > 0 and x > 0:
                return math.exp(math.log(x0) + t * (math.log(x) - math.log(x0)))
            return x0 + t * (x - x0)
    return None


def check_expectations(spec: Spec, results: list[PointResult]) -> list[tuple[str, bool]]:
    """(statement, met) for each of ``spec.expect``: ``first_at_most`` / ``last_at_least`` /
    ``monotone`` / ``seen_at_least`` (every group's mean of ``seen_metric``) on the group
    means of ``metric`` along the x axis, for every line of the plot."""
    exp = spec.expect
    if not exp or "metric" not in exp:
        return []
    metric = exp["metric"]
    groups = group(results)
    out = []
    for keep in _lines(spec, groups):
        tag = f" ({short_label(keep, ', ')})" if keep else ""
        series = _series(spec, groups, metric, keep)
        expected = sum(1 for g in groups if all(g.values.get(k) == v for k, v in keep.items()))
        if len(series) < expected or not series:
            out.append((f"{metric}{tag} at every point", False))
            continue
        ys = [st.mean for _, st in series]
        if "first_at_most" in exp:
            out.append(
                (
                    f"{metric}{tag} at the smallest {spec.plot.x} = {ys[0]:.3f} <= {exp['first_at_most']}",
                    ys[0] <= exp["first_at_most"],
                )
            )
        if "last_at_least" in exp:
            out.append(
                (
                    f"{metric}{tag} at the largest {spec.plot.x} = {ys[-1]:.3f} >= {exp['last_at_least']}",
                    ys[-1] >= exp["last_at_least"],
                )
            )
        if exp.get("monotone"):
            ok = all(b >= a for a, b in zip(ys, ys[1:]))
            out.append((f"{metric}{tag} rises monotonically ({' -> '.join(f'{y:.3f}' for y in ys)})", ok))
    if "seen_at_least" in exp and "seen_metric" in exp:
        low = [(g.label, st.lo) for g in groups if (st := g.stat(exp["seen_metric"])) and st.lo < exp["seen_at_least"]]
        missing = [g.label for g in groups if g.stat(exp["seen_metric"]) is None]
        text = f"{exp['seen_metric']} >= {exp['seen_at_least']} in every run"
        if low:
            text += " (below: " + ", ".join(f"{label} {y:.3f}" for label, y in low) + ")"
        out.append((text, not low and not missing))
    return out


def thresholds(spec: Spec, results: list[PointResult]) -> list[dict[str, Any]]:
    """``expect.threshold`` (a level of ``expect.metric``): per plot line, the estimated x
    at which the group mean reaches it, and the measured points that bracket it."""
    exp = spec.expect
    if "threshold" not in exp or "metric" not in exp:
        return []
    level = float(exp["threshold"])
    groups = group(results)
    out = []
    for keep in _lines(spec, groups):
        series = [(float(x), st.mean) for x, st in _series(spec, groups, exp["metric"], keep)]
        est = threshold(series, level, spec.plot.xscale == "log")
        above = [x for x, y in series if y >= level]
        below = [x for x, y in series if y < level and (not above or x < min(above))]
        out.append(
            {
                "line": keep,
                "metric": exp["metric"],
                "level": level,
                "estimate": est,
                "below": max(below) if below else None,
                "reached": min(above) if above else None,
            }
        )
    return out


def with_means(spec: Spec, results: list[PointResult]) -> list[PointResult]:
    """``results`` with the metrics of ``spec.plot.means`` added to each run that has every
    part (copies; the runs' own result.json files keep what the evaluation measured)."""
    if not spec.plot.means:
        return results
    out = []
    for r in results:
        derived = {
            name: statistics.fmean(r.metrics[m] for m in parts)
            for name, parts in spec.plot.means.items()
            if all(m in r.metrics for m in parts)
        }
        out.append(replace(r, metrics={**r.metrics, **derived}) if derived else r)
    return out


def metric_columns(spec: Spec, results: list[PointResult]) -> list[str]:
    """The plotted metrics first, then every other metric the runs reported."""
    cols = list(spec.plot.metrics)
    for r in results:
        cols += [m for m in sorted(r.metrics) if m not in cols]
    return cols


def page_columns(spec: Spec, results: list[PointResult]) -> list[str]:
    """The page's table: the plotted metrics, then the other tasks' metrics of the same kind
    (``x/exact_match`` beside a plotted ``y/exact_match``), so the seen-rule check and every
    evaluated task show without the similarity columns the CSV also has."""
    kinds = {m.rsplit("/", 1)[-1] for m in spec.plot.metrics}
    return [m for m in metric_columns(spec, results) if m in spec.plot.metrics or m.rsplit("/", 1)[-1] in kinds]


def write_csv(spec: Spec, results: list[PointResult], path: Path) -> None:
    """One row per run (with its seed); replicates share their sweep values."""
    cols = metric_columns(spec, results)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", *spec.sweep, "seed", "status", *cols, "train_seconds", "eval_seconds"])
        for r in results:
            w.writerow(
                [
                    r.id,
                    *(r.values[k] for k in spec.sweep),
                    "" if r.seed is None else r.seed,
                    r.status,
                    *(r.metrics.get(c, "") for c in cols),
                    r.train_seconds,
                    r.eval_seconds,
                ]
            )


def _save(fig: Any, path: Path) -> None:
    """Write a figure to ``path`` whole (a temp file beside it, then renamed) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def plot(spec: Spec, results: list[PointResult], path: Path) -> bool:
    """Draw ``spec.plot`` to ``path`` (group means, min-max bars and each replicate as a dot);
    False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    p = spec.plot
    groups = group(results)
    fig, ax = plt.subplots(figsize=(6.8, 4.4), dpi=120)
    ax.set_xscale(p.xscale)
    lines = _lines(spec, groups)
    styles = ["-", "--", ":", "-."]
    for i, keep in enumerate(lines):
        tag = " " + short_label(keep) if keep else ""
        for j, metric in enumerate(p.metrics):
            series = _series(spec, groups, metric, keep)
            if not series:
                continue
            xs = [x for x, _ in series]
            means = [st.mean for _, st in series]
            err = [[st.mean - st.lo for _, st in series], [st.hi - st.mean for _, st in series]]
            # several lines of several metrics: a colour per line, a dash per metric
            style: dict[str, Any] = (
                {"color": f"C{i % 10}", "linestyle": styles[j % len(styles)]} if len(lines) > 1 else {}
            )
            line = ax.plot(xs, means, marker="o", label=metric.replace("divplugin_", "") + tag, **style)[0]
            ax.errorbar(xs, means, yerr=err, fmt="none", capsize=3, color=line.get_color())
            dots = [
                (x_of(spec, g.values), r.metrics[metric])
                for g in groups
                for r in g.done
                if metric in r.metrics and len(g.done) > 1 and all(g.values.get(k) == v for k, v in keep.items())
            ]
            if dots:
                dot_x, dot_y = zip(*dots)
                ax.scatter(dot_x, dot_y, s=10, alpha=0.45, color=line.get_color())
    used = len(lines) if len(lines) > 1 else len(p.metrics)  # the published lines take the next colours
    for k, (label, pts) in enumerate(p.reference.items()):
        if pts:
            ax.plot(*zip(*pts), marker="s", linestyle="--", alpha=0.7, label=label, color=f"C{(used + k) % 10}")
    if p.bands and ax.has_data():  # spans clipped to the measured range, which keeps the axis
        xlim = ax.get_xlim()
        for (label, (lo, hi)), color in zip(p.bands.items(), itertools.cycle(["tab:purple", "tab:olive", "tab:gray"])):
            lo, hi = max(lo, xlim[0]), min(hi, xlim[1])
            if lo < hi:
                ax.axvspan(lo, hi, alpha=0.12, color=color, label=label)
        ax.set_xlim(xlim)
    for t in thresholds(spec, results):
        if t["estimate"] is not None:
            ax.axvline(t["estimate"], color="grey", linestyle=":", alpha=0.8)
    xs = [x_of(spec, g.values) for g in groups]
    if p.xscale == "linear" and xs and all(float(x).is_integer() for x in xs):  # counts and shares: whole ticks
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlabel(p.xlabel or p.x.rsplit(".", 1)[-1])
    ax.set_ylabel(p.ylabel)
    ys = [float(y) for ln in ax.get_lines() for y in np.asarray(ln.get_ydata(), dtype=float)]
    if ys and all(0.0 <= y <= 1.0 for y in ys):  # rates: the whole 0-1 scale, so a gap looks its size
        ax.set_ylim(-0.03, 1.03)
    title = spec.name + (
        f" (mean and min-max over {len(spec.seeds)} seeds)" if spec.seeds and len(spec.seeds) > 1 else ""
    )
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to label before the first point is done
        ax.legend(fontsize=7)
    _save(fig, path)
    return True


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) and not math.isnan(v) else str(v)


def _threshold_lines(spec: Spec, results: list[PointResult]) -> list[str]:
    lines = []
    for t in thresholds(spec, results):
        tag = f" ({short_label(t['line'], ', ')})" if t["line"] else ""
        if t["estimate"] is None:
            lines.append(f"- threshold{tag}: {t['metric']} never reaches {t['level']} in this sweep")
        else:
            lo = "" if t["below"] is None else f"above {t['below']:g}, "
            lines.append(
                f"- threshold{tag}: {t['metric']} reaches {t['level']} at about {t['estimate']:.0f} "
                f"({lo}reached at {t['reached']:g}; "
                f"{'log-' if spec.plot.xscale == 'log' else ''}linear interpolation of the means)"
            )
    return lines


PLATFORM_FIELDS = (
    ("cpu", "CPU"),
    ("cpu_capability", "torch kernels"),
    ("threads", "threads"),
    ("gpu", "GPU"),
    ("python", "Python"),
    ("torch", "torch"),
    ("transformers", "transformers"),
    ("axolotl", "axolotl"),
    ("peft", "peft"),
    ("lm_eval", "lm-eval"),
    ("datasets", "datasets"),
    ("divplugin", "divplugin"),
    ("commit", "commit"),
)


def _platform_lines(results: list[PointResult]) -> list[str]:
    """Where the finished runs were made: one row per distinct platform."""
    done = [r for r in results if r.status == "done"]
    if not done:
        return []
    kinds: dict[str, list[PointResult]] = {}
    for r in done:
        kinds.setdefault(json.dumps(r.platform, sort_keys=True), []).append(r)
    lines = [
        "",
        "## Where it was made",
        "",
        "| runs | " + " | ".join(label for _, label in PLATFORM_FIELDS) + " |",
        "|---:|" + "---|" * len(PLATFORM_FIELDS),
    ]
    for key, runs in kinds.items():
        info = json.loads(key)
        cells = [str(info.get(k, "")) if info.get(k) is not None else "" for k, _ in PLATFORM_FIELDS]
        lines.append(
            f"| {len(runs)} | " + (" | ".join(cells) if info else "not recorded" + " |" * (len(cells) - 1)) + " |"
        )
    return lines


def _sets(overrides: dict[str, Any]) -> str:
    return " ".join(f"--set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(overrides.items()))


def _kernel_env(results: list[PointResult]) -> dict[str, str]:
    """The kernel-choosing variables every finished run was made under."""
    done = [r for r in results if r.status == "done"]
    return {
        k: v
        for k in KERNEL_VARIABLES
        if done and len({r.platform.get(k) for r in done}) == 1 and (v := done[0].platform.get(k))
    }


def title(spec: Spec, results: list[PointResult], overrides: dict[str, Any] | None) -> str:
    """The page's title: the spec, and any ``--set`` override or kernel variable it was made with."""
    made = [f"`{_sets(overrides)}`"] if overrides else []
    made += [f"`{k}={v}`" for k, v in _kernel_env(results).items()]
    return spec.name + (f" ({', '.join(made)})" if made else "")


def _command_lines(
    spec: Spec, results: list[PointResult], out: Path, overrides: dict[str, Any] | None, commands: list[dict[str, Any]]
) -> list[str]:
    """How it was made: the commands the folder records, or the one its records imply."""
    lines = ["", "## How it was made", ""]
    recorded = [c for c in commands if c.get("command")]
    done = [r for r in results if r.status == "done"]
    for c in recorded:
        env = " ".join(f"{k}={v}" for k, v in (c.get("env") or {}).items())
        extra = f" (--parallel {c.get('parallel')}, {c.get('threads') or 'shared'} thread(s) a point)"
        lines.append(f"- `{(env + ' ') if env else ''}{c['command']}`{extra}")
    older = [r for r in done if r.steps is None]  # made before commands and steps were recorded
    if recorded and not older:
        return lines
    if recorded:
        lines.append(f"- before commands were recorded ({', '.join(r.id for r in older)}):")
        done = older
    threads = {r.platform.get("threads") for r in done}
    env = " ".join(f"{k}={v}" for k, v in _kernel_env(results).items())
    cmd = f"divplugin experiment {spec.name} --out {_shown(out)}"
    cmd += f" {_sets(overrides)}" if overrides else ""
    cmd += f" --threads {threads.pop()}" if len(threads) == 1 and None not in threads else ""
    lines.append(
        ("  " if recorded else "") + f"`{(env + ' ') if env else ''}{cmd}`: rebuilt from the records (the "
        "command line itself was not recorded then; --parallel not recorded)."
    )
    return lines


def _shown(out: Path) -> str:
    """``out`` as a user would type it: relative to the project when inside it."""
    root = Path(__file__).resolve().parents[2]
    try:
        return str(out.resolve().relative_to(root))
    except ValueError:
        return str(out)


def flags(spec: Spec, results: list[PointResult], overrides: dict[str, Any] | None) -> list[str]:
    """What a reader should know before trusting a run: uncommitted code, steps that are not
    the spec's, runs on several machines, and notes added to a record."""
    out = []
    done = [r for r in results if r.status == "done"]
    dirty = [r.id for r in done if str(r.platform.get("commit") or "").endswith("-dirty")]
    if dirty:
        out.append(f"made from a checkout with uncommitted changes (commit ending -dirty): {', '.join(dirty)}")
    want = (overrides or {}).get("max_steps", spec.train.get("max_steps"))
    off = [f"{r.id} ({r.steps})" for r in done if r.steps is not None and want is not None and r.steps != want]
    if off:
        out.append(f"trained other than the spec's {want} steps: {', '.join(off)}")
    cpus = sorted({str(r.platform.get("cpu")) for r in done if r.platform.get("cpu")})
    if len(cpus) > 1:
        out.append(
            f'made on {len(cpus)} kinds of CPU ({"; ".join(cpus)}): the CPU moves the weights, see "Where it was made"'
        )
    out += [f"{r.id}: {r.note}" for r in done if r.note]
    return out


def points_table(spec: Spec, results: list[PointResult]) -> Table:
    """A row per point: runs done, each metric (mean and spread over seeds), seconds of
    training and evaluation, and steps/s: the page's table and the one the CLI prints."""
    cols = page_columns(spec, results)
    speed = any(r.steps_per_second for r in results)  # results made before it was recorded have none
    table = Table(
        spec.name,
        ["point", "runs", *(c.replace("divplugin_", "") for c in cols), "train s", "eval s"]
        + (["steps/s"] if speed else []),
    )
    for g in group(results):
        done = g.done
        tr = statistics.fmean(r.train_seconds for r in done) if done else 0.0
        ev = statistics.fmean(r.eval_seconds for r in done) if done else 0.0
        rates = [r.steps_per_second for r in done if r.steps_per_second]
        stats = [g.stat(c) for c in cols]
        row = [
            g.label,
            f"{len(done)}/{len(g.runs)}",
            *(st.text() if st else "" for st in stats),
            f"{tr:.0f}",
            f"{ev:.0f}",
        ]
        table.rows.append(row + ([f"{statistics.fmean(rates):.3g}" if rates else ""] if speed else []))
    return table


def runs_table(spec: Spec, results: list[PointResult]) -> Table:
    """A row per run (point and seed): its status, metrics and seconds."""
    cols = page_columns(spec, results)
    table = Table(
        "every run",
        ["run", "seed", "status", *(c.replace("divplugin_", "") for c in cols), "train s", "eval s"],
        left=(0, 2),
    )
    for r in results:
        table.rows.append(
            [
                r.id,
                str(r.seed),
                r.status,
                *(_fmt(r.metrics.get(c, "")) for c in cols),
                f"{r.train_seconds:.0f}",
                f"{r.eval_seconds:.0f}",
            ]
        )
    return table


def write_page(
    spec: Spec,
    results: list[PointResult],
    out: Path,
    plotted: bool,
    wall_seconds: float,
    overrides: dict[str, Any] | None = None,
    commands: list[dict[str, Any]] | None = None,
    curves: bool = False,
) -> Path:
    groups = group(results)
    lines = [f"# {title(spec, results, overrides)}", "", spec.description.strip(), ""]
    if overrides:
        lines += [f"Made with `{_sets(overrides)}` on top of the spec.", ""]
    caveats = flags(spec, results, overrides)
    if caveats:
        lines += ["**Read with care:**", ""] + [f"- {c}" for c in caveats] + [""]
    if plotted:
        lines += ["![results](results.png)", ""]
    if curves:
        lines += [
            "Exact match on a fixed sample of held-out rows while each point trained (the plugin's "
            "`divplugin_eval`; solid: unseen rules, dashed: seen):",
            "",
            "![curves](curves.png)",
            "",
        ]
    replicated = any(len(g.runs) > 1 for g in groups)
    if replicated:
        lines += ["Mean ± standard deviation (min-max, n replicates) over seeds.", ""]
    lines.append(points_table(spec, results).markdown())
    pending = [r for r in results if r.status == "pending"]
    if pending:
        lines += [
            "",
            f"**Partial:** {len(results) - len(pending)} of {len(results)} runs finished; "
            f"{len(pending)} pending (the same command goes on from here).",
        ]
    checks = [] if pending else check_expectations(spec, results)
    found = _threshold_lines(spec, results)
    if spec.expect and pending:
        found = ["- checked when every run has finished", *(f"{line} (finished runs only)" for line in found)]
    if checks or found:
        lines += ["", "## Expected", ""] + [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks] + found
    if replicated:
        lines += ["", "## Every run", "", runs_table(spec, results).markdown()]
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines += ["", "## Failed points", ""]
        for r in failed:
            lines += [f"### {r.id}", "", "```text", r.error.strip(), "```", ""]
    lines += _command_lines(spec, results, out, overrides, commands or [])
    lines += _platform_lines(results) or ["", "## Where it was made", "", "not recorded (no run has finished)"]
    wall = f"Wall time of the run (all its commands): {wall_seconds / 60:.1f} min. " if wall_seconds else ""
    lines += [
        "",
        f"{wall}Files: `results.json`, `results.csv`, `points/<point>/` (train.yml, train.log, eval.log, model, eval).",
        "",
    ]
    page = out / "README.md"
    page.write_text("\n".join(lines))
    return page


def summary(spec: Spec, results: list[PointResult]) -> list[dict[str, Any]]:
    """Per group: sweep values and, per metric, mean/std/min/max/n over the replicates."""
    cols = metric_columns(spec, results)
    return [
        {
            "values": g.values,
            "runs": len(g.runs),
            "done": len(g.done),
            "metrics": {c: asdict(st) for c in cols if (st := g.stat(c)) is not None},
        }
        for g in group(results)
    ]


def with_pending(spec: Spec, results: list[PointResult]) -> list[PointResult]:
    """``results`` in the spec's order, with a ``pending`` entry for each point not run yet."""
    by_id = {r.id: r for r in results}
    planned = [point_id(p) for p in spec.points()]
    out = [by_id.get(i) or PointResult(i, p.values, "pending", seed=p.seed) for i, p in zip(planned, spec.points())]
    return out + [r for r in results if r.id not in set(planned)]


def recorded_commands(out: Path) -> list[dict[str, Any]]:
    """The commands that ran points into ``out``, as its results.json records them ([] when none)."""
    found = _recorded(out, "commands")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def write_all(
    spec: Spec,
    results: list[PointResult],
    out: Path,
    wall_seconds: float,
    overrides: dict[str, Any] | None = None,
    invocation: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """results.json, results.csv, the plot and the page; points not run yet show as pending
    (and the expectations wait for them). ``overrides`` (``--set``) are recorded and shown;
    ``invocation`` (the command that ran points now, with its settings) is added to the ones
    the folder records."""
    results = with_means(spec, with_pending(spec, results))
    overrides = dict(overrides or {})
    commands = recorded_commands(out)
    if invocation is not None and invocation not in commands:
        commands.append(invocation)
    payload = {
        "schema_version": RESULT_SCHEMA,  # of the file and of each point's record (runner.load_result)
        "spec": spec.model_dump(),
        "overrides": overrides,
        "commands": commands,
        "points": [asdict(r) for r in results],
        "summary": summary(spec, results),
        "thresholds": thresholds(spec, results),
        "expectations": []
        if any(r.status == "pending" for r in results)
        else [{"text": t, "met": ok} for t, ok in check_expectations(spec, results)],
        "wall_seconds": round(wall_seconds, 1),
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    write_csv(spec, results, out / "results.csv")
    plotted = plot(spec, results, out / "results.png")
    curves = plot_curves(spec, results, out / "curves.png")
    page = write_page(spec, results, out, plotted, wall_seconds, overrides, commands, curves)
    files = {"json": out / "results.json", "csv": out / "results.csv", "page": page}
    if plotted:
        files["plot"] = out / "results.png"
    if curves:
        files["curves"] = out / "curves.png"
    return files


CURVE_SPLITS = {"test": ("unseen", "-"), "test_seen": ("seen", "--")}


def plot_curves(spec: Spec, results: list[PointResult], path: Path) -> bool:
    """Held-out exact match against training step, a colour per point, unseen rules solid and
    seen rules dashed (points that recorded a curve: the plugin's ``divplugin_eval``); False
    when no point has one, or matplotlib is not installed."""
    drawn = [r for r in results if r.curve and r.status == "done"]
    if not drawn:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8.2, 4.4), dpi=120)
    for i, r in enumerate(drawn):
        labelled = False  # one legend entry a point: the colour; the line style is in the title
        for split, (_name, dash) in CURVE_SPLITS.items():
            pts = sorted((c["step"], c["exact_match"]) for c in r.curve if c.get("split") == split)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, dash, marker=".", color=f"C{i % 10}", label=None if labelled else r.id)
                labelled = True
    ax.set_xlabel("training step")
    ax.set_ylabel("exact match (held-out sample)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{spec.name}: exact match while training (solid: unseen rules, dashed: seen)", fontsize=9)
    ax.grid(alpha=0.3)
    # beside the axes, where no curve runs
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    _save(fig, path)
    return True
