"""Running a spec: per point, train with ``axolotl train`` and score with ``divplugin eval``.

Each point lives in ``OUT/points/<id>/`` (config, logs, model, lm-eval output) and is done
when its ``result.json`` holds the hash of what produced it; re-running skips done points,
so an interrupted sweep resumes, and retries failed ones. A failing point is recorded with
the tail of its log and the sweep goes on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from divplugin.core.fsutil import atomic_file, sha256_file
from divplugin.core.paths import HELDOUT_DIR
from divplugin.errors import ConfigError
from divplugin.experiments.platform import describe
from divplugin.experiments.spec import Point, Spec, set_dotted

STEP = re.compile(r"(\d+)/(\d+) \[")
BASE_STAMP = "divplugin_base_model.json"  # the settings a built base model was made with


RESULT_SCHEMA = 2  # of a point's record (result.json, results.json's points); 1: before it was written


@dataclass
class PointResult:
    id: str
    values: dict[str, Any]
    status: Literal["done", "failed", "pending"]  # pending: planned, not run yet (report pages only)
    seed: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    error: str = ""
    hash: str = ""
    platform: dict[str, Any] = field(default_factory=dict)  # where it was made (platform.describe); not hashed
    weights: str = ""  # sha256 of the trained weights (weights_digest); not hashed
    steps_per_second: float | None = None  # the trainer's own figure: the training loop alone
    steps: int | None = None  # the optimizer steps the training log last reported (None: made before it was kept)
    note: str = ""  # what a person added to the record afterwards (shown on the results page)
    # held-out exact match while it trained (the plugin's divplugin_eval): {step, split, n, exact_match, ...}
    curve: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = RESULT_SCHEMA


def load_result(record: Any, log_dir: Path | None = None) -> PointResult:
    """A point's record, in today's form whatever divplugin wrote it: the one place that knows
    old records. Schema 1 (no ``schema_version``) may lack ``steps_per_second``, ``steps``,
    ``weights``, ``platform`` and ``note``: ``steps_per_second`` is read from the training log
    in ``log_dir`` when it is there; ``steps`` stays None (the log's bar of that time is not
    trusted to be the trainer's). Raises ValueError or TypeError for what is not a record."""
    if not isinstance(record, dict):
        raise TypeError(f"a point's record is a JSON object, got {type(record).__name__}")
    version = record.get("schema_version", 1)
    if version not in (1, RESULT_SCHEMA):
        raise ValueError(
            f"unsupported point record schema_version {version!r} (this divplugin reads 1 to {RESULT_SCHEMA})"
        )
    result = PointResult(**{**record, "schema_version": RESULT_SCHEMA})
    if version == 1 and result.steps_per_second is None and log_dir is not None:
        result.steps_per_second = steps_per_second(log_dir / "train.log")
    return result


STEPS_PER_SECOND = re.compile(r"'train_steps_per_second': '?([0-9.]+)")


def steps_trained(log: Path, total: Any) -> int | None:
    """The last step the training log's progress bar of ``total`` steps reached (None when it
    showed none; other bars, such as the data's, have other totals)."""
    found = STEP.findall(log.read_text(errors="replace")) if log.is_file() else []
    steps = [int(done) for done, of in found if str(of) == str(total)]
    return steps[-1] if steps else None


def steps_per_second(log: Path) -> float | None:
    """The trainer's steps/s from a training log (its last report), None when it gave none."""
    found = STEPS_PER_SECOND.findall(log.read_text(errors="replace")) if log.is_file() else []
    return float(found[-1]) if found else None


def weights_digest(model_dir: Path) -> str:
    """sha256 of the trained weights: of the one ``*.safetensors`` file (what ``sha256sum``
    prints), or over the names and digests of several; equal digests mean byte-identical
    weights; "" when there are none."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if len(files) <= 1:
        return sha256_file(files[0]) if files else ""
    return hashlib.sha256("".join(f"{f.name} {sha256_file(f)}\n" for f in files).encode()).hexdigest()


def point_id(point: Point) -> str:
    parts = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point.values.items()]
    if point.seed is not None:
        parts.append(f"seed={point.seed}")
    # no commas: the id is part of paths that lm-eval's comma-separated --model_args carry
    return re.sub(r"[^A-Za-z0-9=.+_-]+", "_", "+".join(parts))


def base_model_dir(out: Path, seed: int | None) -> Path:
    """Where the spec's tiny base model for replicate ``seed`` is built."""
    return out / ("base-model" if seed is None else f"base-model-seed{seed}")


def point_config(spec: Spec, point: Point, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The axolotl config of one point (paths inside ``out``); a replicate's seed is written
    to every key of ``spec.seed_keys`` (``--set`` still wins)."""
    cfg = dict(spec.train)
    seeded = {key: point.seed for key in spec.seed_keys} if point.seed is not None else {}
    for key, value in {**seeded, **point.values, **overrides}.items():
        cfg = set_dotted(cfg, key, value)
    pdir = out / "points" / point_id(point)
    cfg["output_dir"] = str(pdir / "model")
    cfg.setdefault("dataset_prepared_path", str(out / "prepared"))
    if any(k.startswith("divplugin_") for k in cfg):
        cfg.setdefault("divplugin_cache_dir", str(out / "data"))
    if spec.base_model is not None and "base_model" not in overrides:
        cfg["base_model"] = str(base_model_dir(out, point.seed))
    if spec.pretrained is not None and "base_model" not in overrides:
        cfg["base_model"] = str(pretrained_dir(spec.pretrained))
    return cfg


def pretrained_dir(name: str) -> Path:
    """Where a spec's packaged pretrained model is converted (once per machine)."""
    from divplugin.models.pretrained import default_dir

    return default_dir(name)


def prepare_pretrained(spec: Spec, overrides: dict[str, Any]) -> None:
    """Convert the spec's packaged pretrained model unless it is there (a named error when
    its package is missing)."""
    if spec.pretrained is not None and "base_model" not in overrides:
        from divplugin.core.logs import quiet_dependencies
        from divplugin.models.pretrained import convert

        quiet_dependencies()
        convert(spec.pretrained, pretrained_dir(spec.pretrained))


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise ConfigError(f"the {name!r} command was not found; install divplugin's [axolotl] extra", "experiment")
    return found


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, **(extra or {}), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for key in ("AXOLOTL_DO_NOT_TRACK", "DO_NOT_TRACK"):
        env.setdefault(key, "1")
    env.setdefault("WANDB_MODE", "disabled")
    return env


class Stopped(Exception):
    """The sweep was stopped while this point ran (its processes were ended)."""


class Processes:
    """The training and evaluation processes of one sweep's points: :meth:`stop` ends them all
    (their whole process groups: ``accelerate launch`` starts children of its own), and a point
    whose process ended that way is stopped, not failed. Each sweep owns its own."""

    def __init__(self) -> None:
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.add(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(proc)

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            procs = list(self._running)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _stream(
    cmd: list[str],
    log: Path,
    cwd: Path,
    on_step: Callable[[int, int], None] | None = None,
    env: dict[str, str] | None = None,
    processes: Processes | None = None,
) -> int:
    """Run ``cmd`` in a process group of its own with output to ``log`` (``env``: variables added
    to ours); ``on_step(done, total)`` follows the trainer's bar. ``processes.stop()`` ends it."""
    processes = processes or Processes()
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.add(proc)
        training = False
        try:
            while chunk := typing.cast(io.BufferedReader, proc.stdout).read1(65536):
                f.write(chunk)
                if on_step is None:
                    continue
                text = chunk.decode("utf-8", "replace")
                training = training or "Starting trainer" in text
                if training:
                    for done, total in STEP.findall(text):
                        on_step(int(done), int(total))
            rc = proc.wait()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        finally:
            processes.discard(proc)
        if processes.stopping.is_set():  # ended by the sweep, or by a signal to the point's job
            raise Stopped(f"{cmd[0]} was ended (exit {rc})")
        return rc


ERROR_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception|Exit)\b.*:")


def _tail(log: Path, lines: int = 25) -> str:
    """The last lines of a log (progress bars dropped), led by its last exception line: with
    several processes (accelerate, torchrun) the root cause is not always at the end."""
    text = log.read_text(errors="replace").replace("\r", "\n") if log.is_file() else ""
    keep = [ln for ln in text.splitlines() if ln.strip() and "it/s]" not in ln and "s/it]" not in ln]
    errors = [ln for ln in keep if ERROR_LINE.match(ln) and "ChildFailedError" not in ln]
    tail = keep[-lines:]
    lead = [errors[-1]] if errors and errors[-1] not in tail else []
    return "\n".join(lead + tail)


def _metrics(folder: Path) -> dict[str, float]:
    files = sorted(folder.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise RuntimeError(f"lm-eval wrote no results under {folder}")
    res = json.loads(files[-1].read_text())["results"]
    out = {}
    for task, metrics in res.items():
        for key, value in metrics.items():
            name, _, _ = key.partition(",")
            if isinstance(value, (int, float)) and not name.endswith("_stderr") and name != "alias":
                out[f"{task}/{name}"] = float(value)
    return out


LAUNCH_KEYS = ("launcher", "launcher_args")


def train_command(cfg: dict[str, Any], cfg_path: Path) -> list[str]:
    """How a point trains: ``axolotl train --launcher python`` (one process, in which axolotl
    trains: no accelerate process in between, whose start-up cost about 20 s a point on a CPU),
    ``accelerate launch ARGS -m axolotl.cli.train`` (multi-process: DDP, DeepSpeed, FSDP as the
    config says), or a custom launcher command followed by the config path."""
    launcher = cfg.get("launcher", "axolotl")
    if launcher == "axolotl":
        return [_tool("axolotl"), "train", str(cfg_path), "--launcher", "python"]
    if launcher == "accelerate":
        return [
            _tool("accelerate"),
            "launch",
            *map(str, cfg.get("launcher_args", [])),
            "-m",
            "axolotl.cli.train",
            str(cfg_path),
        ]
    return [*launcher, str(cfg_path)]


def eval_command(spec: Spec, cfg: dict[str, Any], model_dir: Path, eval_dir: Path) -> list[str]:
    """``divplugin eval`` of a point's model with the spec's back-end: ``--model hf`` (under
    ``eval.launcher`` for lm-eval's data-parallel run) or ``--model vllm`` (a LoRA adapter as
    ``lora_local_path``)."""
    ev = spec.eval
    adapter = (model_dir / "adapter_config.json").is_file()
    args: dict[str, Any] = {"pretrained": cfg["base_model"] if adapter else str(model_dir)}
    if adapter:
        args["lora_local_path" if ev.model == "vllm" else "peft"] = str(model_dir)
        if ev.model == "vllm":
            args["enable_lora"] = True
    if ev.model == "hf" and (ev.device or "cpu") == "cpu":
        args["dtype"] = "float32"
    args.update(ev.model_args)
    model_args = ",".join(f"{k}={v}" for k, v in args.items())
    prefix = [*ev.launcher, "-m", "divplugin"] if ev.launcher else [sys.executable, "-m", "divplugin"]
    cmd = [
        *prefix,
        "eval",
        "--model",
        ev.model,
        "--model_args",
        model_args,
        "--tasks",
        ",".join(ev.tasks),
        "--batch_size",
        str(ev.batch_size),
        "--output_path",
        str(eval_dir),
    ]
    if ev.limit:
        cmd += ["--limit", str(ev.limit)]
    if ev.device and ev.model == "hf":
        cmd += ["--device", ev.device]
    metadata = {**ev.metadata, **({"data": str(model_dir / HELDOUT_DIR)} if ev.heldout else {})}
    if metadata:
        cmd += ["--metadata", json.dumps(metadata)]
    return cmd + list(ev.args)


def build_base_model(spec: Spec, out: Path, seed: int | None = None) -> None:
    """Build the spec's tiny base model for replicate ``seed`` (initialised from that seed;
    from ``base_model.seed`` without replicates) unless it is there with the same settings
    (``BASE_STAMP`` inside records them; a changed shape rebuilds it)."""
    target = base_model_dir(out, seed)
    if spec.base_model is None:
        return
    stamp = json.dumps(
        {**spec.base_model.model_dump(), "seed": spec.base_model.seed if seed is None else seed}, sort_keys=True
    )

    def built() -> bool:
        return (
            (target / "config.json").is_file()
            and (target / BASE_STAMP).is_file()
            and (target / BASE_STAMP).read_text() == stamp
        )

    if built():
        return
    from divplugin.core.fsutil import atomic_directory, file_lock
    from divplugin.core.logs import quiet_dependencies
    from divplugin.models import build_tiny_model

    quiet_dependencies()
    # Jobs sharing --out (cluster jobs, one point each) build it once: the first under the lock,
    # in a private folder renamed into place; the others find it built.
    with file_lock(out / f".{target.name}.lock"):
        if built():
            return
        m = spec.base_model
        with atomic_directory(target, overwrite=True) as tmp:
            build_tiny_model(
                tmp,
                arch=m.arch,
                layers=m.layers,
                hidden=m.hidden,
                heads=m.heads,
                max_len=m.max_len,
                seed=m.seed if seed is None else seed,
            )
            (tmp / BASE_STAMP).write_text(stamp)


def data_identity(cfg: dict[str, Any]) -> str | None:
    """The data key (see :func:`divplugin.data.cache.data_key`) of what a training config's
    ``divplugin_*`` keys resolve to, so an edited preset or mixture file counts as a change;
    None when they ask for no divplugin data. Keys that do not resolve give their error: the
    point then runs, fails at axolotl's config check and is recorded as failed."""
    from divplugin.axolotl.args import resolve
    from divplugin.data.cache import data_key

    try:
        sel = resolve(cfg)
    except ValueError as exc:
        return f"error: {exc}"
    return None if sel is None else data_key(sel.kind, sel.name, sel.config, sel.subset)


# Config keys that watch the training without changing it: the scores the plugin logs while the
# model trains (the same weights with or without them, checked by a test). A point done without
# its curve stays done; one run from now on records it.
OBSERVERS = ("divplugin_eval",)


def point_hash(
    spec: Spec, point: Point, out: Path, overrides: dict[str, Any], cfg: dict[str, Any] | None = None
) -> str:
    """What a point's result depends on: its training config (``cfg``, else built; paths
    inside ``out`` relative to it, so a results folder can move; ``OBSERVERS`` left out), the
    data it resolves to, the tiny base model's shape and the evaluation."""
    cfg = cfg if cfg is not None else point_config(spec, point, out, overrides)
    text = json.dumps({k: v for k, v in cfg.items() if k not in OBSERVERS}, sort_keys=True, default=str)
    base = spec.base_model.model_dump() if spec.base_model is not None and "base_model" not in overrides else None
    if spec.pretrained is not None and "base_model" not in overrides:
        # the machine's model cache is not part of the result: the model's name is
        text = text.replace(json.dumps(str(pretrained_dir(spec.pretrained)))[1:-1], f"<pretrained:{spec.pretrained}>")
    return _hash(
        {
            "train": text.replace(str(out), "<out>"),
            "data": data_identity(cfg),
            "base_model": base,
            "eval": spec.eval.model_dump(),
        }
    )


def training_curve(model_dir: Path) -> list[dict[str, Any]]:
    """The scores the plugin's ``divplugin_eval`` logged while the model trained (its
    ``divplugin_eval.jsonl`` beside the model), or [] when the point asked for none."""
    path = model_dir / "divplugin_eval.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def finished(spec: Spec, point: Point, out: Path, overrides: dict[str, Any]) -> PointResult | None:
    """The point's recorded result when it is done with the current config, else None."""
    done = out / "points" / point_id(point) / "result.json"
    if not done.is_file():
        return None
    try:
        old = load_result(json.loads(done.read_text()), done.parent)
    except (ValueError, TypeError):
        return None
    if old.status != "done" or old.hash != point_hash(spec, point, out, overrides):
        return None
    return old


RUNNING = "running.json"


def mark_running(pdir: Path, phase: str) -> None:
    """Record in ``pdir`` that this process runs the point now (``phase``: train or eval), for
    ``divplugin experiment status`` on any machine that sees the folder; removed once the
    point's result is written, left behind by a process that dies."""
    path = pdir / RUNNING
    started = time.time()
    if path.is_file():
        try:
            started = float(json.loads(path.read_text()).get("started", started))
        except (ValueError, TypeError, AttributeError):
            pass
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started": started, "phase": phase}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info) + "\n")
    tmp.replace(path)


def clear_running(pdir: Path) -> None:
    (pdir / RUNNING).unlink(missing_ok=True)


def run_point(
    spec: Spec,
    point: Point,
    out: Path,
    overrides: dict[str, Any],
    on_step: Callable[[int, int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
    processes: Processes | None = None,
) -> PointResult:
    """Train and evaluate one point (``env``: variables for both processes, such as
    ``CUDA_VISIBLE_DEVICES`` or ``OMP_NUM_THREADS``; ``processes``: the sweep's, which can stop
    them); a point already done is returned as it is."""
    old = finished(spec, point, out, overrides)
    if old is not None:
        return old
    cfg = point_config(spec, point, out, overrides)
    digest = point_hash(spec, point, out, overrides, cfg)
    pid = point_id(point)
    pdir = out / "points" / pid
    done = pdir / "result.json"
    model_dir, eval_dir = Path(cfg["output_dir"]), pdir / "eval"
    for stale in (model_dir, eval_dir, done):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    pdir.mkdir(parents=True, exist_ok=True)
    clear_running(pdir)  # a dead run's marker; this run's own follows
    mark_running(pdir, "train")
    (pdir / "train.yml").write_text(
        yaml.safe_dump({k: v for k, v in cfg.items() if k not in LAUNCH_KEYS}, sort_keys=False)
    )
    if spec.base_model is not None and "base_model" not in overrides:
        build_base_model(spec, out, point.seed)
    prepare_pretrained(spec, overrides)
    result = PointResult(pid, point.values, "failed", seed=point.seed, hash=digest, platform=describe(env))
    t0 = time.perf_counter()
    if on_phase:
        on_phase("train")
    rc = _stream(train_command(cfg, pdir / "train.yml"), pdir / "train.log", pdir, on_step, env, processes)
    result.train_seconds = round(time.perf_counter() - t0, 1)
    if rc != 0:
        result.error = f"axolotl train exited with {rc}:\n{_tail(pdir / 'train.log')}"
    else:
        result.weights = weights_digest(model_dir)
        result.curve = training_curve(model_dir)
        result.steps_per_second = steps_per_second(pdir / "train.log")
        result.steps = steps_trained(pdir / "train.log", cfg.get("max_steps"))
        if on_phase:
            on_phase("eval")
        mark_running(pdir, "eval")
        t1 = time.perf_counter()
        rc = _stream(
            eval_command(spec, cfg, model_dir, eval_dir), pdir / "eval.log", pdir, env=env, processes=processes
        )
        result.eval_seconds = round(time.perf_counter() - t1, 1)
        if rc != 0:
            result.error = f"divplugin eval exited with {rc}:\n{_tail(pdir / 'eval.log')}"
        else:
            try:
                result.metrics = _metrics(eval_dir)
                result.status = "done"
            except (RuntimeError, KeyError, ValueError) as exc:
                result.error = str(exc)
    with atomic_file(done) as f:
        f.write(json.dumps(asdict(result), indent=2) + "\n")
    clear_running(pdir)
    return result
