"""lm-eval glue for the string-rewrite tasks: documents, prompts and scores.

Documents come from a generated folder (``--metadata '{"data": "DIR"}'``: a folder written by
``divplugin generate`` or by the axolotl plugin's held-out export, so evaluation uses exactly
the rules training never saw) or are generated inside the task from ``--metadata``
(``generator``, ``preset``, ``seed``, ``size`` and any generator setting; ``programs``: a
mapping of these for ``divplugin_markov_programs`` alone, when one run evaluates both kinds).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from divplugin.data.records import completion_prompt, read_jsonl
from divplugin.errors import ConfigError, did_you_mean
from divplugin.generators.base import answer_of

SUBSETS = {"unseen": "test", "seen": "test_seen", "noop": "test", "hasop": "test", "programs": "test"}


def _rows_from_folder(folder: Path, split: str) -> tuple[list[dict], str]:
    from divplugin.data.manifest import load_manifest, prompt_template

    template = prompt_template(load_manifest(folder))
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        raise ConfigError(f"{folder} has no {split}.jsonl (write it with --format jsonl)", "data")
    rows = read_jsonl(path)
    if rows and "instruction" not in rows[0]:
        raise ConfigError(f"{path}: rows are not in the 'instruction' record format", "data")
    return rows, template


def _generator_settings(name: str, metadata: dict) -> dict:
    """The generator settings among lm-eval's metadata (which also holds the model's
    arguments); a key that is close to a setting's name is taken for a typo."""
    import dataclasses
    import logging

    from divplugin.generators import get_generator_class

    fields = [f.name for f in dataclasses.fields(get_generator_class(name).config_class)]
    keep = {}
    for key, value in metadata.items():
        if key in fields:
            keep[key] = value
            continue
        hint = did_you_mean(key, fields, cutoff=0.8)
        if hint:
            raise ConfigError(f"unknown setting of {name}{hint}", key)
        logging.getLogger(__name__).info("divplugin_markov: ignoring metadata key %r", key)
    return keep


def _rows_generated(split: str, settings: dict, programs: bool) -> tuple[list[dict], str]:
    from divplugin.generators import create
    from divplugin.generators.presets import load_preset
    from divplugin.generators.settings import resolve_generator

    settings = dict(settings)
    preset = settings.pop("preset", "programs-small" if programs else "cpu-small")
    size = int(settings.pop("size", 500))
    name = (
        settings.pop("generator", None)
        or (load_preset(preset).get("generator") if preset else None)
        or "markov_rewrite"
    )
    layer = {**_generator_settings(name, settings), "test_examples": size, "seen_test_examples": size}
    name, config = resolve_generator(name, preset, [("--metadata", layer)])
    gen = create(name, config)
    return list(gen.iter_split(split)), gen.config.prompt_template


def load_markov(subset: str = "unseen", data: str | None = None, family: str | None = None, **metadata):
    """`custom_dataset` of the divplugin_markov tasks: {"test": datasets.Dataset}."""
    import datasets

    if subset not in SUBSETS:
        raise ConfigError(f"unknown subset {subset!r}; choose from {sorted(SUBSETS)}", "subset")
    split = SUBSETS[subset]
    settings = dict(metadata)
    programs_data = settings.pop("programs_data", None)
    programs = settings.pop("programs", None)
    if programs is not None and not isinstance(programs, dict):
        raise ConfigError(f"expected a mapping of generator settings, got {programs!r}", "programs")
    if subset == "programs" and programs is not None:
        settings = dict(programs)  # the program task's own settings, apart from the rewrite tasks'
    folder = programs_data if subset == "programs" else data
    if folder:
        rows, template = _rows_from_folder(Path(folder), split)
    else:
        rows, template = _rows_generated(split, settings, subset == "programs")
    if subset == "noop":
        rows = [r for r in rows if r["metadata"].get("noop")]
    elif subset == "hasop":
        rows = [r for r in rows if not r["metadata"].get("noop")]
    if family is not None:
        rows = [r for r in rows if r["metadata"].get("family") == family]
    if not rows:
        what = f"family={family}" if family else f"subset={subset}"
        raise ConfigError(
            f"no test examples for {what} in this data; generate data that has them "
            f"(e.g. noop_fraction > 0, or families: [{family}])",
            "subset",
        )
    docs = {
        "prompt": [completion_prompt(template, r["instruction"], r["input"]) for r in rows],
        "answer": [r["output"] for r in rows],
        "family": [str(r["metadata"].get("family", "")) for r in rows],
        "k": [int(r["metadata"].get("k", 0) or 0) for r in rows],
        "noop": [bool(r["metadata"].get("noop", False)) for r in rows],
    }
    return {"test": datasets.Dataset.from_dict(docs)}


def similarity(prediction: str, answer: str) -> float:
    """Partial credit: difflib's ratio of matching characters (1.0 for an exact match)."""
    if prediction == answer:
        return 1.0
    return difflib.SequenceMatcher(None, prediction, answer, autojunk=False).ratio()


def process_results(doc: dict, results: list[str]) -> dict:
    pred = answer_of(results[0])
    return {"exact_match": float(pred == doc["answer"]), "similarity": similarity(pred, doc["answer"])}
