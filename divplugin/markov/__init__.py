"""Markov algorithms: rules, their text syntax and an interpreter (the generators build the
paper's tasks from them: :mod:`divplugin.generators`)."""

from divplugin.markov.engine import (
    MarkovAlgorithm,
    Rule,
    RuleSyntaxError,
    RunResult,
    Status,
    StringTooLong,
    count_occurrences,
    format_rule,
    format_rules,
    parse_rule,
    parse_rules,
)

__all__ = [
    "MarkovAlgorithm",
    "Rule",
    "RuleSyntaxError",
    "RunResult",
    "Status",
    "StringTooLong",
    "count_occurrences",
    "format_rule",
    "format_rules",
    "parse_rule",
    "parse_rules",
]
