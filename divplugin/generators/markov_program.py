"""``markov_program``: random multi-rule Markov algorithms (beyond the paper).

An instruction is an ordered program of ``rules_per_program`` rules over the alphabet
plus optional marker symbols (which appear in rules, never in inputs). An example runs
the program on a random input; only runs that halt or terminate within the ``steps``
range (and keep the string within ``max_string_len``) are kept. Programs are probed on
random inputs when drawn, and kept only if enough of their runs qualify.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from pydantic import Field

from divplugin.errors import ConfigError, GenerationError
from divplugin.generators.base import (
    Columns,
    Generator,
    GeneratorConfig,
    Plan,
    Span,
    SymbolStream,
    check_range,
    check_span,
    check_symbols,
    config_dataclass,
    span,
)
from divplugin.generators.registry import register_generator
from divplugin.markov.engine import (
    MarkovAlgorithm,
    Rule,
    Status,
    StringTooLong,
    format_rules,
)

MAX_TRIES = 400
PROBES = 16


@config_dataclass
class MarkovProgramConfig(GeneratorConfig):
    """Random Markov programs that halt within a step limit."""

    num_examples: int = Field(100_000, description="Training budget N (examples in the train split).")
    test_examples: int = Field(10_000, description="Examples of held-out programs in the test split.")
    seen_test_examples: int = Field(5_000, description="Fresh examples of training programs (test_seen split).")
    alphabet: str = Field("abc", description="Symbols of inputs and rules.")
    markers: str = Field(
        "", description="Extra marker symbols that rules may use but inputs never contain (e.g. 'xy')."
    )
    num_programs: int = Field(1000, description="Distinct training programs.")
    test_programs: int = Field(200, description="Distinct held-out programs, never seen in training.")
    rules_per_program: Span = Field((2, 4), description="Rules per program: exact or [min, max].")
    lhs_len: Span = Field((1, 3), description="Left-hand side length: exact or [min, max] (0 allows empty patterns).")
    rhs_len: Span = Field((0, 3), description="Right-hand side length: exact or [min, max].")
    terminating_share: float = Field(0.2, description="Probability that a rule is terminating ('->.').")
    input_len: Span = Field((4, 12), description="Input length: exact or [min, max].")
    steps: Span = Field(
        (1, 16), description="Kept runs take this many steps: exact or [min, max]; max is the step limit."
    )
    max_string_len: int = Field(64, description="Runs whose string grows longer than this are discarded.")
    min_probe_success: float = Field(
        0.25, description=f"A program is kept if at least this share of {PROBES} probe runs qualify."
    )

    def validate(self) -> None:
        super().validate()
        check_symbols("alphabet", self.alphabet, 1)
        check_symbols("markers", self.alphabet + self.markers, len(self.alphabet + self.markers))
        check_span("rules_per_program", self.rules_per_program, 1)
        check_span("lhs_len", self.lhs_len, 0)
        check_span("rhs_len", self.rhs_len, 0)
        check_span("input_len", self.input_len, 0)
        check_span("steps", self.steps, 0)
        check_range("terminating_share", self.terminating_share, 0.0, 1.0)
        check_range("min_probe_success", self.min_probe_success, 0.0, 1.0, lo_open=True)
        self.check_instruction_counts("num_programs", "test_programs")
        if self.max_string_len < span(self.input_len)[1]:
            raise ConfigError(f"must be >= the longest input ({span(self.input_len)[1]})", "max_string_len")


@register_generator
class MarkovProgram(Generator):
    """Full multi-rule Markov algorithms run to completion."""

    name = "markov_program"
    config_class = MarkovProgramConfig
    summary_fields = ("num_rules", "status", "steps")

    def instruction_counts(self) -> tuple[int, int]:
        return self.config.num_programs, self.config.test_programs

    def _run(self, algo: MarkovAlgorithm, s: str):
        lo, hi = span(self.config.steps)
        try:
            res = algo.run(s, max_steps=hi, max_len=self.config.max_string_len)
        except StringTooLong:
            return None
        if res.status is Status.STEP_LIMIT or not lo <= res.steps <= hi:
            return None
        return res

    def sample_instruction(self, rng: random.Random, split: str):
        cfg = self.config
        symbols = cfg.alphabet + cfg.markers
        rules, lhss = [], set()
        for _ in range(rng.randint(*span(cfg.rules_per_program))):
            lhs = "".join(rng.choices(symbols, k=rng.randint(*span(cfg.lhs_len))))
            if lhs in lhss:  # a repeated left-hand side could never fire
                return None
            lhss.add(lhs)
            rhs = "".join(rng.choices(symbols, k=rng.randint(*span(cfg.rhs_len))))
            rules.append(Rule(lhs, rhs, rng.random() < cfg.terminating_share))
        if all(r.lhs == r.rhs and not r.terminating for r in rules):
            return None
        algo = MarkovAlgorithm(rules)
        ok = 0
        for _ in range(PROBES):
            s = "".join(rng.choices(cfg.alphabet, k=rng.randint(*span(cfg.input_len))))
            ok += self._run(algo, s) is not None
        if ok < cfg.min_probe_success * PROBES:
            return None
        return format_rules(rules), "program", len(rules), algo

    def make_chunk(
        self, split: str, plan: Plan, start: int, stop: int, rng: random.Random, nrng: np.random.Generator
    ) -> Columns:
        cfg = self.config
        ilo, ihi = span(cfg.input_len)
        stream = SymbolStream(nrng, cfg.alphabet, (stop - start) * max(ihi, 1))
        cols: Columns = {"instruction": [], "input": [], "output": [], "metadata": {}}
        meta: dict[str, list[Any]] = {
            k: [] for k in ("source", "split", "index", "rule_id", "family", "num_rules", "noop", "status", "steps")
        }
        for j in range(start, stop):
            inst = plan.instructions[plan.task_idx[j]]
            for _ in range(MAX_TRIES):
                s = stream.take(ilo if ilo == ihi else rng.randint(ilo, ihi))
                res = self._run(inst.payload, s)
                if res is not None:
                    break
            else:
                raise GenerationError(
                    f"markov_program: program {inst.id} found no qualifying input in {MAX_TRIES} tries; "
                    "widen steps or input_len"
                )
            cols["instruction"].append(inst.text)
            cols["input"].append(s)
            cols["output"].append(res.output)
            for key, value in (
                ("source", self.name),
                ("split", split),
                ("index", j),
                ("rule_id", inst.id),
                ("family", inst.family),
                ("num_rules", inst.k),
                ("noop", res.steps == 0),
                ("status", res.status.value),
                ("steps", res.steps),
            ):
                meta[key].append(value)
        cols["metadata"] = meta
        return cols
