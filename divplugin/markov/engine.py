"""Markov algorithms: ordered string-rewrite rules, their text syntax and an interpreter.

Semantics (Markov 1954; the paper's App. A): at each step the *first* rule, in list
order, whose left-hand side occurs in the current string rewrites its *leftmost*
occurrence; then the scan restarts. The run ends when no rule applies (``halted``),
when a terminating rule fires (``terminated``) or after ``max_steps`` steps
(``step_limit``). An empty left-hand side matches at position 0 of any string.

Text syntax, one rule per line (blank lines and lines starting with ``#`` are skipped)::

    lhs -> rhs      # ordinary rule
    lhs ->. rhs     # terminating rule
    -> rhs          # empty left-hand side
    lhs ->          # empty right-hand side (deletion)

``syntax="rosetta"`` reads the classic Rosetta Code rule files instead, where a
terminating rule is written ``lhs -> .rhs``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

ARROW = "->"


class RuleSyntaxError(ValueError):
    """A rule text that cannot be parsed; names the line and what is wrong."""


class Status(str, Enum):
    HALTED = "halted"
    TERMINATED = "terminated"
    STEP_LIMIT = "step_limit"


@dataclass(frozen=True)
class Rule:
    """One rewrite rule ``lhs -> rhs`` (``terminating`` rules stop the algorithm)."""

    lhs: str
    rhs: str
    terminating: bool = False

    def __post_init__(self) -> None:
        for side, text in (("lhs", self.lhs), ("rhs", self.rhs)):
            if not isinstance(text, str):
                raise TypeError(f"Rule.{side} must be a str, got {type(text).__name__}")
            if "\n" in text or "\r" in text:
                raise RuleSyntaxError(f"Rule.{side} {text!r} contains a line break")

    def __str__(self) -> str:
        return format_rule(self)


def format_rule(rule: Rule) -> str:
    """The rule in divplugin's text syntax; ``parse_rules`` reads it back unchanged.

    Raises :class:`RuleSyntaxError` for a rule the syntax cannot represent (a side that
    contains the arrow or has leading or trailing white space)."""
    for side, text in (("lhs", rule.lhs), ("rhs", rule.rhs)):
        if ARROW in text:
            raise RuleSyntaxError(f"Rule.{side} {text!r} contains the arrow {ARROW!r}")
        if text != text.strip():
            raise RuleSyntaxError(f"Rule.{side} {text!r} has leading or trailing white space")
    if rule.lhs.startswith("#"):
        raise RuleSyntaxError(f"Rule.lhs {rule.lhs!r} starts with '#', which the text syntax reads as a comment")
    arrow = ARROW + ("." if rule.terminating else "")
    left = f"{rule.lhs} " if rule.lhs else ""
    right = f" {rule.rhs}" if rule.rhs else ""
    return f"{left}{arrow}{right}"


def format_rules(rules: Iterable[Rule], sep: str = "\n") -> str:
    """Several rules joined by ``sep`` (a newline by default)."""
    return sep.join(format_rule(r) for r in rules)


_ROSETTA_RE = re.compile(r"^(?P<lhs>.*?)\s+->(?:\s+(?P<rhs>.*?))?\s*$")


def parse_rule(line: str, syntax: str = "divplugin", lineno: int | None = None) -> Rule:
    """Parse one rule line; raises :class:`RuleSyntaxError` naming the problem."""
    where = f"line {lineno}: " if lineno is not None else ""
    if syntax == "rosetta":
        m = _ROSETTA_RE.match(line.rstrip("\r\n"))
        if m is None:
            raise RuleSyntaxError(f"{where}cannot parse {line!r}: Rosetta rules are 'pattern -> [.]replacement'")
        rhs = m.group("rhs") or ""
        stop = rhs.startswith(".")
        return Rule(m.group("lhs"), rhs[1:] if stop else rhs, stop)
    if syntax != "divplugin":
        raise ValueError(f"unknown rule syntax {syntax!r}; expected 'divplugin' or 'rosetta'")
    text = line.strip()
    if text.count(ARROW) != 1:
        found = "none" if ARROW not in text else "several"
        raise RuleSyntaxError(f"{where}expected exactly one {ARROW!r} in {line!r}, found {found}")
    left, right = text.split(ARROW)
    if left and not left[-1].isspace():
        raise RuleSyntaxError(f"{where}cannot parse {line!r}: put white space before {ARROW!r}")
    stop = right.startswith(".")
    if stop:
        right = right[1:]
    if right and not right[0].isspace():
        arrow = ARROW + ("." if stop else "")
        raise RuleSyntaxError(f"{where}cannot parse {line!r}: put white space after {arrow!r}")
    return Rule(left.strip(), right.strip(), stop)


def parse_rules(text: str, syntax: str = "divplugin") -> list[Rule]:
    """Parse a rule set, one rule per line; ``#`` lines and blank lines are skipped."""
    rules = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rules.append(parse_rule(line, syntax=syntax, lineno=lineno))
    return rules


@dataclass
class RunResult:
    """How a run ended: the final string, its status and the number of steps taken."""

    output: str
    status: Status
    steps: int
    trace: list[tuple[int, str]] = field(default_factory=list)
    """(rule index, string after the step) for each step, when ``trace=True``."""


class StringTooLong(RuntimeError):
    """The string outgrew ``max_len`` during a run."""


@dataclass
class MarkovAlgorithm:
    """An ordered rule list with an interpreter."""

    rules: Sequence[Rule]

    @classmethod
    def from_text(cls, text: str, syntax: str = "divplugin") -> MarkovAlgorithm:
        return cls(parse_rules(text, syntax=syntax))

    def step(self, s: str) -> tuple[int, str] | None:
        """Apply one step; returns (rule index, new string) or None when no rule applies."""
        for i, rule in enumerate(self.rules):
            pos = s.find(rule.lhs)
            if pos != -1:
                return i, s[:pos] + rule.rhs + s[pos + len(rule.lhs) :]
        return None

    def run(self, s: str, max_steps: int = 10_000, trace: bool = False, max_len: int | None = None) -> RunResult:
        """Run until halted, terminated or ``max_steps`` steps have been taken."""
        if max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {max_steps}")
        steps: list[tuple[int, str]] = []
        for n in range(max_steps):
            nxt = self.step(s)
            if nxt is None:
                return RunResult(s, Status.HALTED, n, steps)
            i, s = nxt
            if max_len is not None and len(s) > max_len:
                raise StringTooLong(f"string grew to {len(s)} > max_len={max_len} at step {n + 1}")
            if trace:
                steps.append((i, s))
            if self.rules[i].terminating:
                return RunResult(s, Status.TERMINATED, n + 1, steps)
        # Out of steps: halted only if no rule would apply any more.
        if self.step(s) is None:
            return RunResult(s, Status.HALTED, max_steps, steps)
        return RunResult(s, Status.STEP_LIMIT, max_steps, steps)

    __call__ = run


def count_occurrences(s: str, sub: str) -> int:
    """Occurrences of ``sub`` in ``s``, overlapping ones included."""
    if not sub:
        return len(s) + 1
    n, i = 0, s.find(sub)
    while i != -1:
        n += 1
        i = s.find(sub, i + 1)
    return n
