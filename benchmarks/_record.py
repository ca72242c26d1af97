"""What a benchmark writes beside its printout: its figures, the command that made them, and
where (CPU, threads, the versions of the stack, and the BLAS libraries torch runs on), as
``docs/results/bench-NAME/results.json`` with ``--json``. The docs read their figures from
these files (``docs/figures.py``), so a table cannot drift from the run behind it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def add_json_flag(ap: Any, name: str) -> None:
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"Also write the figures, command and platform here (docs/results/{name}/results.json).",
    )


def chosen(ap: Any, only: str | None, choices: Any, first: str, noun: str) -> list[str]:
    """The names a comma-separated ``--only`` asks for, ``first`` (the reference, always run)
    leading; every one of ``choices`` without it. An unknown name is an argparse error naming it."""
    names = list(choices)
    if not only:
        return names
    wanted = [x.strip() for x in only.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in names]
    if unknown:
        ap.error(f"--only: unknown {noun}(s) {unknown}; choose from {names}")
    return [first] + [x for x in wanted if x != first]


def version_of(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def blas() -> dict[str, str]:
    """The versions of MKL and oneDNN torch was built with ({} without torch)."""
    try:
        import torch
    except ImportError:
        return {}
    text = torch.__config__.show()
    out = {}
    for key, pattern in (("mkl", r"Math Kernel Library Version ([\w.]+)"), ("onednn", r"(?:oneDNN|MKL-DNN) v([\w.]+)")):
        m = re.search(pattern, text)
        if m:
            out[key] = m.group(1)
    return out


def platform() -> dict[str, Any]:
    from divplugin.experiments.platform import describe

    return {**describe(), **blas()}


def command(argv: list[str] | None, script: str) -> str:
    """The command as run from the project folder: ``script`` (a benchmark's ``__file__``) with
    ``argv`` (None: this process's arguments)."""
    path = Path(script).resolve()
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join(["python", str(path), *(sys.argv[1:] if argv is None else argv)])


def write(path: Path | None, figures: dict[str, Any], argv: list[str] | None, script: str) -> None:
    """``figures`` with the command (``script`` run with ``argv``) and the platform, as JSON at
    ``path`` (nothing when None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": command(argv, script), "platform": platform(), **figures}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    tmp.replace(path)
    print(f"figures: {path}")
