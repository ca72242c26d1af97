"""Datasets cached by a hash of their settings, made once even with many ranks.

``ensure_generated`` names the folder after the generator and its config hash, so changed
settings never reuse stale data; a file lock makes concurrent callers (every rank of a
multi-GPU run) wait for the first one, which writes the folder atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from divplugin.core.fsutil import file_lock
from divplugin.data.manifest import MANIFEST, config_hash
from divplugin.data.writer import write_dataset
from divplugin.generators import GeneratorConfig, create


def data_key(kind: str, name: str, config, subset: dict | None = None) -> str:
    """The identity of the training data a request asks for, as a folder name: the generator
    (or mixture) name and a hash of its resolved settings (a ``GeneratorConfig``, or the
    ``Mixture`` with its sources, budget and rows), and of the subset chosen from it, if any.
    Equal keys mean equal data."""
    if kind == "mixture":
        digest = hashlib.sha256(json.dumps(config.model_dump(), sort_keys=True).encode()).hexdigest()
        key = f"{config.name.replace('/', '-')}-{digest[:16]}"
    else:
        key = f"{name}-{config_hash(name, config.to_dict())[:16]}"
    return key if subset is None else f"{key}-{subset_key(subset)}"


def subset_key(subset: dict) -> str:
    """A folder-name suffix for a subset request: the method and a hash of its settings."""
    digest = hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()
    return f"{subset['method']}{subset['budget']}-{digest[:12]}"


def generated_folder(root: str | os.PathLike, name: str, config: GeneratorConfig) -> Path:
    """Where data for generator ``name`` with ``config`` lives under ``root``."""
    return Path(root) / data_key("generated", name, config)


def ensure_folder(folder: Path, write: Callable[[Path], Any]) -> tuple[Path, bool]:
    """(folder, created): ``write(folder)`` runs once, under a lock beside the folder, unless a
    complete folder (its manifest written last) is already there."""
    if (folder / MANIFEST).is_file():
        return folder, False
    with file_lock(folder.with_name(folder.name + ".lock")):
        if (folder / MANIFEST).is_file():
            return folder, False
        write(folder)
    return folder, True


def ensure_generated(
    root: str | os.PathLike, name: str, config: GeneratorConfig, workers: int | None = None, progress=None
) -> tuple[Path, bool]:
    """(folder, created): the generated folder for ``config``, written if it is not there yet."""
    return ensure_folder(
        generated_folder(root, name, config),
        lambda f: write_dataset(create(name, config), f, workers=workers, overwrite=True, progress=progress),
    )
