"""Mixture specs: sources, a budget (exact counts, ratios of a total, or token budgets), hygiene
(dedup, decontamination) and the report. YAML or Python; a ``mixtures:`` table holds a grid of
named rows (the paper's tables) over the same sources."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from divplugin.core.yamlconf import builtin_names, load_builtin_or_file, validate_mapping
from divplugin.errors import ConfigError, did_you_mean
from divplugin.mixtures.adapters import ADAPTERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HubSource(_Strict):
    id: str = Field(description="Hugging Face hub dataset id, e.g. tatsu-lab/alpaca.")
    subset: str | None = None
    split: str = "train"
    revision: str | None = None


class GeneratorSource(_Strict):
    generator: str | None = None
    preset: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


def _source_select_fields() -> dict[str, Any]:
    """``SelectSettings``'s fields but the seed (the mixture's); ``clusters``, added after mixture
    keys were first made, is left out of the dump at its default, so that those keys stand."""
    from divplugin.diversity.select import SelectSettings

    out: dict[str, Any] = {}
    for name, info in SelectSettings.fields().items():
        if name == "seed":
            continue
        info = copy.copy(info)
        if name == "method":
            info.description = (
                "kcenter, facility-location or random (a source's rows carry no field to balance "
                "by: the ratios balance the sources)."
            )
        if name == "clusters":
            info.exclude_if = lambda v, d=info.default: v == d
        out[name] = (info.annotation, info)
    return out


class _SourceSelectChecks(_Strict):
    @model_validator(mode="after")
    def _known(self) -> Any:
        from divplugin.diversity.select import SelectSettings

        try:
            SelectSettings(method=self.method, embedder=self.embedder).validate()  # type: ignore[attr-defined]
        except ConfigError as exc:
            raise ValueError(f"select.{exc.field}: {exc.message}") from None
        if self.method == "balanced":  # type: ignore[attr-defined]
            raise ValueError(
                "select.method: balanced evens out the groups of a field, and a source's rows carry "
                "none; the ratios already balance the sources. Use random, kcenter or "
                "facility-location"
            )
        return self


SourceSelect = create_model(
    "SourceSelect",
    __base__=_SourceSelectChecks,
    __doc__="Choose a source's rows for diversity (``divplugin select``) instead of at random.",
    **_source_select_fields(),
)


class Source(_Strict):
    name: str
    hub: HubSource | None = None
    path: str | None = Field(None, description="Local JSONL / JSON / Parquet / Arrow file, or a folder of them.")
    generator: GeneratorSource | None = None
    adapter: str | dict[str, str] = Field(
        "alpaca", description="Built-in adapter name or {instruction, input, output} field mapping."
    )
    count: int | None = Field(None, ge=0)
    ratio: float | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    upsample: bool = Field(False, description="Allow drawing more examples than the source holds (repeats).")
    limit: int | None = Field(None, ge=1, description="Read at most this many rows of the source.")
    # left out of the dump when unset, so that mixtures without it keep their data keys
    select: SourceSelect | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Choose the rows for diversity from all of the source's "
        "clean rows, instead of the first ones of a seeded walk.",
    )

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        given = [k for k in ("hub", "path", "generator") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"source {self.name!r}: give exactly one of hub, path, generator (got {given or 'none'})")
        if isinstance(self.adapter, str) and self.adapter not in ADAPTERS:
            raise ValueError(
                f"source {self.name!r}: unknown adapter {self.adapter!r}{did_you_mean(self.adapter, ADAPTERS)} Built-in: {', '.join(ADAPTERS)}"
            )
        if self.select is not None and self.tokens is not None:
            raise ValueError(
                f"source {self.name!r}: select chooses a number of rows; it does not work with a token budget"
            )
        if isinstance(self.adapter, dict):
            bad = set(self.adapter) - {"instruction", "input", "output"}
            if bad or not {"instruction", "output"} <= set(self.adapter):
                raise ValueError(
                    f"source {self.name!r}: a field mapping needs instruction and output (and may have input); got {sorted(self.adapter)}"
                )
        return self


class Dedup(_Strict):
    exact: bool = Field(True, description="Drop rows whose normalised text repeats an earlier row.")
    near: bool = Field(
        True, description="Drop near-duplicates (MinHash LSH with rensa, verified by exact Jaccard similarity)."
    )
    threshold: float = Field(
        0.8, gt=0, le=1, description="Estimated Jaccard similarity above which rows are near-duplicates."
    )
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: int = Field(5, ge=1, description="Word n-gram size of the MinHash shingles.")


class Decontaminate(_Strict):
    benchmarks: list[str] = Field(default_factory=lambda: ["humaneval", "mbpp"])
    ngram: int = Field(
        13,
        ge=4,
        description="Word n-gram size; a row sharing one with a benchmark problem is dropped "
        "(lm-eval 13, datatrove 12, open-r1 8).",
    )
    min_words: int | None = Field(
        6,
        ge=1,
        description="A prompt or solution shorter than ngram words (but at least this "
        "many) is matched whole, word for word (bigcode's exact-substring check); null: off.",
    )
    data: str | None = Field(
        None, description="Local benchmark data (EvalPlus release files) for MBPP and the plus sets."
    )


class ReportSpec(_Strict):
    embeddings: bool = Field(True, description="Semantic diversity from sentence embeddings (needs the [embed] extra).")
    sample: int = Field(2000, ge=10, description="Rows embedded per mixture.")
    clusters: int = Field(16, ge=2)


class Mixture(_Strict):
    name: str
    seed: int = 0
    budget: Literal["counts", "ratios", "tokens"] = "counts"
    total: int | None = Field(None, ge=1, description="Total examples (ratios mode; a check in counts mode).")
    tokenizer: str | None = Field(
        None, description="Tokenizer (path or hub id) measuring token budgets and report tokens."
    )
    record_format: Literal["instruction", "messages"] = "instruction"
    sources: list[Source] = Field(min_length=1)
    dedup: Dedup | None = Field(default_factory=Dedup)
    decontaminate: Decontaminate | None = Field(default_factory=Decontaminate)
    report: ReportSpec = Field(default_factory=ReportSpec)
    mixtures: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Grid rows: name -> {source: amount}."
    )
    paper: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Published results of grid rows (for plots)."
    )

    @model_validator(mode="after")
    def _budget(self) -> Mixture:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: repeated names {names}")
        for row, amounts in self.mixtures.items():
            unknown = set(amounts) - set(names)
            if unknown:
                raise ValueError(f"mixtures.{row}: unknown source(s) {sorted(unknown)}; sources are {names}")
        if self.mixtures:
            return self
        check_budget(self)
        return self

    def with_paths(self, paths: dict[str, str]) -> Mixture:
        """This mixture with the named sources read from local paths instead (offline use of
        hub sources); an unknown source name is an error that lists the sources."""
        if not paths:
            return self
        if not isinstance(paths, dict):
            raise ConfigError(f"must map source names to paths, got {type(paths).__name__}", "paths")
        data = self.model_dump()
        names = [s["name"] for s in data["sources"]]
        for name, path in paths.items():
            if name not in names:
                raise ConfigError(f"{self.name} has no source {name!r}; sources are {names}", "paths")
            data["sources"][names.index(name)].update(hub=None, generator=None, path=str(path))
        return load_mixture_dict(data, self.name)

    def select(self, row: str | None) -> Mixture:
        """The mixture to build: grid row ``row`` of a grid (which needs one), or this one."""
        if self.mixtures:
            if not row:
                raise ConfigError(f"{self.name} is a grid; choose a row: {', '.join(self.mixtures)}", "mixture")
            return self.row(row)
        if row:
            raise ConfigError(f"{self.name} has no rows; drop the row ({row!r})", "mixture")
        return self

    def row(self, name: str) -> Mixture:
        """The mixture of grid row ``name`` (amounts set on the sources)."""
        if name not in self.mixtures:
            raise ConfigError(
                f"unknown mixture {name!r}{did_you_mean(name, self.mixtures)} Rows: {', '.join(self.mixtures)}",
                "mixture",
            )
        field = {"counts": "count", "ratios": "ratio", "tokens": "tokens"}[self.budget]
        amounts = self.mixtures[name]
        sources = []
        for s in self.sources:
            value = amounts.get(s.name, 0)
            sources.append(s.model_copy(update={field: int(value) if field != "ratio" else float(value)}))
        data = self.model_dump()
        data.update(name=f"{self.name}/{name}", mixtures={}, paper={}, sources=[s.model_dump() for s in sources])
        return load_mixture_dict(data, f"{self.name}/{name}")


def check_budget(m: Mixture) -> None:
    field = {"counts": "count", "ratios": "ratio", "tokens": "tokens"}[m.budget]
    missing = [s.name for s in m.sources if getattr(s, field) is None]
    if missing:
        raise ValueError(f"budget {m.budget}: set {field} on every source; missing on {missing}")
    if m.budget == "counts" and m.total is not None and sum(s.count or 0 for s in m.sources) != m.total:
        raise ValueError(f"counts sum to {sum(s.count or 0 for s in m.sources)}, not total={m.total}")
    if m.budget == "ratios":
        if m.total is None:
            raise ValueError("budget ratios: set total (the number of examples to split)")
        total = sum(s.ratio or 0.0 for s in m.sources)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"ratios sum to {total:g}, not 1")
    if m.budget == "tokens" and not m.tokenizer:
        raise ValueError("budget tokens: set tokenizer (a path or hub id) to measure tokens with")


def load_mixture_dict(data: Any, where: str) -> Mixture:
    return validate_mapping(Mixture, data, where)


def mixture_names() -> list[str]:
    return builtin_names(__package__, "presets")


def load_mixture(name_or_path: str | Path) -> Mixture:
    """A built-in preset by name, or a spec YAML file."""
    data, where, path = load_builtin_or_file(name_or_path, __package__, "presets", "mixture preset")
    if path is not None and isinstance(data, dict):
        _resolve_paths(data, path.resolve().parent)
    return load_mixture_dict(data, where)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative source and benchmark-data paths in a spec file are relative to that file."""
    for src in data.get("sources") or []:
        if (
            isinstance(src, dict)
            and isinstance(src.get("path"), str)
            and not Path(src["path"]).expanduser().is_absolute()
        ):
            src["path"] = str(base / src["path"])
    dec = data.get("decontaminate")
    if isinstance(dec, dict) and isinstance(dec.get("data"), str) and not Path(dec["data"]).is_absolute():
        dec["data"] = str(base / dec["data"])
