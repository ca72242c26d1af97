"""Turn a model's answer into the program to test, as EvalPlus 0.3.1 does.

EvalPlus's codegen keeps, of what the model wrote, what ``evalplus.sanitize.sanitize`` keeps:

1. the longest run of lines (counted by non-blank lines, at least two lines) that parses as
   Python; prose, fences and cut-off tails fall away;
2. of its top-level statements: every import, and the classes, functions that return
   something, and single-name assignments that the entry point reaches by name;
3. if nothing is left, the run of step 1 as it is.

This module does the same, with the same parser (tree-sitter's Python grammar, as EvalPlus),
so that a verdict never differs because a program was cut differently; a test checks it
against EvalPlus on a corpus of real and hard answers. It is faster on long answers: step 1
skips runs that cannot beat the best one found, which changes no result.

The answer is what the model generated after the prompt: in instruct mode the program is
cut from the answer alone, in completion mode from the prompt followed by the answer
(EvalPlus's ``prompt + impl``). Tabs in the answer become four spaces first, as EvalPlus's
model providers do.
"""

from __future__ import annotations

import ast
from collections import deque
from functools import lru_cache

from divplugin.codeeval.problems import Problem
from divplugin.errors import DivpluginError

MODES = ("completion", "instruct")

_IMPORTS = ("import_statement", "import_from_statement")


class SanitizerUnavailable(DivpluginError, ImportError):
    """tree-sitter (the [eval] extra) is not installed."""


@lru_cache(maxsize=1)
def _parser():
    try:
        import tree_sitter_python
        from tree_sitter import Language, Parser
    except ImportError:
        raise SanitizerUnavailable(
            "cutting a program out of a model's answer needs tree-sitter and tree-sitter-python "
            "(EvalPlus's parser): pip install 'divplugin[eval]'"
        ) from None
    return Parser(Language(tree_sitter_python.language()))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, MemoryError, ValueError, RecursionError):
        return False


def longest_valid_block(text: str) -> str:
    """The run of at least two lines of `text` with the most non-blank lines that parses as
    Python (the first such run on ties); the first line when there is none."""
    lines = text.split("\n")
    n = len(lines)
    # filled[k]: non-blank lines among lines[:k]
    filled = [0] * (n + 1)
    for k, line in enumerate(lines):
        filled[k + 1] = filled[k] + bool(line.strip())
    best, best_pair = 0, (0, 0)
    for i in range(n):
        if filled[n] - filled[i] <= best:
            break  # no run from here on can have more non-blank lines
        # Runs from i grow in count with j: the largest valid count for this i is found
        # scanning down; the earliest j with that count is the one EvalPlus keeps.
        found = None
        for j in range(n - 1, i, -1):
            count = filled[j + 1] - filled[i]
            if count <= best or (found is not None and count < found[1]):
                break
            if _parses("\n".join(lines[i : j + 1])):
                found = (j, count)
        if found is not None:
            best, best_pair = found[1], (i, found[0])
    i, j = best_pair
    return "\n".join(lines[i : j + 1])


def _name(node) -> str | None:
    """The first identifier among a node's children (EvalPlus's definition name)."""
    for child in node.children:
        if child.type == "identifier":
            return child.text.decode("utf8")
    return None


def _walk(node):
    """The nodes of `node`'s subtree as EvalPlus's cursor walk visits them (its bookkeeping
    of depth included, so that it ends where EvalPlus's ends)."""
    cursor = node.walk()
    depth, descended = 0, False
    while True:
        if not descended:
            yield cursor.node
            if not cursor.goto_first_child():
                depth += 1
                descended = True
        elif cursor.goto_next_sibling():
            descended = False
        elif not cursor.goto_parent() or depth == 0:
            return
        else:
            depth -= 1


def _returns(node) -> bool:
    return any(n.type == "return_statement" for n in _walk(node))


def _identifiers(node, into: set) -> set:
    for child in node.children:
        if child.type == "identifier":
            into.add(child.text.decode("utf8"))
        else:
            _identifiers(child, into)
    return into


def _reachable(entry_point: str, definitions: list) -> set:
    uses = {name: _identifiers(node, set()) for name, node in definitions}
    seen, queue = {entry_point}, deque([entry_point])
    while queue:
        for name in uses.get(queue.popleft(), ()):
            if name not in seen:
                seen.add(name)
                queue.append(name)
    return seen


def _definitions_or_empty(code: str, entry_point: str | None) -> str:
    code = longest_valid_block(code)
    data = code.encode("utf8")
    root = _parser().parse(data).root_node
    imports, definitions, names = [], [], set()
    for child in root.children:
        kind = child.type
        if kind in _IMPORTS:
            imports.append(child)
            continue
        if kind == "class_definition":
            node = child
        elif kind == "function_definition":
            node = child if _returns(child) else None
        elif kind == "expression_statement" and child.children[0].type == "assignment":
            node = child.children[0]
        else:
            node = None
        if node is None:
            continue
        name = _name(node)
        if name not in names:
            definitions.append((name, node))
            names.add(name)
    keep = _reachable(entry_point, definitions) if entry_point else None
    parts = [data[n.start_byte : n.end_byte] for n in imports]
    parts += [data[n.start_byte : n.end_byte] for name, n in definitions if keep is None or name in keep]
    return b"".join(p + b"\n" for p in parts)[:-1].decode("utf8")


def sanitize(code: str, entry_point: str | None = None) -> str:
    """The program EvalPlus 0.3.1's ``sanitize(code, entrypoint)`` keeps of `code`."""
    kept = _definitions_or_empty(code, entry_point).strip()
    return kept or longest_valid_block(code)


def extract_code(answer: str, problem: Problem, mode: str = "completion") -> str:
    """The program to test for a model's `answer` to `problem`, generated in `mode`:
    ``completion`` (the answer continues the problem's prompt) or ``instruct`` (the answer is
    the assistant's reply after the instruct prompt's opening fence)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    from divplugin.codeeval.prompts import task_prompt

    answer = answer.replace("\t", "    ")
    if mode == "completion":
        answer = task_prompt(problem) + answer
    return sanitize(answer, problem.entry_point)
