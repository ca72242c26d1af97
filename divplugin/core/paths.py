"""Where divplugin keeps what it can recompute (expected outputs, generated data, results), and
where its lm-eval tasks are."""

from __future__ import annotations

import os
from pathlib import Path

HELDOUT_DIR = "divplugin_data"  # beside a trained model: the held-out splits and manifest of its data


def cache_dir() -> Path:
    """``$DIVPLUGIN_CACHE``, else ``$XDG_CACHE_HOME/divplugin``, else ``~/.cache/divplugin``."""
    if os.environ.get("DIVPLUGIN_CACHE"):
        return Path(os.environ["DIVPLUGIN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "divplugin"


def tasks_dir() -> Path:
    """The folder of divplugin's lm-eval tasks (pass it to ``lm_eval --include_path``)."""
    from importlib.resources import files

    return Path(str(files("divplugin.eval_tasks")))


def task_names() -> dict[str, bool]:
    """Every task and group name divplugin's lm-eval tasks define, with whether it runs code
    (the HumanEval(+) and MBPP(+) tasks and their groups)."""
    import re

    names: dict[str, bool] = {}
    for path in sorted(tasks_dir().rglob("*.yaml")):
        text = path.read_text()
        code = path.parent.name == "code"
        for name in re.findall(r"^(?:task|group): *([\w-]+) *$", text, re.M):
            names[name] = code
    return names
