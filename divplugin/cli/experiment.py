"""``divplugin experiment``: ``run`` a spec's sweep (the default: ``divplugin experiment SPEC``
is ``divplugin experiment run SPEC``), ``report`` the points a folder holds, ``status`` of each
point (from the folder alone), ``plan`` the cost,
``verify`` a recorded point by running it again, ``list`` the built-in specs."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress
from rich.table import Table
from typer.core import TyperGroup

from divplugin.cli.ui import console, fail, interruptible, out_console, progress_bars, show
from divplugin.errors import DivpluginError

if TYPE_CHECKING:
    from divplugin.experiments.runner import PointResult
    from divplugin.experiments.spec import Spec


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it names no command, is the spec of ``run``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


experiment_app = typer.Typer(
    cls=_RunByDefault,
    invoke_without_command=True,
    help=(
        "Experiments: for every point of a sweep, train with axolotl (through the plugin) and score with "
        "divplugin's lm-eval tasks; then a table, CSV/JSON, a plot and a results page. "
        "'divplugin experiment SPEC' runs SPEC (resumable); 'divplugin experiment' alone lists the specs."
    ),
)

SPEC = typer.Argument(..., help="A built-in experiment ('divplugin experiment list') or a spec YAML file.")
QUICK = typer.Option(False, "--quick", help="The spec's few-minute variant: the whole flow, small.")
SETS = typer.Option(
    [],
    "--set",
    help="KEY=VALUE axolotl config override for every point (value read as YAML); eval.KEY=VALUE "
    "changes the spec's evaluation.",
)
ONLY = typer.Option(
    [], "--only", help="Only the points whose id matches (glob; repeatable): one point per cluster job."
)
THREADS = typer.Option(
    None,
    "--threads",
    help="CPU threads per point (OMP_NUM_THREADS); default: the cores other work leaves free, shared out among "
    "the points running at once.",
)


@experiment_app.callback()
def _experiment(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        list_specs()


def _load(spec: str, quick: bool, sets: list[str]) -> tuple[Spec, dict[str, Any]]:
    """The spec (its quick variant if asked, with ``--set eval.*``) and the axolotl overrides."""
    import yaml

    from divplugin.experiments import load_spec

    parsed = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--set expects KEY=VALUE, got {item!r}")
        parsed[key] = yaml.safe_load(raw)
    try:
        loaded = load_spec(spec)
        return (loaded.quick_variant() if quick else loaded).with_sets(parsed)
    except DivpluginError as exc:
        fail(str(exc))


@experiment_app.command("list")
def list_specs() -> None:
    """List the built-in experiments."""
    from divplugin.experiments import load_spec, spec_names

    table = Table(title="experiments (divplugin experiment NAME)")
    for col in ("name", "hardware", "points", "what it shows"):
        table.add_column(col)
    for name in spec_names():
        s = load_spec(name)
        table.add_row(name, s.hardware, str(len(s.points())), s.summary or s.description.strip().split(". ")[0])
    out_console.print(table)


def _moved(flag: str, command: str) -> Callable[[Any, Any, Any], Any]:
    def check(ctx: Any, param: Any, value: Any) -> Any:
        if value:
            spec = ctx.params.get("spec") or "SPEC"
            fail(f"{flag} is a command of its own now: divplugin experiment {command} {spec} ...")
        return value

    return check


@experiment_app.command("run")
def run(
    spec: str = SPEC,
    out: Path | None = typer.Option(None, "--out", "-o", help="Results folder (default: results/NAME)."),
    quick: bool = QUICK,
    sets: list[str] = SETS,
    parallel: int | None = typer.Option(
        None,
        "--parallel",
        "-j",
        help="Points to run at once, each with its share of --devices or of the CPU cores (default: the spec's).",
    ),
    devices: str | None = typer.Option(
        None, "--devices", help="GPUs to share out, e.g. 0,1,2,3 (CUDA_VISIBLE_DEVICES of each point)."
    ),
    threads: int | None = THREADS,
    only: list[str] = ONLY,
    executor: str = typer.Option(
        "local", "--executor", "-e", help="local (this machine), slurm (an array job, through submitit) or ray."
    ),
    cpus: int | None = typer.Option(None, "--cpus-per-point", min=1, help="Slurm/Ray: cores a point (spec's)."),
    gpus: int | None = typer.Option(None, "--gpus-per-point", min=0, help="Slurm/Ray: GPUs a point (spec's)."),
    mem_gb: float | None = typer.Option(None, "--mem-gb", min=0.1, help="Slurm: memory a point, GB (spec's)."),
    time_min: int | None = typer.Option(None, "--time-min", min=1, help="Slurm: minutes a point (spec's)."),
    partition: str | None = typer.Option(None, "--partition", help="Slurm partition (spec's, else the default)."),
    account: str | None = typer.Option(None, "--account", help="Slurm account (spec's, else the user's)."),
    address: str | None = typer.Option(None, "--address", help="Ray: the cluster to join (default: a local one)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would run or be submitted, and stop."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Slurm: submit and return (the page is a job too)."),
    retries: int = typer.Option(1, "--retries", min=0, help="Slurm/Ray: times a point whose job died is run again."),
    report: bool = typer.Option(False, "--report", hidden=True, callback=_moved("--report", "report")),
    plan: bool = typer.Option(False, "--plan", hidden=True, callback=_moved("--plan", "plan")),
    verify: str | None = typer.Option(None, "--verify", hidden=True, callback=_moved("--verify", "verify")),
) -> None:
    """Run (or resume) every point of SPEC: re-running skips finished points and retries failed ones."""
    from divplugin.experiments import run_experiment, select

    loaded, overrides = _load(spec, quick, sets)
    parallel = parallel or loaded.parallel
    out = out or Path("results") / loaded.name
    device_list = [d.strip() for d in devices.split(",") if d.strip()] if devices else None
    started = time.perf_counter()
    try:
        points = select(loaded, only or None)
    except DivpluginError as exc:
        fail(str(exc))
    if executor not in ("local", "slurm", "ray"):
        fail(f"--executor: one of local, slurm, ray; got {executor!r}")
    if executor != "local":
        _run_on_cluster(loaded, out, overrides, points, executor, dry_run, not no_wait, retries, address,
                        dict(cpus=cpus, gpus=gpus, mem_gb=mem_gb, time_min=time_min, partition=partition,
                             account=account))  # fmt: skip
        return
    console.print(
        f"[bold]{loaded.name}[/]: {len(points)} points -> {out}" + (f" ({parallel} at a time)" if parallel > 1 else ""),
        highlight=False,
    )
    if dry_run:
        from divplugin.experiments.runner import point_id

        for p in points:
            console.print(f"  {point_id(p)}", highlight=False)
        console.print("(--dry-run: nothing run)")
        return
    with interruptible("finished points are kept; run the same command again to resume"), progress_bars() as prog:
        overall = prog.add_task("sweep", total=len(points))
        bars, hooks = _point_bars(prog)

        def on_result(r: PointResult) -> None:
            prog.advance(overall)
            if r.id in bars:
                prog.remove_task(bars.pop(r.id))
            if r.status != "done":
                console.print(f"[red]point {r.id} failed[/] (the sweep goes on):\n{r.error}", highlight=False)

        try:
            results, files = run_experiment(
                loaded,
                out,
                overrides,
                {**hooks, "result": on_result},
                parallel=parallel,
                devices=device_list,
                threads=threads,
                only=only or None,
                command=shlex.join(["divplugin", *sys.argv[1:]]),
            )
        except DivpluginError as exc:
            fail(str(exc))
    _summary(loaded, results, files, time.perf_counter() - started)


def _run_on_cluster(
    spec: Spec,
    out: Path,
    overrides: dict[str, Any],
    points: list,
    executor: str,
    dry_run: bool,
    wait: bool,
    retries: int,
    address: str | None,
    flags: dict[str, Any],
) -> None:
    """--executor slurm|ray: the points not done yet as jobs or tasks; then the page."""
    from divplugin.experiments import cluster
    from divplugin.experiments.runner import finished, point_id
    from divplugin.experiments.sweep import collect_report

    started = time.perf_counter()
    out = out.resolve()
    res = cluster.resources(spec, **flags)
    todo = [p for p in points if finished(spec, p, out, overrides) is None]
    console.print(
        f"[bold]{spec.name}[/]: {len(todo)} of {len(points)} points to run -> {out} ({executor}: {res.cpus} CPUs, "
        f"{res.gpus} GPUs, {res.mem_gb:g} GB, {res.time_min} min a point)",
        highlight=False,
    )
    if dry_run:
        for p in todo:
            console.print(f"  {point_id(p)}", highlight=False)
        if executor == "slurm":
            console.print(f"submitit parameters: {cluster.slurm_parameters(spec, res, len(todo))}", highlight=False)
        console.print("(--dry-run: nothing submitted)")
        return
    if not todo:
        console.print("every point is done already")
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "points").mkdir(exist_ok=True)
        try:
            if executor == "slurm":
                done = cluster.submit_slurm(
                    spec, out, overrides, todo, res, wait=wait, retries=retries, log=console.print
                )
            else:
                done = cluster.run_ray(spec, out, overrides, todo, res, address=address, retries=retries,
                                       log=console.print)  # fmt: skip
        except DivpluginError as exc:
            fail(str(exc))
        if done is None:
            console.print(f"follow it with: divplugin experiment status {spec.name} --out {out}", highlight=False)
            return
        for r in done:
            if r.status != "done":
                console.print(f"[red]point {r.id} failed[/]:\n{r.error}", highlight=False)
    try:
        results, files = collect_report(spec, out, overrides or None)
    except DivpluginError as exc:
        fail(str(exc))
    _summary(spec, results, files, time.perf_counter() - started)


@experiment_app.command("report")
def report(
    spec: str = SPEC,
    out: Path | None = typer.Option(None, "--out", "-o", help="The results folder (default: results/NAME)."),
    quick: bool = QUICK,
    sets: list[str] = SETS,
) -> None:
    """Run nothing: collect the points already done in --out (by this machine or by cluster jobs
    that share the folder) into the results page, tables and plot."""
    from divplugin.experiments import collect_report

    loaded, overrides = _load(spec, quick, sets)
    out = out or Path("results") / loaded.name
    started = time.perf_counter()
    try:
        results, files = collect_report(loaded, out, overrides or None)  # none given: the folder's own
    except DivpluginError as exc:
        fail(str(exc))
    console.print(
        f"[bold]{loaded.name}[/]: {len(results)} of {len(loaded.points())} points done in {out}", highlight=False
    )
    _summary(loaded, results, files, time.perf_counter() - started)


@experiment_app.command("status")
def status(
    spec: str = SPEC,
    out: Path | None = typer.Option(None, "--out", "-o", help="The results folder (default: results/NAME)."),
    quick: bool = QUICK,
    sets: list[str] = SETS,
    only: list[str] = ONLY,
    as_json: bool = typer.Option(False, "--json", help="Print the states as JSON."),
    stale_after: float = typer.Option(
        900.0, "--stale-after", min=1.0, help="Seconds without a log line before a started point counts as lost."
    ),
) -> None:
    """Run nothing: each point's state (done, failed, running, lost, stale, pending), read from
    --out alone, so it works from any machine that sees the folder."""
    from divplugin.experiments import status as st
    from divplugin.experiments.report import recorded_overrides
    from divplugin.experiments.sweep import select

    loaded, overrides = _load(spec, quick, sets)
    out = out or Path("results") / loaded.name
    if not out.is_dir():
        fail(f"--out {out}: no such results folder")
    try:
        points = select(loaded, only or None)
        states = st.sweep_status(loaded, out, overrides or recorded_overrides(out), points, stale_after)
    except DivpluginError as exc:
        fail(str(exc))
    if as_json:
        out_console.print_json(st.as_json(states))
        return
    show([st.status_table(states)])


@experiment_app.command("plan")
def plan(
    spec: str = SPEC,
    quick: bool = QUICK,
    sets: list[str] = SETS,
    gpu: str = typer.Option(
        "h100",
        "--gpu",
        help="Accelerator: h100, h200, a100, a40, l40s, rtx4090, or cpu (one core of this machine, measured).",
    ),
    mfu: float | None = typer.Option(
        None, "--mfu", help="Model FLOPs utilisation assumed (default: the spec's, else 0.3)."
    ),
) -> None:
    """Run nothing: estimate each point's training tokens, FLOPs and time on --gpu."""
    loaded, _ = _load(spec, quick, sets)
    _print_plan(loaded, gpu, mfu)


@experiment_app.command("verify")
def verify(
    spec: str = SPEC,
    record: Path = typer.Argument(..., help="A results folder (e.g. docs/results/NAME) whose points are checked."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where to rerun (default: a temporary folder)."),
    quick: bool = QUICK,
    sets: list[str] = SETS,
    only: list[str] = ONLY,
    threads: int | None = THREADS,
) -> None:
    """Rerun the first recorded point of RECORD (or those --only names) and compare weights,
    metrics and platform with its record; exit 1 if they differ."""
    loaded, overrides = _load(spec, quick, sets)
    _verify(loaded, record, out, overrides, only, threads)


def _summary(spec: Spec, results: list[PointResult], files: dict[str, Path], seconds: float) -> None:
    """The points table (the results page's), the expectations and thresholds, and the files."""
    from divplugin.experiments import check_expectations
    from divplugin.experiments.report import points_table, thresholds

    table = points_table(spec, results)
    table.title = f"{spec.name} ({seconds / 60:.1f} min)"
    show([table])
    for text, ok in check_expectations(spec, results):
        out_console.print(f"{'[green]met[/]' if ok else '[red]NOT met[/]'}: {text}", highlight=False)
    for t in thresholds(spec, results):
        est = "never reached" if t["estimate"] is None else f"about {t['estimate']:.0f}"
        out_console.print(f"threshold ({t['metric']} = {t['level']}): {est}", highlight=False)
    for kind, path in files.items():
        out_console.print(f"{kind}: {path}", highlight=False, soft_wrap=True)
    if any(r.status != "done" for r in results):
        raise typer.Exit(1)


def _point_bars(prog: Progress) -> tuple[dict[str, Any], dict[str, Callable]]:
    """A progress bar per running point: the bars by point id, and the run hooks that keep
    them (``point``, ``phase``, ``step``)."""
    bars: dict[str, Any] = {}

    def on_point(i: int, pid: str) -> None:
        bars[pid] = prog.add_task(pid[:24], total=None)

    def on_phase(pid: str, name: str) -> None:
        prog.reset(bars[pid], description=f"{pid[:24]} {name}", total=None)

    def on_step(pid: str, done: int, total: int) -> None:
        prog.update(bars[pid], total=total, completed=done)

    return bars, {"point": on_point, "phase": on_phase, "step": on_step}


def _verify(
    spec: Spec, reference: Path, out: Path | None, overrides: dict, only: list[str], threads: int | None
) -> None:
    import shutil
    import tempfile

    from divplugin.experiments.verify import verify

    work = out or Path(tempfile.mkdtemp(prefix=f"divplugin-verify-{spec.name}-"))
    console.print(f"[bold]{spec.name}[/]: rerunning recorded points of {reference} in {work}", highlight=False)
    try:
        with interruptible("nothing to resume: run the same command again"), progress_bars() as prog:
            checks = verify(spec, reference, work, overrides, only or None, _point_bars(prog)[1], threads)
    except DivpluginError as exc:
        fail(str(exc))
    finally:
        if out is None:
            shutil.rmtree(work, ignore_errors=True)
    failed = False
    for c in checks:
        table = Table(title=f"{c.id}: recorded against rerun")
        for col in ("metric", "recorded", "rerun", "equal"):
            table.add_column(col, justify="right" if col != "metric" else "left")
        for m, (a, b) in c.metrics.items():
            table.add_row(
                m, "-" if a is None else f"{a:.6g}", "-" if b is None else f"{b:.6g}", "yes" if a == b else "[red]no[/]"
            )
        out_console.print(table)
        if c.rerun.status != "done":
            out_console.print(f"[red]the rerun failed[/]:\n{c.rerun.error}", highlight=False)
        out_console.print(
            f"weights: {c.weights}" + (f" (sha256 {c.rerun.weights[:16]}...)" if c.rerun.weights else ""),
            highlight=False,
        )
        if not c.recorded.platform:
            out_console.print("platform: the record does not say where it was made", highlight=False)
        elif c.platform:
            out_console.print("platform differences (recorded -> here):", highlight=False)
            for key, (a, b) in c.platform.items():
                out_console.print(f"  {key}: {a} -> {b}", highlight=False)
        else:
            out_console.print("platform: the same as recorded", highlight=False)
        verdict = "[green]reproduced[/]" if c.ok else "[red]NOT reproduced[/]"
        out_console.print(f"{c.id}: {verdict}", highlight=False)
        failed |= not c.ok
    if failed:
        raise typer.Exit(1)


def _print_plan(spec: Spec, gpu: str, mfu: float | None) -> None:
    import math

    from divplugin.experiments.plan import plan as make_plan

    try:
        rows, basis = make_plan(spec, gpu, mfu)
    except DivpluginError as exc:
        fail(str(exc))
    where = "one core of this CPU" if gpu == "cpu" else f"one {gpu}"
    peak = (
        f"{basis['peak_tflops'] * 1e3:.0f} GFLOP/s fp32, measured"
        if gpu == "cpu"
        else f"{basis['peak_tflops']:.0f} TFLOP/s"
    )
    table = Table(title=f"{spec.name}: training cost on {where} ({peak} peak, MFU {basis['mfu']:.0%} assumed)")
    for col in ("point", "examples", "epochs", "tokens/example", "tokens", "params", "FLOPs", "hours"):
        table.add_column(col, justify="left" if col == "point" else "right")
    for r in rows:
        table.add_row(
            r.point,
            f"{r.examples:,}",
            f"{r.epochs:g}",
            f"{r.tokens_per_example:.0f}",
            f"{r.tokens:.3g}",
            f"{r.params:.3g}",
            f"{r.flops:.3g}",
            f"{r.hours:.2f}",
        )
    out_console.print(table)
    hours = [r.hours for r in rows if not math.isnan(r.hours)]
    if hours and gpu == "cpu":
        par = spec.parallel
        wall = max(sum(hours[i::par]) for i in range(min(par, len(hours))))
        out_console.print(
            f"all {len(rows)} points: {sum(hours):.1f} core-hours; about {wall:.1f} h with --parallel {par} "
            f"(one core each), training only",
            highlight=False,
        )
    elif hours:
        eight = max(sum(hours[i::8]) for i in range(min(8, len(hours))))
        out_console.print(
            f"all {len(rows)} points: {sum(hours):.1f} h on one {gpu}; about {eight:.1f} h on 8 "
            f"(--parallel 8 --devices 0,1,2,3,4,5,6,7, one point per GPU), training only",
            highlight=False,
        )
