"""The dataset-folder contract: a folder of ``{split}.jsonl`` files (and Parquet or ``hf/``
copies) whose ``manifest.json`` is written last, so a folder with a manifest is complete.

Three kinds share one versioned manifest (``format_version`` 2): ``generated`` (``divplugin
generate``: generator, seed, config, per-split statistics), ``mixture`` (``divplugin mix``:
the mixture, its sources and counts) and ``selected`` (``divplugin select``: the source's
manifest plus ``selection``). Every kind has ``kind``, ``record_format`` and ``splits``
(``{split: {"examples": n, "files": {"jsonl": {"path", "sha256"}, ...}}}``).
:func:`upgrade` reads every manifest an earlier divplugin wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from divplugin.data.records import DEFAULT_PROMPT_TEMPLATE
from divplugin.generators.base import CHUNK_SIZE

MANIFEST = "manifest.json"
INSTRUCTIONS = "instructions.jsonl"
FORMAT_VERSION = 2
KINDS = ("generated", "mixture", "selected")


def config_hash(generator: str, config: dict[str, Any]) -> str:
    """The identity of generated data: generator, settings and chunk size."""
    text = json.dumps({"generator": generator, "config": config, "chunk_size": CHUNK_SIZE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def header(kind: str) -> dict[str, Any]:
    """The fields every manifest starts with."""
    from divplugin import __version__

    return {"format_version": FORMAT_VERSION, "kind": kind, "divplugin_version": __version__}


def upgrade(manifest: dict[str, Any], where: str | os.PathLike = MANIFEST) -> dict[str, Any]:
    """``manifest`` in today's form, whatever divplugin version wrote it: version 1 (generated
    and selected folders, without ``kind``) and unversioned mixture folders (one
    ``files.train`` entry instead of ``splits``). Anything else is an error naming ``where``."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: a manifest is a JSON object, got {type(manifest).__name__}")
    version = manifest.get("format_version")
    m = dict(manifest)
    if version is None and "mixture" in m and "train" in m.get("files", {}):
        train = m.pop("files")["train"]
        m = {
            **header("mixture"),
            **m,
            "format_version": FORMAT_VERSION,
            "splits": {"train": {"examples": m.get("examples"), "files": {"jsonl": train}}},
        }
        m.setdefault("record_format", "instruction")
    elif version == 1:
        m = {"format_version": FORMAT_VERSION, "kind": "selected" if "selection" in m else "generated", **m}
        m["format_version"] = FORMAT_VERSION
    elif version != FORMAT_VERSION:
        raise ValueError(
            f"{where}: unsupported manifest format_version {version!r} (this divplugin reads "
            f"1 to {FORMAT_VERSION} and unversioned mixture folders)"
        )
    if m.get("kind") not in KINDS or not isinstance(m.get("splits"), dict):
        raise ValueError(
            f"{where}: not a divplugin dataset manifest (kind {m.get('kind')!r}; "
            f"expected one of {', '.join(KINDS)}, with splits)"
        )
    return m


def load_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a dataset folder of any kind, upgraded; a clear error if it is missing
    or broken."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a complete divplugin dataset")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    return upgrade(manifest, path)


def is_dataset(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a complete divplugin dataset folder (its manifest is there)."""
    return (Path(folder) / MANIFEST).is_file()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` into ``folder``: the last file of a dataset folder."""
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def prompt_template(manifest: dict[str, Any]) -> str:
    """The prompt template of a generated (or selected-from-generated) dataset."""
    return manifest.get("config", {}).get("prompt_template", DEFAULT_PROMPT_TEMPLATE)


def read_instructions(folder: str | os.PathLike, split: str | None = None) -> list[dict[str, Any]]:
    """Instruction records of a generated folder (``split``: 'train' or 'test' to filter)."""
    path = Path(folder) / INSTRUCTIONS
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    return [r for r in recs if split is None or r["split"] == split]
