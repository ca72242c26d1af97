"""Prompt strategy ``type: divplugin.axolotl.mixture`` for mixture rows (instruction/input/output).

With a tokenizer that has a chat template, the row becomes a user turn (instruction, then the
input after a blank line) and an assistant turn, rendered by that template; otherwise the
Alpaca instruction format that the code-mixture papers' base models are usually tuned with.
The loss is on the answer only unless ``train_on_inputs: true``.

A model trained in the Alpaca format keeps it: :func:`alpaca_chat_template` is that format as
a chat template, which the plugin gives the tokenizer that axolotl saves with the model. So
EvalPlus, lm-eval's ``--apply_chat_template``, divplugin's instruct tasks and vLLM render
exactly the prompt the model was trained on.
"""

from __future__ import annotations

from typing import Any

from axolotl.prompt_tokenizers import PromptTokenizingStrategy

from divplugin.axolotl.markov import assemble
from divplugin.data.records import user_turn

ALPACA = (
    "Below is an instruction that describes a task{with_input}. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
)


WITH_INPUT = ", paired with an input that provides further context"


def alpaca_prompt(instruction: str, input: str) -> str:
    return ALPACA.format(
        with_input=WITH_INPUT if input else "",
        instruction=instruction,
        input_block=f"### Input:\n{input}\n\n" if input else "",
    )


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS token in front of a text by itself."""
    bos = getattr(tokenizer, "bos_token_id", None)
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return (
        bos is not None
        and bool(ids)
        and ids[0] == bos
        and tokenizer("x", add_special_tokens=False)["input_ids"][:1] != [bos]
    )


def alpaca_chat_template(bos: bool) -> str:
    """The Alpaca format of :class:`MixturePromptStrategy` as a Jinja chat template.

    A user turn renders as the Alpaca prompt of its ``content`` (with an ``input`` key, the
    with-input form), ending where the response begins, so no generation prompt is needed; an
    assistant turn as its content and the EOS token. `bos`: begin with the BOS token (for
    tokenizers that add one to a text by themselves, as training did). A system turn's
    content, which training never had, comes first, followed by a blank line."""
    user = ALPACA.format(
        with_input="{% if message['input'] is defined and message['input'] %}" + WITH_INPUT + "{% endif %}",
        instruction="{{ message['content'] }}",
        input_block="{% if message['input'] is defined and message['input'] %}### Input:\n{{ message['input'] }}"
        "\n\n{% endif %}",
    )
    return (
        ("{{ bos_token }}" if bos else "")
        + "{% for message in messages %}"
        + "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
        + "{% elif message['role'] == 'user' %}"
        + user
        + "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}"
        + "{% else %}{{ raise_exception('the Alpaca template knows the roles system, user and assistant, not '"
        + " + message['role']) }}{% endif %}{% endfor %}"
    )


class MixturePromptStrategy(PromptTokenizingStrategy):
    """Batched: prompt tokens (masked) + answer tokens + EOS."""

    def __init__(self, tokenizer, train_on_inputs: bool = False, sequence_len: int = 2048):
        super().__init__(None, tokenizer, train_on_inputs, sequence_len)
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    @property
    def supports_batched(self) -> bool:
        return True

    def _pair(self, instruction: str, input: str, output: str) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        if self.chat:
            user = [{"role": "user", "content": user_turn(instruction, input)}]
            prompt = tok.apply_chat_template(user, tokenize=True, add_generation_prompt=True)
            full = tok.apply_chat_template(user + [{"role": "assistant", "content": output}], tokenize=True)
            prompt, full = list(getattr(prompt, "input_ids", prompt)), list(getattr(full, "input_ids", full))
            if full[: len(prompt)] != prompt:
                raise ValueError(
                    "divplugin.axolotl.mixture: the tokenizer's chat template renders the user turn "
                    "differently once an answer follows; use type: chat_template instead"
                )
            return prompt, full[len(prompt) :]
        prompt = tok(alpaca_prompt(instruction, input), add_special_tokens=True)["input_ids"]
        answer = tok(output, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        return prompt, answer

    def tokenize_prompt(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        missing = [k for k in ("instruction", "output") if k not in batch]
        if missing:
            raise ValueError(f"divplugin.axolotl.mixture: rows need instruction/input/output fields; missing {missing}")
        inputs = batch.get("input") or [""] * len(batch["instruction"])
        pairs = [self._pair(i, x or "", o) for i, x, o in zip(batch["instruction"], inputs, batch["output"])]
        return assemble(pairs, self.train_on_inputs)


def load(tokenizer, cfg, ds_cfg: Any = None) -> MixturePromptStrategy:
    return MixturePromptStrategy(tokenizer, bool(cfg.train_on_inputs), cfg.sequence_len)
