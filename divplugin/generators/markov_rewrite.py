"""``markov_rewrite``: the paper's single-rule string-rewrite task with every diversity knob.

An instruction is a rule ``x -> y``; an example applies it once to an input z: the
leftmost occurrence of x is replaced by y (Task 1, "basic replacement"), or, when x does
not occur, z is returned unchanged (Task 2's "no-op", share ``noop_fraction``).
Has-op inputs contain exactly ``occurrences`` copies of x (unless
``exact_occurrences`` is off): the filler never creates extra ones by accident. With
``cipher``, the answer is then encrypted (the paper's "replace, then encrypt" twist, which
makes the task unfamiliar to a pretrained model).
"""

from __future__ import annotations

import math
import random
import string

import numpy as np
from pydantic import Field

from divplugin.core.yamlconf import ADDED_LATER
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
from divplugin.generators.families import FAMILIES, distinct_strings, family_string
from divplugin.generators.registry import register_generator
from divplugin.markov.engine import ARROW, count_occurrences

MAX_TRIES = 1000


@config_dataclass
class MarkovRewriteConfig(GeneratorConfig):
    """The paper's task (defaults: its main setting, I = 1,000 rules, N = 10^6 examples)."""

    alphabet: str = Field(string.ascii_lowercase, description="Symbols of rules and inputs (paper: lowercase letters).")
    input_len: Span = Field(
        50, description="Length of the input z: exact, or [min, max] (paper: 50; 500 for families)."
    )
    pattern_len: Span = Field(20, description="Length of x: exact, or [min, max] (paper: 20; 60 for families).")
    replacement_len: Span | None = Field(None, description="Length of y: exact or [min, max]; default: as pattern_len.")
    num_rules: int = Field(1000, description="Distinct training rules I (examples per rule S = num_examples / I).")
    test_rules: int = Field(1000, description="Distinct held-out rules in the test split, never seen in training.")
    noop_fraction: float = Field(
        0.0, description="Share of examples whose input lacks x (paper's Task 2: 0.1 ... 0.5)."
    )
    occurrences: int | list[int] = Field(
        1,
        description="Copies of x in has-op inputs: a count, or a list to draw from per example (paper: 1, 10, 20, [1,5,10,15,20]).",
    )
    test_occurrences: int | list[int] | None = Field(
        None,
        description="Copies of x in has-op inputs of held-out rules (the test split): a count or a list; default: as occurrences.",
    )
    exact_occurrences: bool = Field(True, description="Reject inputs in which the filler creates extra copies of x.")
    families: list[str] = Field(["unconstrained"], description=f"Rule families of training rules, from {FAMILIES}.")
    k_range: Span = Field(
        (3, 4), description="Strength k of constrained training families: exact or [min, max] (paper: 3-4 ... 3-60)."
    )
    test_families: list[str] | None = Field(None, description="Families of test rules; default: as families.")
    test_k_range: Span = Field((1, 2), description="Strength k of constrained test families (paper: k < 3).")
    constrain_replacement: bool = Field(
        True, description="Draw y from the rule's family too (else y is unconstrained)."
    )
    cipher: str | None = Field(
        None,
        description="The 'replace, then encrypt' twist of the paper's pretrained-model experiment: the answer "
        "is the rewritten string passed through this cipher, in every split (no-op answers too): 'shift:K' (each "
        "symbol becomes the one K places later in the alphabet, cyclically) or the alphabet in another order (a "
        "substitution: the i-th symbol becomes the i-th symbol given). Default: none.",
        json_schema_extra=dict(ADDED_LATER),
    )

    @property
    def occurrence_choices(self) -> list[int]:
        return [self.occurrences] if isinstance(self.occurrences, int) else list(self.occurrences)

    def occurrences_for(self, split: str) -> list[int]:
        """The occurrence counts drawn from in ``split`` (test_occurrences for the test split)."""
        if split == "test" and self.test_occurrences is not None:
            t = self.test_occurrences
            return [t] if isinstance(t, int) else list(t)
        return self.occurrence_choices

    @property
    def replacement_span(self) -> tuple[int, int]:
        return span(self.replacement_len if self.replacement_len is not None else self.pattern_len)

    def validate(self) -> None:
        super().validate()
        check_symbols("alphabet", self.alphabet, 2)
        ilo, ihi = check_span("input_len", self.input_len, 1)
        plo, phi = check_span("pattern_len", self.pattern_len, 1)
        check_span("replacement_len", self.replacement_span, 0)
        self.check_instruction_counts("num_rules", "test_rules")
        check_range("noop_fraction", self.noop_fraction, 0.0, 1.0)
        for name, occ in (("occurrences", self.occurrence_choices), ("test_occurrences", self.occurrences_for("test"))):
            if not occ or min(occ) < 1:
                raise ConfigError(f"must be counts >= 1, got {getattr(self, name)!r}", name)
            if max(occ) * phi > ilo:
                raise ConfigError(
                    f"{max(occ)} copies of a pattern of length up to {phi} do not fit in inputs of length {ilo}; "
                    f"shorten pattern_len, lengthen input_len or lower {name}",
                    name if max(occ) > 1 else "pattern_len",
                )
        for name in ("families", "test_families"):
            fams = getattr(self, name)
            if fams is None:
                continue
            if not fams or any(f not in FAMILIES for f in fams):
                raise ConfigError(f"must be a non-empty list from {FAMILIES}, got {fams!r}", name)
        check_span("k_range", self.k_range, 1)
        check_span("test_k_range", self.test_k_range, 1)
        if self.cipher is not None:
            self.cipher_table()
        self._check_capacity()

    def cipher_table(self) -> dict[int, int] | None:
        """The ``str.translate`` table of ``cipher`` (None without one); a ConfigError names a bad one."""
        c, a = self.cipher, self.alphabet
        if c is None:
            return None
        if not isinstance(c, str):
            raise ConfigError(f"must be 'shift:K' or a reordering of the alphabet, got {c!r}", "cipher")
        if c.startswith("shift:"):
            try:
                k = int(c[6:])
            except ValueError:
                raise ConfigError(f"'shift:K' needs a whole number K, got {c!r}", "cipher") from None
            if k % len(a) == 0:
                raise ConfigError(
                    f"a shift of {k} leaves every symbol of the {len(a)}-symbol alphabet as it is", "cipher"
                )
            target = a[k % len(a) :] + a[: k % len(a)]
        else:
            target = c
            if sorted(target) != sorted(a):
                raise ConfigError(
                    f"a substitution lists every symbol of the alphabet {a!r} once, in another order; "
                    f"got {c!r} (or use 'shift:K')",
                    "cipher",
                )
            if target == a:
                raise ConfigError(f"{c!r} is the alphabet in its own order: it encrypts nothing", "cipher")
        return str.maketrans(a, target)

    def _check_capacity(self) -> None:
        """Fail early when the rule space cannot hold the distinct rules asked for."""
        a = len(self.alphabet)
        for name, fams, ks, side_share in (
            ("num_rules", self.families, self.k_range, 1 - self.holdout_share),
            ("test_rules", self.test_families or self.families, self.test_k_range, self.holdout_share),
        ):
            want = getattr(self, name)
            if not want:
                continue
            klo, khi = span(ks)

            # families (and strengths) can produce the same strings: count the largest, not the sum
            def strings(lengths: tuple[int, int], families: list[str], klo: int = klo, khi: int = khi) -> int:
                return sum(
                    max(distinct_strings(a, n, f, k) for f in families for k in range(klo, khi + 1))
                    for n in range(lengths[0], lengths[1] + 1)
                )

            lhs = strings(span(self.pattern_len), fams)
            rhs = strings(self.replacement_span, fams if self.constrain_replacement else ["unconstrained"])
            capacity = lhs * max(rhs - 1, 0) * side_share
            if want > capacity / 2:
                raise ConfigError(
                    f"{want} distinct rules asked for, but alphabet ({a} symbols), pattern_len={self.pattern_len!r}, "
                    f"replacement_len={self.replacement_span!r} and families {fams} allow only about "
                    f"{math.floor(capacity)} on this side of the held-out partition (need at least twice as many)",
                    name,
                )


@register_generator
class MarkovRewrite(Generator):
    """Single-rule leftmost rewrite, the task of arXiv 2405.19787."""

    name = "markov_rewrite"
    config_class = MarkovRewriteConfig
    summary_fields = ("family", "k", "noop", "occurrences")

    def instruction_counts(self) -> tuple[int, int]:
        return self.config.num_rules, self.config.test_rules

    @property
    def noop_fraction(self) -> float:
        return self.config.noop_fraction

    def sample_instruction(self, rng: random.Random, split: str):
        cfg = self.config
        test = split == "test"
        families = (cfg.test_families or cfg.families) if test else cfg.families
        family = families[rng.randrange(len(families))]
        k = 1 if family == "unconstrained" else rng.randint(*span(cfg.test_k_range if test else cfg.k_range))
        x = family_string(rng, cfg.alphabet, rng.randint(*span(cfg.pattern_len)), family, k)
        y_family = family if cfg.constrain_replacement else "unconstrained"
        y = family_string(rng, cfg.alphabet, rng.randint(*cfg.replacement_span), y_family, k)
        if x == y:
            return None
        return f"{x} {ARROW} {y}" if y else f"{x} {ARROW}", family, k, (x, y, _self_overlaps(x))

    def make_chunk(
        self, split: str, plan: Plan, start: int, stop: int, rng: random.Random, nrng: np.random.Generator
    ) -> Columns:
        cfg = self.config
        ilo, ihi = span(cfg.input_len)
        occ_choices = cfg.occurrences_for(split)
        n_choices = len(occ_choices)
        exact = cfg.exact_occurrences
        table = cfg.cipher_table()
        stream = SymbolStream(nrng, cfg.alphabet, (stop - start) * ihi)
        insts = plan.instructions
        task_idx = plan.task_idx[start:stop].tolist()
        noops = plan.noop[start:stop].tolist()
        # first-try insertion points, drawn vectorised as fractions of the filler length
        first_pos = nrng.random(stop - start).tolist()
        inputs, outputs, m_occ = [], [], []
        randrange = rng.randrange
        for t, noop, u in zip(task_idx, noops, first_pos):
            x, y, overlaps = insts[t].payload
            occ = 0 if noop else (occ_choices[0] if n_choices == 1 else occ_choices[randrange(n_choices)])
            length = ilo if ilo == ihi else randrange(ilo, ihi + 1)
            z = None
            if occ == 1 and exact and not overlaps:  # the common case, inlined
                filler_len = length - len(x)
                filler = stream.take(filler_len)
                p = int(u * (filler_len + 1))
                z = filler[:p] + x + filler[p:]
                if z.count(x) != 1:
                    z = None
            if z is None:
                z = _make_input(stream, rng, x, length, occ, exact, overlaps)
            if z is None:
                raise GenerationError(
                    f"markov_rewrite: could not build an input of length {length} with exactly {occ} "
                    f"occurrence(s) of {x!r} in {MAX_TRIES} tries; use a larger alphabet, a longer pattern "
                    "or exact_occurrences: false"
                )
            inputs.append(z)
            outputs.append(z.replace(x, y, 1) if table is None else z.replace(x, y, 1).translate(table))
            m_occ.append(occ if exact or noop else count_occurrences(z, x))
        n = stop - start
        chosen = [insts[t] for t in task_idx]
        return {
            "instruction": [i.text for i in chosen],
            "input": inputs,
            "output": outputs,
            "metadata": {
                "source": [self.name] * n,
                "split": [split] * n,
                "index": list(range(start, stop)),
                "rule_id": [i.id for i in chosen],
                "family": [i.family for i in chosen],
                "k": [i.k for i in chosen],
                "noop": noops,
                "occurrences": m_occ,
                "steps": [0 if v else 1 for v in noops],
            },
        }


def _self_overlaps(x: str) -> bool:
    """Whether two copies of ``x`` can overlap (x has a proper border)."""
    return any(x[:i] == x[-i:] for i in range(1, len(x)))


FAST_TRIES = 8


def _make_input(
    stream: SymbolStream, rng: random.Random, x: str, length: int, occ: int, exact: bool, overlaps: bool
) -> str | None:
    """An input of ``length`` symbols holding exactly ``occ`` copies of ``x`` (None if none found).

    The first tries use uniform random filler; after that the filler is drawn so that it
    cannot contain ``x`` at all (then only copies that overlap a planted one, possible
    only if ``x`` overlaps itself, can still break the count)."""
    filler_len = length - occ * len(x)
    # str.count counts non-overlapping copies; it is exact when copies of x cannot overlap
    counter = count_occurrences if overlaps else str.count
    randrange = rng.randrange
    for attempt in range(MAX_TRIES):
        if attempt < FAST_TRIES:
            filler = stream.take(filler_len)
            if (exact or occ == 0) and x in filler:
                continue
        else:
            filler = _filler_avoiding(rng, stream.alphabet, x, filler_len)
        if occ == 0:
            return filler
        if occ == 1:
            p = randrange(filler_len + 1)
            z = filler[:p] + x + filler[p:]
        else:
            cuts = sorted(randrange(filler_len + 1) for _ in range(occ))
            z = x.join(filler[a:b] for a, b in zip([0, *cuts], [*cuts, filler_len]))
        if not exact or counter(z, x) == occ:
            return z
    return None


def _filler_avoiding(rng: random.Random, alphabet: str, x: str, n: int) -> str:
    """``n`` random symbols that never contain ``x``: each symbol is drawn uniformly among
    those that do not complete a match (a KMP automaton tracks the longest partial match)."""
    m = len(x)
    fail = [0] * m
    k = 0
    for i in range(1, m):
        while k and x[i] != x[k]:
            k = fail[k - 1]
        if x[i] == x[k]:
            k += 1
        fail[i] = k
    out, state = [], 0
    for _ in range(n):
        while True:
            c = alphabet[rng.randrange(len(alphabet))]
            nxt = state
            while nxt and c != x[nxt]:
                nxt = fail[nxt - 1]
            nxt = nxt + 1 if c == x[nxt] else 0
            if nxt < m:
                break
        out.append(c)
        state = nxt
    return "".join(out)
