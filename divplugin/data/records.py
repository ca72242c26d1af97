"""Record formats and their fast JSON Lines encoding.

Two formats, both with a ``metadata`` object on every row:

- ``instruction``: ``{"instruction", "input", "output", "metadata"}`` (axolotl's
  alpaca-style fields);
- ``messages``: ``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}],
  "metadata"}`` with the user turn rendered from ``prompt_template``.

The encoder works on columns and produces exactly what
``json.dumps(row, separators=(",", ":"))`` would, several times faster.
"""

from __future__ import annotations

import gzip
import json
import os
from json.encoder import encode_basestring_ascii as _enc
from pathlib import Path
from typing import Any

from divplugin.errors import DataFileError

RECORD_FORMATS = ("instruction", "messages")


def read_jsonl(path: str | os.PathLike, error: type[Exception] = DataFileError) -> list[Any]:
    """The rows of a JSON Lines file (``.gz`` too); raises `error` naming the file and line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise error(f"{path}:{n}: not JSON ({exc.msg})") from None
    except (OSError, EOFError) as exc:
        raise error(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return rows


def render_prompt(template: str, instruction: str, input: str) -> str:
    return template.format(instruction=instruction, input=input)


DEFAULT_PROMPT_TEMPLATE = "{instruction}\n{input}"  # a generator's prompt_template unless set


def user_turn(instruction: str, input: str) -> str:
    """The user message of an instruction/input pair (mixtures' chat rows and chat templates):
    the instruction, then a blank line and the input when there is one."""
    return f"{instruction}\n\n{input}" if input else instruction


def completion_prompt(template: str, instruction: str, input: str) -> str:
    """The prompt a completion model sees (training and evaluation alike): the rendered
    user turn and a newline; the answer follows and ends with a newline."""
    return render_prompt(template, instruction, input) + "\n"


def _plain(text: str) -> bool:
    """Whether JSON encodes ``text`` as itself in quotes (printable ASCII, no quote or backslash)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _encode_column(values: list[Any]) -> tuple[list[str] | Any, bool]:
    """(encoded values, quoted): strings that need no JSON escaping are passed through
    as they are, to be quoted by the row template."""
    first = values[0]
    if isinstance(first, bool):
        return ["true" if v else "false" for v in values], False
    if isinstance(first, int):
        return list(map(str, values)), False
    if isinstance(first, str):
        if _plain("".join(values)):
            return values, True
        return list(map(_enc, values)), False
    raise TypeError(f"cannot encode metadata values of type {type(first).__name__}")


def _slot(quoted: bool) -> str:
    return '"{}"' if quoted else "{}"


def encode_jsonl(cols: dict[str, Any], record_format: str, prompt_template: str) -> bytes:
    """The chunk ``cols`` as JSON Lines (UTF-8 bytes, one row per line)."""
    if record_format not in RECORD_FORMATS:
        raise ValueError(f"unknown record format {record_format!r}; expected one of {RECORD_FORMATS}")
    if not cols["input"]:
        return b""
    meta = cols["metadata"]
    if record_format == "instruction":
        head = [("instruction", cols["instruction"]), ("input", cols["input"]), ("output", cols["output"])]
    else:
        prompts = [render_prompt(prompt_template, i, x) for i, x in zip(cols["instruction"], cols["input"])]
        head = [("prompt", prompts), ("output", cols["output"])]
    encoded = [_encode_column(values) for _, values in head]
    meta_parts = []
    for key, values in meta.items():
        if values.count(values[0]) == len(values):
            # a constant column is written into the row template once
            (const,), quoted = _encode_column(values[:1])
            const = f'"{const}"' if quoted else const
            meta_parts.append(f'"{key}":' + const.replace("{", "{{").replace("}", "}}"))
        else:
            enc_values, quoted = _encode_column(values)
            encoded.append((enc_values, quoted))
            meta_parts.append(f'"{key}":{_slot(quoted)}')
    slots = [_slot(q) for _, q in encoded]
    meta_t = ",".join(meta_parts)
    if record_format == "instruction":
        body = '"instruction":{},"input":{},"output":{}'.format(*slots[:3])
    else:
        body = '"messages":[{{{{"role":"user","content":{}}}}},{{{{"role":"assistant","content":{}}}}}]'.format(
            *slots[:2]
        )
    row_t = "{{" + body + ',"metadata":{{' + meta_t + "}}}}\n"
    return "".join(map(row_t.format, *(values for values, _ in encoded))).encode("ascii")
