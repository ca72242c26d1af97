"""What every divplugin generator shares: config handling, held-out splits, exact budgets
and chunked, seed-derived generation.

A generator draws *instructions* (a rewrite rule, a Markov program), spreads an exact
example budget over them, and renders examples in fixed-size chunks. Each chunk has its
own random streams derived from ``(seed, split, chunk)``, so any number of workers
produces byte-identical data.

Splits:

- ``train``: ``num_examples`` examples over the training instructions;
- ``test``: ``test_examples`` examples over instructions never seen in training;
- ``test_seen``: ``seen_test_examples`` fresh examples of training instructions.

Training and test instructions are disjoint by construction: an instruction belongs to
the test side iff a salted hash of its canonical text falls below ``holdout_share``, so
even two runs with different seeds never train on each other's test instructions.
"""

from __future__ import annotations

import functools
import random
import string
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from divplugin.core.seeding import np_rng, py_rng, stable_hash
from divplugin.core.yamlconf import config_from_dict
from divplugin.data.records import DEFAULT_PROMPT_TEMPLATE
from divplugin.errors import ConfigError, GenerationError
from divplugin.generators.allocation import SCHEMES, example_counts, largest_remainder
from divplugin.markov.engine import ARROW

SPLITS = ("train", "test", "test_seen")
CHUNK_SIZE = 1024
"""Examples per chunk; part of the determinism contract (recorded in manifests)."""

Span = int | tuple[int, int]
"""A length or count: an exact value, or an inclusive ``[min, max]`` range."""

config_dataclass = functools.partial(pydantic_dataclass, config=ConfigDict(extra="forbid", validate_assignment=False))


def span(value: Span) -> tuple[int, int]:
    """Normalise an exact value or ``[min, max]`` to a ``(min, max)`` tuple."""
    if isinstance(value, (tuple, list)):
        lo, hi = value
        return int(lo), int(hi)
    return int(value), int(value)


def check_span(name: str, value: Span, minimum: int = 0) -> tuple[int, int]:
    lo, hi = span(value)
    if lo < minimum:
        raise ConfigError(f"must be >= {minimum}, got {value!r}", name)
    if hi < lo:
        raise ConfigError(f"range [{lo}, {hi}] has max < min", name)
    return lo, hi


def check_range(name: str, value: float, lo: float, hi: float, lo_open: bool = False) -> None:
    bad = value <= lo if lo_open else value < lo
    if bad or value > hi:
        left = "(" if lo_open else "["
        raise ConfigError(f"must be in {left}{lo}, {hi}], got {value!r}", name)


def check_symbols(name: str, symbols: str, minimum: int) -> None:
    """Symbols must be distinct, printable, not white space, and not form the rule arrow."""
    if len(symbols) < minimum or len(set(symbols)) != len(symbols):
        raise ConfigError(f"needs at least {minimum} distinct symbols, no repeats; got {symbols!r}", name)
    bad = [c for c in symbols if c.isspace() or not c.isprintable()]
    if bad or ARROW in symbols:
        raise ConfigError(f"must hold printable, non-space symbols; got {bad or symbols!r}", name)


@config_dataclass
class GeneratorConfig:
    """Settings common to every generator (budgets, allocation, held-out split, prompt)."""

    seed: int = Field(0, description="Base seed; the same config and seed give byte-identical data.")
    num_examples: int = Field(1_000_000, description="Training budget N (examples in the train split).")
    test_examples: int = Field(
        100_000, description="Examples of held-out (never trained) instructions in the test split."
    )
    seen_test_examples: int = Field(10_000, description="Fresh examples of training instructions (test_seen split).")
    allocation: Literal["uniform", "power", "zipf"] = Field(
        "uniform",
        description="How the training budget is spread over instructions: uniform (S = N / I), power(alpha) or zipf.",
    )
    alpha: float = Field(
        1.0, description="Shape of the power law, PMF alpha*x^(alpha-1); smaller is more peaked (paper: 2 ... 0.03)."
    )
    zipf_exponent: float = Field(1.0, description="Exponent s of the Zipf allocation (weight of rank r is r^-s).")
    min_examples_per_instruction: int = Field(
        1, description="Every training instruction gets at least this many examples."
    )
    holdout_share: float = Field(
        0.5, description="Share of the instruction space reserved for test instructions (by salted hash)."
    )
    holdout_salt: str = Field(
        "divplugin", description="Salt of the hash that partitions instructions into train and test."
    )
    prompt_template: str = Field(
        DEFAULT_PROMPT_TEMPLATE,
        description="The prompt: the user turn of the messages format, and the completion prompt of training and the lm-eval tasks; fields {instruction} and {input}.",
    )

    def validate(self) -> None:
        """Check every field and cross-field constraint; raises ConfigError naming the field."""
        for name in ("num_examples", "test_examples", "seen_test_examples", "min_examples_per_instruction"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", name)
        if self.allocation not in SCHEMES:
            raise ConfigError(f"must be one of {SCHEMES}, got {self.allocation!r}", "allocation")
        check_range("alpha", self.alpha, 0.0, float("inf"), lo_open=True)
        check_range("zipf_exponent", self.zipf_exponent, 0.0, float("inf"), lo_open=True)
        check_range("holdout_share", self.holdout_share, 0.0, 1.0, lo_open=True)
        if self.holdout_share >= 1.0:
            raise ConfigError(
                f"must be < 1 so that training instructions exist, got {self.holdout_share}", "holdout_share"
            )
        names = {f for _, f, _, _ in string.Formatter().parse(self.prompt_template) if f is not None}
        if not names <= {"instruction", "input"} or "input" not in names:
            raise ConfigError(
                f"may use only the fields {{instruction}} and {{input}} and must use {{input}}; got {sorted(names)}",
                "prompt_template",
            )

    def check_instruction_counts(self, train_field: str, test_field: str) -> None:
        """The instruction counts are non-negative and fit the budgets."""
        n_train, n_test = getattr(self, train_field), getattr(self, test_field)
        for name, n in ((train_field, n_train), (test_field, n_test)):
            if n < 0:
                raise ConfigError(f"must be >= 0, got {n}", name)
        if self.num_examples and n_train < 1:
            raise ConfigError("must be >= 1 when num_examples > 0", train_field)
        if self.test_examples and n_test < 1:
            raise ConfigError("must be >= 1 when test_examples > 0", test_field)
        if n_train * self.min_examples_per_instruction > self.num_examples:
            raise ConfigError(
                f"{train_field}={n_train} x min_examples_per_instruction={self.min_examples_per_instruction} "
                f"exceeds num_examples={self.num_examples}",
                train_field,
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values: the identity of the data (``config_hash``), without the
        settings added later that hold their defaults (``core.yamlconf.identity_dict``)."""
        from divplugin.core.yamlconf import identity_dict

        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return identity_dict(out, type(self).__pydantic_fields__)  # type: ignore[attr-defined]


def config_field_docs(cls: type) -> dict[str, tuple[Any, str]]:
    """{field: (default, description)} for a config class."""
    out = {}
    for name, info in cls.__pydantic_fields__.items():  # type: ignore[attr-defined]
        out[name] = (info.default, info.description or "")
    return out


@dataclass(frozen=True)
class Instruction:
    """One instruction (a rule or a program) with its identity and held-out bookkeeping."""

    id: str
    split: str
    family: str
    k: int
    text: str
    payload: Any

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "split": self.split, "family": self.family, "k": self.k, "text": self.text}


@dataclass
class Plan:
    """The example plan of one split: which instruction each example uses."""

    instructions: list[Instruction]
    counts: np.ndarray
    task_idx: np.ndarray
    noop: np.ndarray

    def __len__(self) -> int:
        return len(self.task_idx)


Columns = dict[str, Any]
"""A chunk of examples as columns: instruction, input, output and metadata (dict of lists)."""


class Generator(ABC):
    """Base class of registered generators (see :mod:`divplugin.generators`)."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    summary_fields: ClassVar[tuple[str, ...]] = ()
    """Metadata fields counted value by value in generation summaries."""

    def __init__(self, config: Any = None, **overrides: Any):
        if config is None:
            config = config_from_dict(self.config_class, overrides, self.name)
        elif overrides:
            config = config_from_dict(self.config_class, {**config.to_dict(), **overrides}, self.name)
        else:
            config.validate()
        self.config = config
        self._instructions: dict[str, list[Instruction]] = {}
        self._plans: dict[str, Plan] = {}

    # -- instructions ---------------------------------------------------------------
    @abstractmethod
    def instruction_counts(self) -> tuple[int, int]:
        """(number of training instructions, number of test instructions)."""

    @abstractmethod
    def sample_instruction(self, rng: random.Random, split: str) -> tuple[str, str, int, Any] | None:
        """Draw a candidate: (canonical text, family, k, payload), or None to redraw."""

    @abstractmethod
    def make_chunk(
        self, split: str, plan: Plan, start: int, stop: int, rng: random.Random, nrng: np.random.Generator
    ) -> Columns:
        """Render examples ``start:stop`` of ``plan``."""

    def holdout_side(self, text: str) -> str:
        h = stable_hash(text, self.config.holdout_salt)
        return "test" if h < self.config.holdout_share * 2.0**64 else "train"

    def instructions(self, split: str) -> list[Instruction]:
        """The distinct instructions of ``split`` (``test_seen`` shares ``train``'s)."""
        side = "train" if split == "test_seen" else split
        if side not in self._instructions:
            n_train, n_test = self.instruction_counts()
            want = n_train if side == "train" else n_test
            self._instructions[side] = self._draw_instructions(side, want)
        return self._instructions[side]

    def _draw_instructions(self, side: str, want: int) -> list[Instruction]:
        rng = py_rng(self.config.seed, "instructions", side)
        seen: set[str] = set()
        out: list[Instruction] = []
        stale = 0
        while len(out) < want:
            cand = self.sample_instruction(rng, side)
            if cand is None or cand[0] in seen:
                stale += 1
                if stale > 10_000 + 10 * want:
                    raise GenerationError(
                        f"{self.name}: found only {len(out)} of {want} distinct {side} instructions after "
                        f"{stale} fruitless draws; widen the alphabet or lengths, or ask for fewer"
                    )
                continue
            text, family, k, payload = cand
            if self.holdout_side(text) != side:
                continue
            seen.add(text)
            stale = 0
            iid = format(stable_hash(text), "016x")
            out.append(Instruction(iid, side, family, k, text, payload))
        return out

    # -- plans ------------------------------------------------------------------------
    def split_size(self, split: str) -> int:
        cfg = self.config
        return {"train": cfg.num_examples, "test": cfg.test_examples, "test_seen": cfg.seen_test_examples}[split]

    @property
    def noop_fraction(self) -> float:
        return 0.0

    def plan(self, split: str) -> Plan:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split not in self._plans:
            self._plans[split] = self._make_plan(split)
        return self._plans[split]

    def _make_plan(self, split: str) -> Plan:
        cfg = self.config
        rng = np_rng(cfg.seed, "plan", split)
        total = self.split_size(split)
        insts = self.instructions(split)
        if split == "train":
            counts = example_counts(
                total, len(insts), cfg.allocation, rng, cfg.alpha, cfg.zipf_exponent, cfg.min_examples_per_instruction
            )
        else:
            pool = np.arange(len(insts))
            if split == "test_seen":
                pool = pool[self.plan("train").counts > 0]
            if total and not len(pool):
                raise GenerationError(f"{self.name}: split {split!r} needs examples but has no instructions")
            counts = np.zeros(len(insts), dtype=np.int64)
            if len(pool):
                counts[pool] = largest_remainder(total, np.ones(len(pool)), rng)
        n_noop = int(np.floor(total * self.noop_fraction + 0.5))
        noop_counts = largest_remainder(n_noop, counts, rng) if n_noop else np.zeros_like(counts)
        task_idx = np.repeat(np.arange(len(insts), dtype=np.int64), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        noop = (np.arange(total) - starts) < np.repeat(noop_counts, counts)
        perm = rng.permutation(total)
        return Plan(insts, counts, task_idx[perm], noop[perm])

    # -- examples ---------------------------------------------------------------------
    def num_chunks(self, split: str) -> int:
        return -(-self.split_size(split) // CHUNK_SIZE)

    def chunk(self, split: str, index: int) -> Columns:
        """Chunk ``index`` of ``split`` as columns (deterministic, independent of other chunks)."""
        plan = self.plan(split)
        start = index * CHUNK_SIZE
        stop = min(start + CHUNK_SIZE, len(plan))
        if index < 0 or start >= len(plan):
            raise IndexError(f"chunk {index} out of range for split {split!r} ({self.num_chunks(split)} chunks)")
        seed = self.config.seed
        return self.make_chunk(
            split, plan, start, stop, py_rng(seed, "chunk", split, index), np_rng(seed, "chunk", split, index)
        )

    def iter_split(self, split: str = "train") -> Iterator[dict[str, Any]]:
        """Yield the examples of ``split`` as records."""
        for c in range(self.num_chunks(split)):
            yield from rows(self.chunk(split, c))

    __iter__ = iter_split

    def __len__(self) -> int:
        return self.split_size("train")

    def item(self, index: int, split: str = "train") -> dict[str, Any]:
        """Example ``index`` of ``split`` (regenerates its chunk)."""
        if not 0 <= index < self.split_size(split):
            raise IndexError(f"index {index} out of range for split {split!r} of size {self.split_size(split)}")
        cols = self.chunk(split, index // CHUNK_SIZE)
        return next(iter_rows_at(cols, index % CHUNK_SIZE))

    __getitem__ = item

    def to_dataset(self, split: str = "train"):
        """The split as a Hugging Face ``datasets.Dataset``."""
        import datasets

        return datasets.Dataset.from_list(list(self.iter_split(split)))

    def to_dataset_dict(self):
        import datasets

        return datasets.DatasetDict({s: self.to_dataset(s) for s in SPLITS if self.split_size(s)})

    # -- scoring ----------------------------------------------------------------------
    @staticmethod
    def score_answer(answer: str | None, entry: dict[str, Any]) -> float:
        """1.0 when the answer (:func:`answer_of` a generation) is the output exactly, else 0.0:
        the scoring of the lm-eval tasks and of the plugin's evaluation during training."""
        if answer is None:
            return 0.0
        return 1.0 if answer_of(answer) == entry["output"] else 0.0


def answer_of(generation: str) -> str:
    """A model's answer in a generation: its first line, without surrounding white space (the
    answer ends with a newline; what a model writes after it is not its answer)."""
    return generation.split("\n", 1)[0].strip()


def rows(cols: Columns) -> Iterator[dict[str, Any]]:
    return iter_rows_at(cols, 0)


def iter_rows_at(cols: Columns, offset: int) -> Iterator[dict[str, Any]]:
    meta = cols["metadata"]
    keys = list(meta)
    for i in range(offset, len(cols["input"])):
        yield {
            "instruction": cols["instruction"][i],
            "input": cols["input"][i],
            "output": cols["output"][i],
            "metadata": {k: meta[k][i] for k in keys},
        }


def random_string_pool(nrng: np.random.Generator, alphabet: str, n: int) -> str:
    """``n`` symbols drawn uniformly from ``alphabet`` (vectorised)."""
    idx = nrng.integers(0, len(alphabet), n)
    if alphabet.isascii():
        table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
        return table[idx].tobytes().decode("ascii")
    return "".join(np.array(list(alphabet))[idx].tolist())


class SymbolStream:
    """Consumes random symbols from vectorised pools, refilling deterministically."""

    def __init__(self, nrng: np.random.Generator, alphabet: str, block: int):
        self.nrng, self.alphabet, self.block = nrng, alphabet, max(block, 1024)
        self.buf, self.pos = random_string_pool(nrng, alphabet, self.block), 0

    def take(self, n: int) -> str:
        if self.pos + n > len(self.buf):
            self.buf = self.buf[self.pos :] + random_string_pool(self.nrng, self.alphabet, max(self.block, n))
            self.pos = 0
        s = self.buf[self.pos : self.pos + n]
        self.pos += n
        return s
