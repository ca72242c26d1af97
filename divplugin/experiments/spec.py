"""Experiment specs: a base axolotl config, a sweep over its keys, evaluation and a plot.

A spec is YAML (a built-in name, see ``spec_names()``, or a path). Sweep keys are dotted
paths into the training config (``divplugin_settings.num_rules``); every combination of
their values is one point. ``seeds:`` replicates every point once per seed (the seed sets the
generated data, the model's initialisation and the training data order); ``extra_points:``
adds sweep assignments run with the first seed only. ``quick:`` holds overrides for a
few-minute run of the whole flow.
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from divplugin.core.yamlconf import builtin_names, load_builtin_or_file, validate_mapping
from divplugin.errors import ConfigError


def _plottable(value: Any) -> bool:
    """Whether a sweep value can stand on the x axis as it is (a finite number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TinyModel(BaseModel):
    """A base model built locally with ``divplugin model tiny`` before the first point."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["llama", "gpt2"] = "llama"
    layers: int = Field(3, ge=1)
    hidden: int = Field(128, ge=1)
    heads: int = Field(4, ge=1)
    max_len: int = Field(256, ge=1)
    seed: int = 0


LAUNCHERS = ("axolotl", "accelerate")


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tasks: list[str] = Field(
        min_length=1, description="lm-eval tasks (divplugin_markov_unseen, divplugin_humaneval, ...)."
    )
    limit: int | None = Field(None, ge=1, description="Documents per task (None: all).")
    batch_size: int | str = Field(64, description="lm-eval --batch_size: a number, or auto / auto:N.")
    device: str | None = Field(
        None, description="lm-eval --device (cpu, cuda); default: lm-eval's (not passed to vLLM)."
    )
    model: Literal["hf", "vllm"] = Field("hf", description="lm-eval back-end: hf (transformers) or vllm.")
    model_args: dict[str, Any] = Field(
        default_factory=dict,
        description="More --model_args: tensor_parallel_size, data_parallel_size, "
        "gpu_memory_utilization, max_model_len (vllm); parallelize, dtype (hf); ...",
    )
    launcher: list[str] = Field(
        default_factory=list,
        description="A command the evaluation runs under, e.g. [accelerate, launch, --num_processes, "
        "'8'] for lm-eval's data-parallel hf run (one model copy per process).",
    )
    heldout: bool = Field(True, description="Pass the point's held-out folder as --metadata data (markov tasks).")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="More lm-eval --metadata values, e.g. generator settings for test data made in the task.",
    )
    args: list[str] = Field(default_factory=list, description="More lm-eval flags, as on its command line.")


class PlotSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: str = Field(description="The sweep key on the x axis.")
    xscale: Literal["linear", "log"] = "linear"
    xlabel: str | None = None
    ylabel: str = "score"
    metrics: list[str] = Field(
        min_length=1, description="task/metric pairs to draw, e.g. divplugin_markov_unseen/exact_match."
    )
    x_values: dict[str, float] = Field(
        default_factory=dict,
        description="Numbers to draw non-numeric sweep values at (e.g. mixture row -> share of general data).",
    )
    reference: dict[str, list[tuple[float, float]]] = Field(
        default_factory=dict, description="Published figures drawn beside ours: label -> [(x, y), ...]."
    )
    means: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Metrics derived in the report: name (task/metric) -> the metrics whose "
        "mean per run it is, e.g. a specialist's in-domain score over its tasks; plotted, tabled and checked like any other.",
    )
    bands: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Published ranges of x drawn as shaded spans, for claims the paper states "
        "without numbers per point: label -> (from, to), e.g. where it puts a threshold.",
    )

    @field_validator("means")
    @classmethod
    def _means_are_named_and_made_of_metrics(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, parts in v.items():
            if "/" not in name:
                raise ValueError(f"means: name {name!r} must read task/metric, like the metrics it averages")
            if len(parts) < 2 or len(set(parts)) != len(parts) or name in parts:
                raise ValueError(f"means: {name!r} needs two or more distinct metrics other than itself, got {parts}")
        return v

    @field_validator("bands")
    @classmethod
    def _bands_are_ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for label, (lo, hi) in v.items():
            if not lo < hi:
                raise ValueError(f"band {label!r}: 'from' must be below 'to', got ({lo:g}, {hi:g})")
        return v


DEFAULT_SEED_KEYS = ["seed", "divplugin_settings.seed"]
PLAN_KEYS = ("params", "tokens_per_example", "examples", "mfu")
EXPECT_KEYS = ("metric", "first_at_most", "last_at_least", "monotone", "threshold", "seen_metric", "seen_at_least")


class Resources(BaseModel):
    """What one point asks a cluster for (``--executor slurm`` or ``ray``); flags override it."""

    model_config = ConfigDict(extra="forbid")
    gpus: int = Field(0, ge=0, description="GPUs per point.")
    cpus: int = Field(1, ge=1, description="CPU cores per point (also its OMP_NUM_THREADS).")
    mem_gb: float = Field(8.0, gt=0, description="Memory per point, GB.")
    time_min: int = Field(120, ge=1, description="Wall-time limit per point, minutes (Slurm requeues past it).")
    partition: str | None = Field(None, description="Slurm partition (default: the cluster's).")
    account: str | None = Field(None, description="Slurm account (default: the user's).")


class Point(BaseModel):
    """One run of a sweep: the sweep values, and the replicate seed (None without ``seeds:``)."""

    model_config = ConfigDict(frozen=True)
    values: dict[str, Any]
    seed: int | None = None


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    base: str | None = Field(None, description="The spec this one started from (resolved when loaded).")
    summary: str = Field("", max_length=72, description="One line for `divplugin experiment list`.")
    description: str = ""
    hardware: Literal["cpu", "gpu"] = "cpu"
    parallel: int = Field(
        1, ge=1, description="Points run at once unless --parallel says otherwise (CPU specs: 2, a core each)."
    )
    resources: Resources = Field(
        default_factory=Resources, description="Per-point resources on a cluster (--executor slurm or ray)."
    )
    base_model: TinyModel | None = Field(None, description="Build this tiny model as the base_model of every point.")
    pretrained: str | None = Field(
        None,
        description="A packaged pretrained model as the base_model of every point (smollm2-135m-instruct, as "
        "'divplugin model pretrained' makes it), converted once into divplugin's model cache before the first point.",
    )
    train: dict[str, Any] = Field(description="The axolotl config every point starts from.")
    sweep: dict[str, list[Any]] = Field(min_length=1, description="Dotted train-config key -> values.")
    seeds: list[int] | None = Field(
        None,
        min_length=1,
        description="Replicates: every point runs once per seed; the seed is written to each of seed_keys "
        "and to the base model's initialisation.",
    )
    seed_keys: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SEED_KEYS),
        description="Dotted train-config keys a replicate's seed is written to (axolotl's `seed` sets the data order).",
    )
    extra_points: list[dict[str, Any]] = Field(
        default_factory=list,
        description="More sweep assignments ({key: value} for every sweep key), run with the first seed only.",
    )
    eval: EvalSpec
    plot: PlotSpec
    quick: dict[str, Any] = Field(default_factory=dict, description="Overrides (train/sweep/eval keys) for --quick.")
    expect: dict[str, Any] = Field(
        default_factory=dict, description="What the result should show (reported, not enforced)."
    )
    plan: dict[str, Any] = Field(
        default_factory=dict,
        description="Cost-estimate inputs the spec cannot show: params (of a "
        "hub base model), tokens_per_example (of hub data), examples, mfu (see `divplugin experiment plan`).",
    )

    @field_validator("sweep")
    @classmethod
    def _values(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"sweep.{key}: give a non-empty list of values")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"sweep.{key}: repeated values {values}")
        return sweep

    @field_validator("eval")
    @classmethod
    def _batch_size(cls, ev: EvalSpec) -> EvalSpec:
        b = ev.batch_size
        if (
            isinstance(b, int)
            and b < 1
            or isinstance(b, str)
            and not (b == "auto" or b.startswith("auto:") and b[5:].isdigit())
        ):
            raise ValueError(f"eval.batch_size: a number >= 1, auto or auto:N, got {b!r}")
        return ev

    @field_validator("train")
    @classmethod
    def _launcher(cls, train: dict[str, Any]) -> dict[str, Any]:
        launcher = train.get("launcher", "axolotl")
        if not (
            launcher in LAUNCHERS
            or isinstance(launcher, list)
            and launcher
            and all(isinstance(a, str) for a in launcher)
        ):
            raise ValueError(
                f"train.launcher: {', '.join(LAUNCHERS)}, or a command as a list of strings, got {launcher!r}"
            )
        args = train.get("launcher_args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int)) for a in args):
            raise ValueError(f"train.launcher_args: a list of arguments, got {args!r}")
        if args and launcher != "accelerate":
            raise ValueError("train.launcher_args: only for launcher: accelerate (a custom launcher is a full command)")
        return train

    @field_validator("plan")
    @classmethod
    def _plan_keys(cls, plan: dict[str, Any]) -> dict[str, Any]:
        for key, value in plan.items():
            if key not in PLAN_KEYS:
                raise ValueError(f"plan: unknown key {key!r}; use {', '.join(PLAN_KEYS)}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"plan.{key}: a positive number, got {value!r}")
        return plan

    @field_validator("expect")
    @classmethod
    def _expect_keys(cls, expect: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(expect) - set(EXPECT_KEYS))
        if unknown:
            raise ValueError(f"expect: unknown keys {unknown}; use {', '.join(EXPECT_KEYS)}")
        if expect and "metric" not in expect:
            raise ValueError("expect: name the metric the expectations are about (expect.metric)")
        if ("seen_metric" in expect) != ("seen_at_least" in expect):
            raise ValueError("expect: give seen_metric and seen_at_least together")
        return expect

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds: repeated values {seeds}")
        return seeds

    @model_validator(mode="after")
    def _plot_axis(self) -> Spec:
        if self.plot.x not in self.sweep:
            raise ValueError(f"plot.x: {self.plot.x!r} is not a sweep key ({', '.join(self.sweep)})")
        missing = [v for v in self.sweep[self.plot.x] if not _plottable(v) and str(v) not in self.plot.x_values]
        if missing:
            raise ValueError(f"plot.x_values: no number for {missing}")
        for m in self.plot.metrics:
            task, sep, _ = m.partition("/")
            if not sep or not task:
                raise ValueError(f"plot.metrics: {m!r} is not task/metric")
        if self.pretrained is not None:
            from divplugin.models.pretrained import PACKAGED

            if self.pretrained not in PACKAGED:
                raise ValueError(f"pretrained: unknown model {self.pretrained!r}; packaged: {', '.join(PACKAGED)}")
            if self.base_model is not None:
                raise ValueError("pretrained and base_model: give one base model, not both")
        for key in ("output_dir", "base_model") if self.base_model or self.pretrained else ("output_dir",):
            if key in self.train:
                raise ValueError(f"train.{key}: set by the experiment driver; remove it from the spec")
        grid = [repr(sorted(v.items())) for v in self.grid()]
        for i, extra in enumerate(self.extra_points):
            if set(extra) != set(self.sweep):
                raise ValueError(
                    f"extra_points[{i}]: give a value for each sweep key ({', '.join(self.sweep)}), got {sorted(extra)}"
                )
            if repr(sorted(extra.items())) in grid:
                raise ValueError(f"extra_points[{i}]: {extra} is already a point of the sweep")
            grid.append(repr(sorted(extra.items())))
            for key, value in extra.items():
                if key == self.plot.x and not _plottable(value) and str(value) not in self.plot.x_values:
                    raise ValueError(f"plot.x_values: no number for {value!r} (extra_points[{i}])")
        overlap = set(self.seed_keys) & set(self.sweep)
        if self.seeds and overlap:
            raise ValueError(
                f"seed_keys: {sorted(overlap)} are also swept; replicate with seeds: or sweep them, not both"
            )
        return self

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of sweep values, as {dotted key: value}, in sweep order."""
        keys = list(self.sweep)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.sweep[k] for k in keys))]

    def points(self) -> list[Point]:
        """Every run: each grid combination once per seed (seed-major within a combination),
        then each extra point with the first seed."""
        seeds: list[int | None] = list(self.seeds) if self.seeds else [None]
        runs = [Point(values=v, seed=s) for v in self.grid() for s in seeds]
        runs += [Point(values={k: extra[k] for k in self.sweep}, seed=seeds[0]) for extra in self.extra_points]
        return runs

    def with_sets(self, sets: dict[str, Any]) -> tuple[Spec, dict[str, Any]]:
        """(spec, axolotl overrides) for ``--set KEY=VALUE`` pairs: ``eval.KEY`` ones change the
        spec's evaluation, the others are axolotl config overrides for every point."""
        evals = {k.removeprefix("eval."): v for k, v in sets.items() if k.startswith("eval.")}
        overrides = {k: v for k, v in sets.items() if not k.startswith("eval.")}
        if not evals:
            return self, overrides
        data = self.model_dump()
        data["eval"].update(evals)
        return validate_spec(data, f"{self.name} (--set eval.*)"), overrides

    def quick_variant(self) -> Spec:
        data = self.model_dump()
        for section, value in self.quick.items():
            if section not in ("train", "sweep", "eval", "base_model", "seeds", "extra_points"):
                raise ConfigError(
                    f"unknown section {section!r}; use train, sweep, eval, base_model, seeds or extra_points", "quick"
                )
            if isinstance(value, dict) and isinstance(data.get(section), dict) and section in MERGED:
                data[section] = _deep_merge(data[section], value)  # as axolotl's `base:` merges
            else:
                data[section] = value
        data["quick"] = {}
        data["expect"] = {}  # a few minutes of training is not meant to show the effect
        data["name"] = f"{self.name}-quick"
        return validate_spec(data, f"{self.name} (quick)")


def set_dotted(cfg: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``cfg`` with ``a.b.c`` set to ``value`` (intermediate mappings created)."""
    out = copy.deepcopy(cfg)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return out


def validate_spec(data: Any, where: str) -> Spec:
    return validate_mapping(Spec, data, where)


def spec_names() -> list[str]:
    return builtin_names(__package__, "specs")


MERGED = ("train", "eval", "base_model")


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_base(data: Any, where: str, seen: tuple[str, ...] = ()) -> Any:
    """``data`` with its ``base:`` spec filled in: ``train``, ``eval`` and ``base_model``
    are merged key by key over the base's; every other key given replaces the base's."""
    if not isinstance(data, dict) or "base" not in data:
        return data
    name = data["base"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"base: give the name or path of a spec, got {name!r}", where)
    if name in seen:
        raise ConfigError(f"base: {' -> '.join((*seen, name))} is a cycle", where)
    if not Path(name).suffix and Path(where).suffix:  # a file's base may be a file beside it
        beside = Path(where).parent / f"{name}.yaml"
        name = str(beside) if beside.is_file() else name
    base, base_where, _ = load_builtin_or_file(name, __package__, "specs", "experiment")
    base = resolve_base(base, base_where, (*seen, data["base"]))
    if not isinstance(base, dict):
        raise ConfigError(f"base: {base_where} does not hold a spec mapping", where)
    out = {k: v for k, v in base.items() if k != "summary"}  # a summary describes its own spec only
    out["base"] = data["base"]
    for key, value in data.items():
        if key == "base":
            continue
        out[key] = (
            _deep_merge(out[key], value)
            if key in MERGED and isinstance(out.get(key), dict) and isinstance(value, dict)
            else value
        )
    return out


def load_spec(name_or_path: str | Path) -> Spec:
    """A built-in spec by name, or a spec YAML file (``base:`` another spec to start from);
    errors name the spec and the key."""
    data, where, _ = load_builtin_or_file(name_or_path, __package__, "specs", "experiment")
    return validate_spec(resolve_base(data, where), where)
