"""Experiment specs: a base axolotl config, a sweep over its keys, evaluation and a plot.

A spec is YAML (a built-in name, see ``spec_names()``, or a path). Sweep keys are dotted
paths into the training config (``divplugin_settings.num_rules``); every combination of
their values is one point. ``quick:`` holds overrides for a few-minute run of the whole flow.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from divplugin.config import builtin_names, load_builtin_or_file, validate_mapping
from divplugin.errors import ConfigError


class TinyModel(BaseModel):
    """A base model built locally with ``divplugin model tiny`` before the first point."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["llama", "gpt2"] = "llama"
    layers: int = Field(3, ge=1)
    hidden: int = Field(128, ge=1)
    heads: int = Field(4, ge=1)
    max_len: int = Field(256, ge=1)
    seed: int = 0


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tasks: list[str] = Field(min_length=1, description="lm-eval tasks (divplugin_markov_unseen, divplugin_humaneval, ...).")
    limit: Optional[int] = Field(None, ge=1, description="Documents per task (None: all).")
    batch_size: int = Field(64, ge=1)
    device: Optional[str] = Field(None, description="lm-eval --device (cpu, cuda); default: lm-eval's.")
    heldout: bool = Field(True, description="Pass the point's held-out folder as --metadata data (markov tasks).")
    args: list[str] = Field(default_factory=list, description="More lm-eval flags, as on its command line.")


class PlotSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: str = Field(description="The sweep key on the x axis.")
    xscale: Literal["linear", "log"] = "linear"
    xlabel: Optional[str] = None
    ylabel: str = "score"
    metrics: list[str] = Field(min_length=1, description="task/metric pairs to draw, e.g. divplugin_markov_unseen/exact_match.")
    x_values: dict[str, float] = Field(
        default_factory=dict, description="Numbers to draw non-numeric sweep values at (e.g. mixture row -> share of general data).")
    reference: dict[str, list[tuple[float, float]]] = Field(
        default_factory=dict, description="Published figures drawn beside ours: label -> [(x, y), ...].")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    hardware: Literal["cpu", "gpu"] = "cpu"
    base_model: Optional[TinyModel] = Field(None, description="Build this tiny model as the base_model of every point.")
    train: dict[str, Any] = Field(description="The axolotl config every point starts from.")
    sweep: dict[str, list[Any]] = Field(min_length=1, description="Dotted train-config key -> values.")
    eval: EvalSpec
    plot: PlotSpec
    quick: dict[str, Any] = Field(default_factory=dict, description="Overrides (train/sweep/eval keys) for --quick.")
    expect: dict[str, Any] = Field(default_factory=dict, description="What the result should show (reported, not enforced).")

    @field_validator("sweep")
    @classmethod
    def _values(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"sweep.{key}: give a non-empty list of values")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"sweep.{key}: repeated values {values}")
        return sweep

    @model_validator(mode="after")
    def _plot_axis(self) -> "Spec":
        if self.plot.x not in self.sweep:
            raise ValueError(f"plot.x: {self.plot.x!r} is not a sweep key ({', '.join(self.sweep)})")
        missing = [v for v in self.sweep[self.plot.x] if self.plot.x_values and str(v) not in self.plot.x_values]
        if missing:
            raise ValueError(f"plot.x_values: no number for {missing}")
        for m in self.plot.metrics:
            task, sep, _ = m.partition("/")
            if not sep or not task:
                raise ValueError(f"plot.metrics: {m!r} is not task/metric")
        for key in ("output_dir", "base_model") if self.base_model else ("output_dir",):
            if key in self.train:
                raise ValueError(f"train.{key}: set by the experiment driver; remove it from the spec")
        return self

    def points(self) -> list[dict[str, Any]]:
        """Every combination of sweep values, as {dotted key: value}, in sweep order."""
        keys = list(self.sweep)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.sweep[k] for k in keys))]

    def quick_variant(self) -> "Spec":
        data = self.model_dump()
        for section, value in self.quick.items():
            if section not in ("train", "sweep", "eval", "base_model"):
                raise ConfigError(f"unknown section {section!r}; use train, sweep, eval or base_model", "quick")
            if isinstance(value, dict) and isinstance(data.get(section), dict) and section != "sweep":
                data[section] = {**data[section], **value}
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


def load_spec(name_or_path: str | Path) -> Spec:
    """A built-in spec by name, or a spec YAML file; errors name the spec and the key."""
    data, where, _ = load_builtin_or_file(name_or_path, __package__, "specs", "experiment")
    return validate_spec(data, where)
