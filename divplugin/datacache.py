"""Generated data cached by a hash of its settings, made once even with many ranks.

``ensure_generated`` names the folder after the generator and its config hash, so changed
settings never reuse stale data; a file lock makes concurrent callers (every rank of a
multi-GPU run) wait for the first one, which writes the folder atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from divplugin.generators import GeneratorConfig, create
from divplugin.output import MANIFEST, config_hash, write_dataset


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


def ensure_selected(root: str | os.PathLike, source: Path, subset: dict) -> tuple[Path, bool]:
    """(folder, created): the rows ``subset`` (see ``divplugin.axolotl.args.subset_request``)
    chooses from the data folder ``source``, written once beside the other selections."""
    from divplugin.selection import SelectSettings
    from divplugin.subsets import select_dataset

    settings = SelectSettings.of(subset)
    return _ensure(Path(root) / f"{source.name}-{subset_key(subset)}",
                   lambda f: select_dataset(str(source), f, subset["budget"], settings, fields=subset["fields"],
                                            by=subset.get("by"), dedup=subset["dedup"], overwrite=True))


def generated_folder(root: str | os.PathLike, name: str, config: GeneratorConfig) -> Path:
    """Where data for generator ``name`` with ``config`` lives under ``root``."""
    return Path(root) / data_key("generated", name, config)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ensure(folder: Path, write) -> tuple[Path, bool]:
    """(folder, created): ``write(folder)`` runs once, under a lock beside the folder, unless a
    complete folder (its manifest written last) is already there."""
    if (folder / MANIFEST).is_file():
        return folder, False
    with file_lock(folder.with_name(folder.name + ".lock")):
        if (folder / MANIFEST).is_file():
            return folder, False
        write(folder)
    return folder, True


def ensure_generated(root: str | os.PathLike, name: str, config: GeneratorConfig,
                     workers: int | None = None, progress=None) -> tuple[Path, bool]:
    """(folder, created): the generated folder for ``config``, written if it is not there yet."""
    return _ensure(generated_folder(root, name, config),
                   lambda f: write_dataset(create(name, config), f, workers=workers, overwrite=True, progress=progress))


def ensure_mixture(root: str | os.PathLike, mixture) -> tuple[Path, bool]:
    """(folder, created): the built mixture for ``mixture`` (a Mixture), named by a hash of its spec."""
    from divplugin.mixtures import mix

    return _ensure(Path(root) / data_key("mixture", mixture.name, mixture), lambda f: mix(mixture, f, overwrite=True))
