"""Where a result was made: the CPU, the instruction set torch's kernels use, threads, GPU and
the versions of the stack. Recorded beside each point's metrics; never part of its hash (the
same spec and data on another machine is the same point, made elsewhere)."""

from __future__ import annotations

import os
import platform as _platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "transformers", "axolotl", "peft", "lm_eval", "datasets", "accelerate", "bitsandbytes")
# variables that choose which CPU kernels torch, oneDNN and MKL run (recorded when set)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def _commit() -> str | None:
    """divplugin's git commit, when it runs from a checkout (with ``-dirty`` for local edits to
    anything but Markdown, which cannot change a result)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)*.md"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if head and dirty else head or None


@lru_cache(maxsize=1)
def _torch_facts() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {}
    facts: dict[str, Any] = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpus"] = torch.cuda.device_count()
    return facts


def describe(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The platform a point runs on; `env`: the variables its processes get (threads, GPUs)."""
    env = {**os.environ, **(env or {})}
    from divplugin import __version__

    facts = _torch_facts()
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_capability": facts.get("cpu_capability"),
        "cores": os.cpu_count(),
        "threads": int(env["OMP_NUM_THREADS"]) if env.get("OMP_NUM_THREADS", "").isdigit() else None,
        "gpu": facts.get("gpu"),
        "python": _platform.python_version(),
        "divplugin": __version__,
        "commit": _commit(),
        **{name: _version(name) for name in PACKAGES},
    }
    for key in KERNEL_VARIABLES:
        if env.get(key):
            info[key] = env[key]
    return info


def differences(recorded: dict[str, Any], here: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields that differ between two platforms: {field: (recorded, here)}."""
    keys = [k for k in {**recorded, **here} if k != "commit"]
    return {k: (recorded.get(k), here.get(k)) for k in keys if recorded.get(k) != here.get(k)}
