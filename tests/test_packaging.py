"""The wheel carries every data file the package reads at run time (task YAMLs, presets, specs)."""

import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT

DATA_DIRS = {  # source folder -> where it lands in the wheel
    "eval_tasks": "divplugin/eval_tasks",
    "divplugin/generators/presets": "divplugin/generators/presets",
    "divplugin/experiments/specs": "divplugin/experiments/specs",
    "divplugin/mixtures/presets": "divplugin/mixtures/presets",
    "divplugin/axolotl": "divplugin/axolotl",
}


def test_wheel_ships_every_data_file(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", "tests", ".venv", ".pytest_cache"
        ),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "absent from the `packages` configuration" not in proc.stderr
    (wheel,) = (tmp_path / "dist").glob("divplugin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{target}/{f.relative_to(ROOT / folder).as_posix()}"
        for folder, target in DATA_DIRS.items()
        for f in (ROOT / folder).rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
    }
    assert len(expected) > 40
    assert sorted(expected - names) == []
