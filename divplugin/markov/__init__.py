"""Markov algorithms and the paper's single-rule rewrite task."""

from divplugin.markov.engine import (
    MarkovAlgorithm,
    Rule,
    RuleSyntaxError,
    RunResult,
    Status,
    StringTooLong,
    apply_once,
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
    "apply_once",
    "count_occurrences",
    "format_rule",
    "format_rules",
    "parse_rule",
    "parse_rules",
]
