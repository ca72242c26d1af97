"""Running a spec: per point, train with ``axolotl train`` and score with ``divplugin eval``.

Each point lives in ``OUT/points/<id>/`` (config, logs, model, lm-eval output) and is done
when its ``result.json`` holds the hash of what produced it; re-running skips done points,
so an interrupted sweep resumes, and retries failed ones. A failing point is recorded with
the tail of its log and the sweep goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from divplugin.errors import ConfigError
from divplugin.experiments.spec import Spec, set_dotted

STEP = re.compile(r"(\d+)/(\d+) \[")


@dataclass
class PointResult:
    id: str
    values: dict[str, Any]
    status: str  # done | failed
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    error: str = ""
    hash: str = ""


def point_id(values: dict[str, Any]) -> str:
    parts = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in values.items()]
    return re.sub(r"[^A-Za-z0-9=.,_-]+", "_", ",".join(parts))


def point_config(spec: Spec, values: dict[str, Any], out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The axolotl config of one point (paths inside ``out``)."""
    cfg = dict(spec.train)
    for key, value in {**values, **overrides}.items():
        cfg = set_dotted(cfg, key, value)
    pdir = out / "points" / point_id(values)
    cfg["output_dir"] = str(pdir / "model")
    cfg.setdefault("dataset_prepared_path", str(out / "prepared"))
    if any(k.startswith("divplugin_") for k in cfg):
        cfg.setdefault("divplugin_cache_dir", str(out / "data"))
    if spec.base_model is not None and "base_model" not in overrides:
        cfg["base_model"] = str(out / "base-model")
    return cfg


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise ConfigError(f"the {name!r} command was not found; install divplugin's [axolotl] extra", "experiment")
    return found


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for key in ("AXOLOTL_DO_NOT_TRACK", "DO_NOT_TRACK"):
        env.setdefault(key, "1")
    env.setdefault("WANDB_MODE", "disabled")
    return env


def _stream(cmd: list[str], log: Path, cwd: Path, on_step: Callable[[int, int], None] | None = None) -> int:
    """Run ``cmd`` with output to ``log``; ``on_step(done, total)`` follows the trainer's bar."""
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        training = False
        try:
            while chunk := proc.stdout.read1(65536):
                f.write(chunk)
                if on_step is None:
                    continue
                text = chunk.decode("utf-8", "replace")
                training = training or "Starting trainer" in text
                if training:
                    for done, total in STEP.findall(text):
                        on_step(int(done), int(total))
        except BaseException:
            proc.kill()
            raise
        return proc.wait()


def _tail(log: Path, lines: int = 25) -> str:
    text = log.read_text(errors="replace").replace("\r", "\n") if log.is_file() else ""
    keep = [ln for ln in text.splitlines() if ln.strip() and "it/s]" not in ln and "s/it]" not in ln]
    return "\n".join(keep[-lines:])


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


def eval_command(spec: Spec, cfg: dict[str, Any], model_dir: Path, eval_dir: Path) -> list[str]:
    if (model_dir / "adapter_config.json").is_file():
        model_args = f"pretrained={cfg['base_model']},peft={model_dir}"
    else:
        model_args = f"pretrained={model_dir}"
    ev = spec.eval
    if (ev.device or "cpu") == "cpu":
        model_args += ",dtype=float32"
    cmd = [sys.executable, "-m", "divplugin", "eval", "--model", "hf", "--model_args", model_args,
           "--tasks", ",".join(ev.tasks), "--batch_size", str(ev.batch_size), "--output_path", str(eval_dir)]
    if ev.limit:
        cmd += ["--limit", str(ev.limit)]
    if ev.device:
        cmd += ["--device", ev.device]
    if ev.heldout:
        cmd += ["--metadata", json.dumps({"data": str(model_dir / "divplugin_data")})]
    return cmd + list(ev.args)


def build_base_model(spec: Spec, out: Path) -> None:
    if spec.base_model is None or (out / "base-model" / "config.json").is_file():
        return
    from divplugin.models import build_tiny_model

    tmp = out / ".base-model.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    m = spec.base_model
    build_tiny_model(tmp, arch=m.arch, layers=m.layers, hidden=m.hidden, heads=m.heads, max_len=m.max_len, seed=m.seed)
    tmp.rename(out / "base-model")


def run_point(spec: Spec, values: dict[str, Any], out: Path, overrides: dict[str, Any],
              on_step: Callable[[int, int], None] | None = None, on_phase: Callable[[str], None] | None = None) -> PointResult:
    cfg = point_config(spec, values, out, overrides)
    digest = _hash({"train": cfg, "eval": spec.eval.model_dump()})
    pid = point_id(values)
    pdir = out / "points" / pid
    done = pdir / "result.json"
    if done.is_file():
        old = PointResult(**json.loads(done.read_text()))
        if old.status == "done" and old.hash == digest:
            return old
    model_dir, eval_dir = Path(cfg["output_dir"]), pdir / "eval"
    for stale in (model_dir, eval_dir, done):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / "train.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = PointResult(pid, values, "failed", hash=digest)
    t0 = time.perf_counter()
    if on_phase:
        on_phase("train")
    rc = _stream([_tool("axolotl"), "train", str(pdir / "train.yml")], pdir / "train.log", pdir, on_step)
    result.train_seconds = round(time.perf_counter() - t0, 1)
    if rc != 0:
        result.error = f"axolotl train exited with {rc}:\n{_tail(pdir / 'train.log')}"
    else:
        if on_phase:
            on_phase("eval")
        t1 = time.perf_counter()
        rc = _stream(eval_command(spec, cfg, model_dir, eval_dir), pdir / "eval.log", pdir)
        result.eval_seconds = round(time.perf_counter() - t1, 1)
        if rc != 0:
            result.error = f"divplugin eval exited with {rc}:\n{_tail(pdir / 'eval.log')}"
        else:
            try:
                result.metrics = _metrics(eval_dir)
                result.status = "done"
            except (RuntimeError, KeyError, ValueError) as exc:
                result.error = str(exc)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    tmp.replace(done)
    return result
