"""``DivPlugin``: generated data as an ordinary axolotl dataset.

At config load (``register``) the plugin checks its keys, generates the data once into a
folder named by the settings hash (under a file lock, so ranks share it) and adds that
folder's ``train.jsonl`` to ``datasets:``; axolotl then tokenizes, packs and caches it as
it does any dataset. Before data loading (``load_datasets``, which returns None so that
axolotl's own loader runs) rank 0 saves the held-out splits and manifest next to the
training output.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin
from axolotl.utils.logging import get_logger

from divplugin.axolotl.args import resolve_generator_args, resolve_mixture_args
from divplugin.datacache import ensure_generated, ensure_mixture
from divplugin.output import INSTRUCTIONS, MANIFEST, atomic_directory
from divplugin.paths import HELDOUT_DIR, cache_dir

LOG = get_logger(__name__)
HELDOUT_FILES = (MANIFEST, INSTRUCTIONS, "test.jsonl", "test_seen.jsonl")


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    value = cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
    return default if value is None else value


def data_folder(cfg: Any) -> Path | None:
    """The generated folder the config asks for (made if missing), or None."""
    resolved = resolve_generator_args(dict(cfg))
    if resolved is None:
        return None
    name, config = resolved
    root = Path(_get(cfg, "divplugin_cache_dir") or cache_dir() / "generated")
    folder, created = ensure_generated(root, name, config, workers=_get(cfg, "divplugin_workers"))
    LOG.info("divplugin: %s %s data in %s", "generated" if created else "reusing", name, folder)
    return folder


def mixture_folder(cfg: Any) -> tuple[Path, str] | None:
    """(folder, record format) of the mixture the config asks for (built if missing), or None."""
    m = resolve_mixture_args(dict(cfg))
    if m is None:
        return None
    root = Path(_get(cfg, "divplugin_cache_dir") or cache_dir() / "mixtures")
    folder, created = ensure_mixture(root, m)
    LOG.info("divplugin: %s mixture %s in %s", "built" if created else "reusing", m.name, folder)
    return folder, m.record_format


def _add_dataset(cfg: Any, entry: dict[str, Any]) -> None:
    """Append ``entry`` to ``datasets:`` (once, even if the config already names its path)."""
    cfg["datasets"] = [*(d for d in (cfg.get("datasets") or []) if _get(d, "path") != entry["path"]), entry]


def heldout_dir(cfg: Any) -> Path:
    return Path(_get(cfg, "divplugin_heldout_dir") or Path(_get(cfg, "output_dir", "./model-out")) / HELDOUT_DIR)


def export_heldout(folder: Path, dest: Path) -> None:
    """Copy the manifest, instructions and test splits of ``folder`` to ``dest`` (atomically)."""
    with atomic_directory(dest, overwrite=True) as tmp:
        for name in HELDOUT_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)
        (tmp / "SOURCE").write_text(f"{folder}\n")


class DivPlugin(BasePlugin):
    """Generates divplugin data for axolotl (keys: see divplugin.axolotl.args.DivpluginArgs)."""

    def get_input_args(self) -> str:
        return "divplugin.axolotl.args.DivpluginArgs"

    def register(self, cfg: Any) -> None:
        mixed = mixture_folder(cfg)
        if mixed is not None:
            folder, record_format = mixed
            entry = {"path": str(folder / "train.jsonl"), "ds_type": "json"}
            if record_format == "messages":
                entry.update(type="chat_template", field_messages="messages")
            else:
                entry["type"] = _get(cfg, "divplugin_dataset_type", "divplugin.axolotl.mixture")
            _add_dataset(cfg, entry)
            return
        folder = data_folder(cfg)
        if folder is None:
            return
        dtype = _get(cfg, "divplugin_dataset_type", "divplugin.axolotl.markov")
        _add_dataset(cfg, {"path": str(folder / "train.jsonl"), "ds_type": "json", "type": dtype, "split": "train"})
        split = _get(cfg, "divplugin_eval_split")
        if split:
            cfg["test_datasets"] = [{"path": str(folder / f"{split}.jsonl"), "ds_type": "json", "type": dtype, "split": "train"}]

    def load_datasets(self, cfg: Any, preprocess: bool = False) -> None:
        folder = data_folder(cfg)
        if folder is not None and int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0:
            dest = heldout_dir(cfg)
            export_heldout(folder, dest)
            LOG.info("divplugin: held-out rules and manifest saved to %s", dest)
        return None
