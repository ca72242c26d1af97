"""Turn a model's answer into a program: markdown fences, chat preambles, prompt stitching."""

from __future__ import annotations

import re

from divplugin.codeeval.problems import Problem

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_STOPS = ("\nif __name__", "\nprint(", "\nassert ", '\n"""\n\n', "\n# Test", "\n# Example")


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def _imports(prompt: str) -> str:
    return "".join(line + "\n" for line in prompt.splitlines() if re.match(r"\s*(import|from)\s+\w", line))


def extract_code(answer: str, problem: Problem) -> str:
    """The program to test for `answer`: the fenced block that defines the entry point (else
    the first python block), or the answer as a continuation of the prompt."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(answer)]
    if blocks:
        pythonish = [b for lang, b in blocks if lang in ("", "python", "py", "python3")] or [b for _, b in blocks]
        code = next((b for b in pythonish if _defines(b, problem.entry_point)), pythonish[0])
    else:
        code = answer
    if _defines(code, problem.entry_point):
        return _imports(problem.prompt) + code
    if problem.family == "humaneval":
        for stop in _STOPS:
            code = code.split(stop, 1)[0]
        return problem.prompt + code
    return code
