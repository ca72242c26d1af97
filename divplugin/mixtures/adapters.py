"""Format adapters: one function per known dataset layout, each row -> instruction/input/output.

Built-in adapters cover the paper's sets; a mapping ``{instruction: FIELD, input: FIELD,
output: FIELD}`` handles any other layout, ``messages`` handles chat rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
Record = dict[str, str]


def _need(row: Row, *fields: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise KeyError(f"missing field(s) {missing}; the row has {sorted(row)}")


def alpaca(row: Row) -> Record:
    _need(row, "instruction", "output")
    return {"instruction": row["instruction"], "input": row.get("input") or "", "output": row["output"]}


def oss_instruct(row: Row) -> Record:
    """Magicoder OSS-Instruct (ise-uiuc/Magicoder-OSS-Instruct-75K): problem / solution."""
    _need(row, "problem", "solution")
    return {"instruction": row["problem"], "input": "", "output": row["solution"]}


def cot_collection(row: Row) -> Record:
    """CoT-Collection (kaist-ai/CoT-Collection): source / rationale / target."""
    _need(row, "source", "rationale", "target")
    return {
        "instruction": row["source"],
        "input": "",
        "output": f"{row['rationale'].strip()} So the answer is {row['target'].strip()}",
    }


def ultrainteract(row: Row) -> Record:
    """UltraInteract-SFT (openbmb/UltraInteract_sft): instruction / response."""
    _need(row, "instruction", "response")
    return {"instruction": row["instruction"], "input": "", "output": row["response"]}


def openorca(row: Row) -> Record:
    """OpenOrca (Open-Orca/OpenOrca): system_prompt / question / response."""
    _need(row, "question", "response")
    system = (row.get("system_prompt") or "").strip()
    return {
        "instruction": f"{system}\n\n{row['question']}" if system else row["question"],
        "input": "",
        "output": row["response"],
    }


def evol_instruct(row: Row) -> Record:
    """Evol-Instruct layouts with instruction / output (e.g. nickrosh/Evol-Instruct-Code-80k-v1)."""
    _need(row, "instruction", "output")
    return {"instruction": row["instruction"], "input": "", "output": row["output"]}


def messages(row: Row) -> Record:
    """Chat rows: ``messages`` [{role, content}] or ShareGPT ``conversations`` [{from, value}];
    the first user turn and the assistant turn after it."""
    turns = row.get("messages") if "messages" in row else row.get("conversations")
    if not isinstance(turns, list):
        raise KeyError(f"no 'messages' or 'conversations' list; the row has {sorted(row)}")
    norm = [(str(t.get("role", t.get("from", ""))), str(t.get("content", t.get("value", "")))) for t in turns]
    for i, (role, text) in enumerate(norm):
        if role in ("user", "human") and i + 1 < len(norm) and norm[i + 1][0] in ("assistant", "gpt"):
            return {"instruction": text, "input": "", "output": norm[i + 1][1]}
    raise KeyError("no user turn followed by an assistant turn")


def divplugin(row: Row) -> Record:
    """Rows written by divplugin's generators (instruction/input/output/metadata)."""
    return alpaca(row)


ADAPTERS: dict[str, Callable[[Row], Record]] = {
    "alpaca": alpaca,
    "oss_instruct": oss_instruct,
    "cot_collection": cot_collection,
    "ultrainteract": ultrainteract,
    "openorca": openorca,
    "evol_instruct": evol_instruct,
    "messages": messages,
    "divplugin": divplugin,
}


def mapping_adapter(fields: dict[str, str]) -> Callable[[Row], Record]:
    """An adapter from a field mapping; ``input`` is optional."""

    def adapt(row: Row) -> Record:
        _need(row, fields["instruction"], fields["output"])
        inp = fields.get("input")
        return {
            "instruction": row[fields["instruction"]],
            "input": (row.get(inp) or "") if inp else "",
            "output": row[fields["output"]],
        }

    return adapt
