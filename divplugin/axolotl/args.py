"""The plugin's YAML keys (all prefixed ``divplugin_``), merged into axolotl's config schema,
and :func:`resolve`, which turns them into what to train on, once.

Importable without axolotl. :meth:`divplugin.axolotl.DivPlugin.register` resolves the keys
(axolotl calls it before it validates the config); the schema's validator then checks them
through the same cached resolution, so nothing is loaded or built twice.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from divplugin.errors import ConfigError

PREFIX = "divplugin_"


Split = Literal["test", "test_seen"]
SPLITS_SCORED: tuple[Split, ...] = ("test", "test_seen")


class TrainingEval(BaseModel):
    """``divplugin_eval``: exact match on held-out rows while the model trains."""

    model_config = ConfigDict(extra="forbid")

    every: int = Field(250, ge=1, description="Score every N optimizer steps, and at the last step.")
    examples: int = Field(
        500, ge=1, description="Rows of each split scored: a seeded sample, the same rows at every step."
    )
    splits: list[Split] = Field(
        default_factory=lambda: list(SPLITS_SCORED),
        min_length=1,
        description="test (rules never trained on: reported as unseen) and/or test_seen (fresh examples of "
        "trained rules: seen).",
    )
    batch_size: int = Field(64, ge=1, description="Rows generated at once (greedy, left-padded).")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Tokens generated at most (default: the longest answer's, plus 8)."
    )
    seed: int = Field(0, description="Seed of the sample of rows.")


class AfterTrainingEval(BaseModel):
    """``divplugin_lm_eval``: divplugin's lm-eval tasks on the trained model, once training ends."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(
        min_length=1, description="divplugin's lm-eval tasks or groups ('divplugin tasks-dir' holds them)."
    )
    limit: int | None = Field(None, ge=1, description="Documents of each task at most (default: all).")
    batch_size: int | str = Field(1, description="lm-eval's batch size (a number, or auto).")
    device: str | None = Field(None, description="lm-eval's --device (default: cuda when there is one, else cpu).")
    mode: Literal["completion", "instruct", "auto"] | None = Field(
        None, description="Code tasks: the prompt mode (default: the task's; auto: instruct with a chat template)."
    )
    confirm_run_unsafe_code: bool = Field(
        False,
        description="Code tasks run the model's programs (in divplugin's sandbox): say so, or the run stops at "
        "config load.",
    )
    model_args: dict[str, Any] = Field(default_factory=dict, description="More lm-eval --model_args.")
    args: list[str] = Field(
        default_factory=list, description="More lm-eval flags, e.g. [--gen_kwargs, max_gen_toks=64]."
    )

    @model_validator(mode="after")
    def _known_tasks(self) -> AfterTrainingEval:
        from divplugin.core.paths import task_names
        from divplugin.errors import did_you_mean

        names = task_names()
        for task in self.tasks:
            if task not in names:
                raise ValueError(
                    f"unknown task {task!r}{did_you_mean(task, names)} divplugin's tasks: {', '.join(sorted(names))}"
                )
        code = [t for t in self.tasks if names[t]]
        if code and not self.confirm_run_unsafe_code:
            raise ValueError(
                f"{', '.join(code)} run the model's programs: set divplugin_lm_eval.confirm_run_unsafe_code: true "
                "to allow it (they run in divplugin's sandbox)"
            )
        return self


class DivpluginArgs(BaseModel):
    """Settings of the divplugin axolotl plugin (``plugins: [divplugin.axolotl.DivPlugin]``)."""

    divplugin_generator: str | None = Field(
        None,
        description="Generator to train on (markov_rewrite, markov_program; 'divplugin generators' lists them). "
        "Optional when divplugin_preset names one.",
    )
    divplugin_preset: str | None = Field(
        None, description="Built-in generator settings to start from (cpu-small, paper-main, ...; 'divplugin presets')."
    )
    divplugin_settings: dict[str, Any] | None = Field(
        None, description="Generator settings over the preset, e.g. {num_rules: 300, seed: 1}."
    )
    divplugin_mixture: str | None = Field(
        None,
        description="A diversity mixture to train on instead of generated data: a mixture spec YAML or a "
        "built-in preset (deepseek-table1, codeqwen-table2, onlyif-table3; 'divplugin mix --list').",
    )
    divplugin_mixture_row: str | None = Field(None, description="The row of a grid mixture spec, e.g. oss18k-alpaca2k.")
    divplugin_mixture_paths: dict[str, str] | None = Field(
        None,
        description="Local copies of mixture sources: {source name: JSONL/Parquet/Arrow file or folder} (offline).",
    )
    divplugin_select: dict[str, Any] | None = Field(
        None,
        description="Train on the most diverse part of the data instead of all of it: {budget: N, method: "
        "kcenter | facility-location | random | balanced, embedder: chars | minilm, seed, fields: [instruction, "
        "input], dedup: none | exact | near, by: FIELD (random: stratify; balanced: even out its groups), dim, "
        "density, neighbours, fold_size} (see 'divplugin select'). Made once per settings hash, like the data.",
    )
    divplugin_cache_dir: str | None = Field(
        None,
        description="Where the data is kept, one folder per settings hash: generated data and mixtures in it, "
        "selections in its selected/ (default: $DIVPLUGIN_CACHE/generated, /mixtures and /selected; "
        "$DIVPLUGIN_CACHE is ~/.cache/divplugin unless set).",
    )
    divplugin_workers: int | None = Field(
        None, description="Processes that generate the data (default: all cores); the data is the same for any number."
    )
    divplugin_dataset_type: str | None = Field(
        None,
        description="axolotl prompt strategy of the added dataset (default: divplugin.axolotl.markov for "
        "generated data: the compact completion prompt, loss on the answer only; divplugin.axolotl.mixture for "
        "mixtures: the tokenizer's chat template, else the Alpaca format; any axolotl type such as alpaca works).",
    )
    divplugin_eval_split: Literal["test", "test_seen"] | None = Field(
        None,
        description="Also evaluate the loss during training on this split: test (rules never trained on) "
        "or test_seen (fresh examples of trained rules). Needs val_set_size: 0.",
    )
    divplugin_eval: TrainingEval | None = Field(
        None,
        description="Score exact match on held-out rows during training, with the divplugin_markov tasks' "
        "scoring: {every: 250, examples: 500, splits: [test, test_seen], batch_size: 64}. The scores go to the "
        "trainer's log (console, trainer_state.json, TensorBoard, W&B, ...) as divplugin/unseen_exact_match "
        "and divplugin/seen_exact_match (and _hasop, _noop where the data has no-ops), and to "
        "OUTPUT_DIR/divplugin_eval.jsonl.",
    )
    divplugin_lm_eval: AfterTrainingEval | None = Field(
        None,
        description="Run divplugin's lm-eval tasks on the trained model when training ends (an adapter over its "
        "base), with the held-out data: {tasks: [divplugin_markov], limit: null, batch_size: 1}. Results go to "
        "OUTPUT_DIR/lm_eval; the table is printed.",
    )
    divplugin_heldout_dir: str | None = Field(
        None,
        description="Where the held-out splits and manifest are saved for evaluation "
        "(default: OUTPUT_DIR/divplugin_data); pass it to the divplugin_markov tasks as --metadata '{\"data\": DIR}'.",
    )

    @field_validator("divplugin_workers")
    @classmethod
    def _workers(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"divplugin_workers must be >= 1, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _keys_name_data(cls, data: Any) -> Any:
        if isinstance(data, dict):
            resolve(data)  # raises ValueError naming the key at fault
        return data


@dataclass(frozen=True)
class DataRequest:
    """What the ``divplugin_*`` keys ask to train on: ``kind`` "generated" (``name`` is the
    generator, ``config`` its validated config) or "mixture" (``config`` is the Mixture);
    ``subset``: the rows to keep of it (:func:`subset_request`), or None for all."""

    kind: Literal["generated", "mixture"]
    name: str
    config: Any
    subset: dict[str, Any] | None = None


def subset_keys() -> tuple[str, ...]:
    """The keys of ``divplugin_select``: the rows to keep, how (every ``SelectSettings``
    setting), from which text, after which dedup, grouped by which field."""
    from divplugin.diversity.select import SelectSettings

    return ("budget", *SelectSettings.fields(), "fields", "dedup", "by")


def subset_request(value: Any) -> dict[str, Any] | None:
    """``divplugin_select`` checked and completed with its defaults (ValueError names the key)."""
    from divplugin.diversity.select import GROUPED, SelectSettings
    from divplugin.diversity.subset import DEDUP, DEFAULT_FIELDS
    from divplugin.errors import did_you_mean

    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(
            f"divplugin_select: must be a mapping such as {{budget: 50000, method: kcenter}}, got "
            f"{type(value).__name__}"
        )
    keys = subset_keys()
    for key in value:
        if key not in keys:
            raise ValueError(
                f"divplugin_select.{key}: unknown setting{did_you_mean(str(key), keys)} "
                f"Valid settings: {', '.join(keys)}"
            )
    budget = value.get("budget")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"divplugin_select.budget: the number of rows to train on (an integer >= 1), got {budget!r}")
    fields = value.get("fields", list(DEFAULT_FIELDS))
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ValueError(f"divplugin_select.fields: a list of field names, got {fields!r}")
    dedup = value.get("dedup", "none")
    if dedup not in DEDUP:
        raise ValueError(
            f"divplugin_select.dedup: unknown dedup {dedup!r}{did_you_mean(str(dedup), DEDUP)} "
            f"Choose from: {', '.join(DEDUP)}"
        )
    by = value.get("by")
    if by is not None and (not isinstance(by, str) or not by):
        raise ValueError(f"divplugin_select.by: a field name (e.g. metadata.rule_id), got {by!r}")
    try:
        settings = SelectSettings.of(value, "divplugin_select")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if settings.method == "balanced" and by is None:
        raise ValueError(
            "divplugin_select.by: the balanced method evens out the groups of a field: name it "
            "(e.g. by: metadata.rule_id)"
        )
    if by is not None and settings.method not in GROUPED:
        raise ValueError(
            f"divplugin_select.by: grouping by a field is for the {' and '.join(GROUPED)} methods; "
            f"{settings.method} chooses by text"
        )
    # `by` only when given, so that the settings hash of a request without it stays as it was
    return {"budget": budget, "fields": fields, "dedup": dedup, **settings.to_dict(), **({"by": by} if by else {})}


def resolve(data: dict[str, Any]) -> DataRequest | None:
    """The DataRequest the ``divplugin_*`` keys of a raw config ask for, or None when they ask
    for nothing; raises ValueError naming the key at fault. Resolved once per distinct set
    of keys: register, the schema's validator and load_datasets share the result."""
    keys = {k: v for k, v in data.items() if k.startswith(PREFIX) and v is not None}
    spec = keys.get("divplugin_mixture")
    if isinstance(spec, str) and os.path.isfile(spec):  # an edited spec file is a new request
        with open(spec, "rb") as f:
            keys["mixture file"] = hashlib.sha256(f.read()).hexdigest()
    return _resolve(json.dumps(keys, sort_keys=True, default=str))


@functools.lru_cache(maxsize=32)
def _resolve(keys_json: str) -> DataRequest | None:
    data = json.loads(keys_json)
    data.pop("mixture file", None)
    subset = subset_request(data.pop("divplugin_select", None))
    mixture = _mixture(data)
    if mixture is not None:
        return DataRequest("mixture", mixture.name, mixture, subset)
    generated = _generated(data)
    if generated is None:
        if subset is not None:
            raise ValueError(
                "divplugin_select: set without data to choose from (divplugin_preset, "
                "divplugin_generator or divplugin_mixture)"
            )
        return None
    name, config = generated
    return DataRequest("generated", name, config, subset)


MIXTURE_KEYS = ("divplugin_mixture", "divplugin_mixture_row", "divplugin_mixture_paths")


def _mixture(data: dict[str, Any]):
    """The Mixture the ``divplugin_mixture*`` keys ask for, or None."""
    from divplugin.mixtures import load_mixture

    spec = data.get("divplugin_mixture")
    if spec is None:
        extra = [k for k in MIXTURE_KEYS[1:] if data.get(k) is not None]
        if extra:
            raise ValueError(f"divplugin_mixture: {', '.join(extra)} set without divplugin_mixture")
        return None
    both = [k for k in ("divplugin_generator", "divplugin_preset", "divplugin_settings") if data.get(k) is not None]
    if both:
        raise ValueError(
            f"divplugin_mixture: give either a mixture or generated data, not both ({', '.join(both)} set)"
        )
    try:
        m = load_mixture(spec)
        try:
            m = m.with_paths(data.get("divplugin_mixture_paths") or {})
        except ConfigError as exc:
            raise ValueError(f"divplugin_mixture_paths: {exc}") from None
        m = m.select(data.get("divplugin_mixture_row"))
    except ConfigError as exc:
        if exc.field == "mixture":
            raise ValueError(f"divplugin_mixture_row: {exc.message}") from None
        raise ValueError(f"divplugin_mixture: {exc}") from None
    return m


def _generated(data: dict[str, Any]):
    """(generator name, validated config) the generator keys ask for, or None."""
    from divplugin.generators.settings import resolve_generator

    generator, preset = data.get("divplugin_generator"), data.get("divplugin_preset")
    settings = data.get("divplugin_settings")
    if generator is None and preset is None:
        used = sorted(
            k
            for k, v in data.items()
            if k.startswith(PREFIX)
            and v is not None
            and k not in ("divplugin_dataset_type", "divplugin_lm_eval", *MIXTURE_KEYS)
        )
        if used:
            raise ValueError(
                f"divplugin_generator: {', '.join(used)} set, but no divplugin_generator or divplugin_preset names the data"
            )
        return None
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(f"divplugin_settings: must be a mapping of generator settings, got {type(settings).__name__}")
    try:
        return resolve_generator(generator, preset, [("divplugin_settings", settings or {})])
    except ConfigError as exc:
        key = f"divplugin_{exc.field}" if exc.field in ("generator", "preset") else "divplugin_settings"
        raise ValueError(f"{key}: {exc}") from None
