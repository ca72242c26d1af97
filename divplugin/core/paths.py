"""Where divplugin keeps what it can recompute (expected outputs, generated data, results)."""

from __future__ import annotations

import os
from pathlib import Path

HELDOUT_DIR = "divplugin_data"  # beside a trained model: the held-out splits and manifest of its data


def cache_dir() -> Path:
    """``$DIVPLUGIN_CACHE``, else ``$XDG_CACHE_HOME/divplugin``, else ``~/.cache/divplugin``."""
    if os.environ.get("DIVPLUGIN_CACHE"):
        return Path(os.environ["DIVPLUGIN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "divplugin"
