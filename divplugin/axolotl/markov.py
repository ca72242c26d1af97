"""Prompt strategy ``type: divplugin.axolotl.markov`` for rows with instruction/input/output.

The text is the completion prompt that the ``divplugin_markov`` lm-eval tasks use (the
generator's ``prompt_template`` and a newline), then the answer and a newline, then EOS;
the loss is on the answer only unless ``train_on_inputs: true``. The template is read from
the ``manifest.json`` beside the data file (the default template when there is none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axolotl.prompt_tokenizers import PromptTokenizingStrategy

from divplugin.data.manifest import is_dataset, load_manifest, prompt_template
from divplugin.data.records import DEFAULT_PROMPT_TEMPLATE, completion_prompt

IGNORE = -100


def assemble(pairs: list[tuple[list[int], list[int]]], train_on_inputs: bool) -> dict[str, list[list[int]]]:
    """Tokenized rows from (prompt ids, answer ids) pairs; labels mask the prompt unless
    ``train_on_inputs``."""
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for prompt, answer in pairs:
        ids = prompt + answer
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append(ids[:] if train_on_inputs else [IGNORE] * len(prompt) + answer)
    return out


def template_for(path: str | None) -> str:
    """The prompt template of the generated folder holding ``path`` (or the default)."""
    if path and is_dataset(Path(path).parent):
        return prompt_template(load_manifest(Path(path).parent))
    return DEFAULT_PROMPT_TEMPLATE


class MarkovPromptStrategy(PromptTokenizingStrategy):
    """Batched tokenization: prompt tokens, answer tokens, EOS; labels mask the prompt."""

    def __init__(self, tokenizer, template: str, train_on_inputs: bool = False, sequence_len: int = 2048):
        super().__init__(None, tokenizer, train_on_inputs, sequence_len)
        self.template = template

    @property
    def supports_batched(self) -> bool:
        return True

    def tokenize_prompt(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        missing = [k for k in ("input", "output") if k not in batch]
        if missing:
            raise ValueError(f"divplugin.axolotl.markov: rows need instruction/input/output fields; missing {missing}")
        instructions = batch.get("instruction") or [""] * len(batch["input"])
        prompts = [completion_prompt(self.template, i, x) for i, x in zip(instructions, batch["input"])]
        answers = [o + "\n" for o in batch["output"]]
        p_ids = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        a_ids = self.tokenizer(answers, add_special_tokens=False)["input_ids"]
        eos = [self.tokenizer.eos_token_id]
        return assemble([(p, a + eos) for p, a in zip(p_ids, a_ids)], self.train_on_inputs)


def load(tokenizer, cfg, ds_cfg: Any = None) -> MarkovPromptStrategy:
    path = ds_cfg.get("path") if isinstance(ds_cfg, dict) else getattr(ds_cfg, "path", None)
    return MarkovPromptStrategy(tokenizer, template_for(path), bool(cfg.train_on_inputs), cfg.sequence_len)
