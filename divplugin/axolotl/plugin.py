"""``DivPlugin``: generated data as an ordinary axolotl dataset.

At config load (``register``) the plugin checks its keys, generates the data once into a
folder named by the settings hash (under a file lock, so ranks share it) and adds that
folder's ``train.jsonl`` to ``datasets:``; axolotl then tokenizes, packs and caches it as
it does any dataset. Before data loading (``load_datasets``, which returns None so that
axolotl's own loader runs) rank 0 saves the held-out splits and manifest next to the
training output. A mixture trained in the Alpaca format (a tokenizer without a chat
template) leaves that format in the saved tokenizer as its chat template
(``post_trainer_create``; axolotl saves the tokenizer after it).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin
from axolotl.utils.logging import get_logger

from divplugin.axolotl.args import AfterTrainingEval, DataRequest, TrainingEval, resolve
from divplugin.core.fsutil import atomic_directory
from divplugin.core.paths import HELDOUT_DIR, cache_dir
from divplugin.data.cache import ensure_generated
from divplugin.data.manifest import INSTRUCTIONS, MANIFEST, load_manifest
from divplugin.diversity.subset import ensure_selected
from divplugin.mixtures.build import ensure_mixture

# under axolotl's name: axolotl shows INFO from its own loggers only
LOG = get_logger("axolotl.integrations.divplugin")
HELDOUT_FILES = (MANIFEST, INSTRUCTIONS, "test.jsonl", "test_seen.jsonl")


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    value = cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
    return default if value is None else value


@dataclass(frozen=True)
class Prepared:
    """The data a config trains on, made: its folder, its ``datasets:`` entry (and a
    ``test_datasets:`` entry when ``divplugin_eval_split`` asks for one), and the held-out
    files to save for evaluation (generated data only)."""

    request: DataRequest
    folder: Path
    dataset: dict[str, Any]
    test_dataset: dict[str, Any] | None
    heldout_files: tuple[str, ...]


def prepare(cfg: Any) -> Prepared | None:
    """Resolve the ``divplugin_*`` keys and make the data (once: a folder named by the
    settings hash is reused); None when the config asks for no divplugin data."""
    req = resolve(dict(cfg))
    if req is None:
        return None
    if req.kind == "mixture":
        root = Path(_get(cfg, "divplugin_cache_dir") or cache_dir() / "mixtures")
        folder, created = ensure_mixture(root, req.config)
        folder = _subset(cfg, req, folder)
        entry = {"path": str(folder / "train.jsonl"), "ds_type": "json"}
        if req.config.record_format == "messages":
            entry.update(type="chat_template", field_messages="messages")
        else:
            entry["type"] = _get(cfg, "divplugin_dataset_type", "divplugin.axolotl.mixture")
        LOG.info("divplugin: %s mixture %s in %s", "built" if created else "reusing", req.name, folder)
        return Prepared(req, folder, entry, None, ())
    root = Path(_get(cfg, "divplugin_cache_dir") or cache_dir() / "generated")
    folder, created = ensure_generated(root, req.name, req.config, workers=_get(cfg, "divplugin_workers"))
    LOG.info("divplugin: %s %s data in %s", "generated" if created else "reusing", req.name, folder)
    folder = _subset(cfg, req, folder)
    dtype = _get(cfg, "divplugin_dataset_type", "divplugin.axolotl.markov")
    entry = {"path": str(folder / "train.jsonl"), "ds_type": "json", "type": dtype, "split": "train"}
    split = _get(cfg, "divplugin_eval_split")
    test = {**entry, "path": str(folder / f"{split}.jsonl")} if split else None
    return Prepared(req, folder, entry, test, tuple(n for n in HELDOUT_FILES if (folder / n).is_file()))


def _subset(cfg: Any, req: DataRequest, folder: Path) -> Path:
    """The folder of the rows ``divplugin_select`` keeps of ``folder`` (``folder`` itself without it)."""
    if req.subset is None:
        return folder
    root = Path(_get(cfg, "divplugin_cache_dir") or cache_dir()) / "selected"
    chosen, created = ensure_selected(root, folder, req.subset)
    LOG.info(
        "divplugin: %s %s of %s rows (%s) in %s",
        "chose" if created else "reusing",
        f"{req.subset['budget']:,}",
        folder.name,
        req.subset["method"],
        chosen,
    )
    return chosen


def trains_alpaca(prepared: Prepared | None, tokenizer: Any) -> bool:
    """Whether the run trains mixture rows in divplugin's Alpaca format: the mixture prompt
    strategy and a tokenizer without a chat template."""
    return (
        prepared is not None
        and prepared.request.kind == "mixture"
        and prepared.dataset.get("type") == "divplugin.axolotl.mixture"
        and not getattr(tokenizer, "chat_template", None)
    )


def _add_dataset(cfg: Any, entry: dict[str, Any]) -> None:
    """Append ``entry`` to ``datasets:`` (once, even if the config already names its path)."""
    cfg["datasets"] = [*(d for d in (cfg.get("datasets") or []) if _get(d, "path") != entry["path"]), entry]


def training_eval(cfg: Any) -> TrainingEval | None:
    """The ``divplugin_eval`` settings of a config, or None."""
    value = _get(cfg, "divplugin_eval")
    if value is None or isinstance(value, TrainingEval):
        return value
    return TrainingEval.model_validate(dict(value))


def check_training_eval(settings: TrainingEval | None, prepared: Prepared) -> None:
    """At config load, before any training: the data has the splits ``divplugin_eval`` scores,
    with as many rows as it asks for (ValueError names the key)."""
    if settings is None:
        return
    if prepared.request.kind != "generated":
        raise ValueError("divplugin_eval: scores the held-out rules of generated data; a mixture has none")
    splits = load_manifest(prepared.folder)["splits"]
    for split in settings.splits:
        have = int(splits.get(split, {}).get("examples", 0))
        if have == 0:
            raise ValueError(f"divplugin_eval.splits: the data has no {split} rows (set its generator's examples)")
        if settings.examples > have:
            raise ValueError(
                f"divplugin_eval.examples: asks for {settings.examples:,} rows but the {split} split holds {have:,}"
            )


def lm_eval_settings(cfg: Any) -> AfterTrainingEval | None:
    """The ``divplugin_lm_eval`` settings of a config, or None."""
    value = _get(cfg, "divplugin_lm_eval")
    if value is None or isinstance(value, AfterTrainingEval):
        return value
    return AfterTrainingEval.model_validate(dict(value))


def check_lm_eval(settings: AfterTrainingEval | None, prepared: Prepared | None) -> None:
    """At config load: the string-rewrite tasks need held-out rules, so generated data."""
    if settings is None:
        return
    from divplugin.core.paths import task_names

    markov = [t for t in settings.tasks if not task_names()[t]]
    if markov and (prepared is None or not prepared.heldout_files):
        raise ValueError(
            f"divplugin_lm_eval.tasks: {', '.join(markov)} score held-out rules of generated data, and this "
            "run trains on none (set divplugin_preset or divplugin_generator, or name code tasks only)"
        )


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def heldout_dir(cfg: Any) -> Path:
    return Path(_get(cfg, "divplugin_heldout_dir") or Path(_get(cfg, "output_dir", "./model-out")) / HELDOUT_DIR)


def export_heldout(prepared: Prepared, dest: Path) -> None:
    """Copy the manifest, instructions and test splits of the data to ``dest`` (atomically)."""
    with atomic_directory(dest, overwrite=True) as tmp:
        for name in prepared.heldout_files:
            shutil.copy2(prepared.folder / name, tmp / name)
        (tmp / "SOURCE").write_text(f"{prepared.folder}\n")


class DivPlugin(BasePlugin):
    """Generates divplugin data for axolotl (keys: see divplugin.axolotl.args.DivpluginArgs)."""

    prepared: Prepared | None = None

    def get_input_args(self) -> str:
        return "divplugin.axolotl.args.DivpluginArgs"

    trained: bool = False

    def register(self, cfg: Any) -> None:
        self.prepared = prepare(cfg)
        check_lm_eval(lm_eval_settings(cfg), self.prepared)
        if self.prepared is None:
            return
        check_training_eval(training_eval(cfg), self.prepared)
        _add_dataset(cfg, self.prepared.dataset)
        if self.prepared.test_dataset:
            cfg["test_datasets"] = [self.prepared.test_dataset]

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        settings = training_eval(cfg)
        if settings is None or self.prepared is None:
            return []
        from divplugin.axolotl.evaluation import HeldoutEval

        return [HeldoutEval(trainer, self.prepared.folder, settings, _get(cfg, "output_dir", "./model-out"))]

    def post_trainer_create(self, cfg: Any, trainer: Any) -> None:
        tok = getattr(trainer, "processing_class", None) or getattr(trainer, "tokenizer", None)
        if tok is not None and trains_alpaca(self.prepared, tok):
            from divplugin.axolotl.mixture import adds_bos, alpaca_chat_template

            tok.chat_template = alpaca_chat_template(adds_bos(tok))
            LOG.info(
                "divplugin: the tokenizer saved with the model gets the Alpaca format it trains on as its chat template"
            )

    def post_train(self, cfg: Any, model: Any) -> None:
        self.trained = True  # axolotl calls this once training has ended (and again once it saved)

    def post_train_unload(self, cfg: Any) -> None:
        settings = lm_eval_settings(cfg)
        if settings is None or not self.trained or _rank() != 0:
            return
        from divplugin.axolotl.evaluation import run_lm_eval

        run_lm_eval(cfg, settings, heldout_dir(cfg) if self.prepared and self.prepared.heldout_files else None)

    def load_datasets(self, cfg: Any, preprocess: bool = False) -> None:
        prepared = self.prepared or prepare(cfg)
        if prepared and prepared.heldout_files and _rank() == 0:
            dest = heldout_dir(cfg)
            export_heldout(prepared, dest)
            LOG.info("divplugin: held-out rules and manifest saved to %s", dest)
        return None
