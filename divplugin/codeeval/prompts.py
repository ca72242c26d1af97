"""What a model is shown for a code problem, and where its answer stops: EvalPlus 0.3.1's rules.

EvalPlus picks the mode from the model's tokenizer: with a chat template, **instruct**; without
one, **completion** (direct completion; its ``--force-base-prompt`` forces it).

- completion: the problem's prompt (HumanEval's signature and docstring, MBPP's docstring
  with its first assertion), stripped, plus a newline; the model continues it.
- instruct: a user turn (an instruction prefix and the prompt in a fence) and the start of
  an assistant turn (a response prefix and an opening ```python fence), rendered by the
  model's own chat template; the model writes the code and closes the fence.

Stop strings: EvalPlus's common list, plus per-benchmark ones in completion mode, plus the
closing fence in instruct mode.
"""

from __future__ import annotations

import re

from divplugin.codeeval.problems import Problem
from divplugin.errors import DivpluginError

INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)

# evalplus/provider/utility.py (0.3.1): EOS, extra_eos_for_direct_completion; hf.py adds the fence
COMMON_STOPS = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(")
COMPLETION_STOPS = {
    "humaneval": ("\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "),
    "mbpp": ('\n"""', "\nassert"),
}
INSTRUCT_STOPS = ("\n```\n",)

_SPLIT = "<<divplugin-assistant-turn-continues-here>>"


class ChatTemplateError(DivpluginError, ValueError):
    """Instruct mode was asked for a tokenizer that cannot render it."""


def stop_strings(family: str, mode: str) -> list[str]:
    """The stop strings of `family` (humaneval or mbpp) in `mode`, in EvalPlus's order."""
    if mode == "instruct":
        return [*COMMON_STOPS, *INSTRUCT_STOPS]
    if mode == "completion":
        return [*COMMON_STOPS, *COMPLETION_STOPS[family]]
    raise ValueError(f"unknown mode {mode!r}; expected completion or instruct")


def _first_assertion(problem: Problem) -> str:
    return next((ln.strip() for ln in problem.assertion.splitlines() if ln.strip().startswith("assert")), "")


def task_prompt(problem: Problem) -> str:
    """The problem as EvalPlus's codegen presents it (``prompt.strip() + "\\n"``). MBPP+
    releases before v0.2.0 store a bare docstring; it gets v0.2.0's form, the docstring
    with the task's first assertion."""
    text = problem.prompt
    if problem.family == "mbpp" and not re.search(r"^\s*assert\b", text, re.M):
        body = text.strip().strip("'\"").strip()
        first = _first_assertion(problem)
        text = f'"""\n{body}\n{first}\n"""\n' if first else f'"""\n{body}\n"""\n'
    return text.strip() + "\n"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def instruct_prompt(prompt: str, tokenizer) -> str:
    """`prompt` (a task prompt) as EvalPlus's instruct mode shows it to a model with a chat
    template: rendered by `tokenizer`'s template, up to and including the assistant's
    opening ```python fence."""
    if not has_chat_template(tokenizer):
        raise ChatTemplateError(
            "instruct mode renders the prompt with the model's chat template, and this tokenizer has none "
            "(EvalPlus would score it in completion mode). Use the completion tasks (divplugin_humaneval, ...), "
            "or give a tokenizer that has a template (--model_args ...,tokenizer=DIR)"
        )
    user = f"{INSTRUCTION_PREFIX}\n```\n{prompt.strip()}\n```\n"
    assistant = f"{RESPONSE_PREFIX}\n```python\n{_SPLIT}\n```\n"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], tokenize=False
    )
    if _SPLIT not in rendered:
        raise ChatTemplateError(
            "the tokenizer's chat template does not render the assistant's message verbatim, "
            "so the response prefix cannot be placed (EvalPlus needs the same)"
        )
    return rendered.split(_SPLIT)[0]


def model_prompt(problem: Problem, mode: str, tokenizer=None) -> str:
    """The full text a model sees for `problem` in `mode`."""
    if mode == "completion":
        return task_prompt(problem)
    if mode == "instruct":
        return instruct_prompt(task_prompt(problem), tokenizer)
    raise ValueError(f"unknown mode {mode!r}; expected completion or instruct")
