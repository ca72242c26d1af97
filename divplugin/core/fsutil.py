"""Files written whole or not at all: atomic folders, atomic file replacement, hashed writes,
and an advisory lock for work that many processes may try to do at once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from divplugin.errors import OutputExistsError


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a private temp folder that replaces ``final`` only if the block succeeds."""
    final = Path(final)
    check_new_output(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def check_new_output(final: str | os.PathLike, overwrite: bool) -> None:
    """Raise OutputExistsError when ``final`` exists and may not be replaced: callers check
    before any work, and :func:`atomic_directory` again when the output is written."""
    final = Path(final)
    if final.exists():
        if not final.is_dir():
            raise OutputExistsError(f"output path {final} exists and is not a folder")
        if not overwrite:
            raise OutputExistsError(f"output folder {final} exists; pass --overwrite (overwrite=True) to replace it")


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """An open temp file beside ``final`` that replaces it only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, mode) as f:
            yield f
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


class HashedFile:
    """A file opened for binary writing that hashes what is written (sha256);
    ``entry`` is its manifest record ``{"path": name, "sha256": hex}``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.digest = hashlib.sha256()
        self._f = open(self.path, "wb")

    def write(self, blob: bytes) -> None:
        self._f.write(blob)
        self.digest.update(blob)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> HashedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def entry(self) -> dict[str, str]:
        return {"path": self.path.name, "sha256": self.digest.hexdigest()}


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
