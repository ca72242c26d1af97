"""A character-level tokenizer and a small Llama-style model, built from scratch.

The tokenizer is a BPE model with an empty merge list over a fixed character set (so every
character is one token) wrapped in ``PreTrainedTokenizerFast``; characters outside the set
map to ``<unk>``. Needs ``transformers`` and ``tokenizers`` (the [axolotl] or [eval] extras).
"""

from __future__ import annotations

import string
from pathlib import Path

from divplugin.errors import ConfigError

DEFAULT_CHARS = string.ascii_letters + string.digits + string.punctuation + " \n\t"
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def build_char_tokenizer(chars: str = DEFAULT_CHARS):
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = "".join(dict.fromkeys(chars))
    if not chars:
        raise ConfigError("give at least one character", "chars")
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


ARCHS = ("llama", "gpt2")


def build_tiny_model(
    out: str | Path,
    *,
    arch: str = "llama",
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    max_len: int = 512,
    chars: str = DEFAULT_CHARS,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised decoder (``arch``: llama or gpt2) and its character-level
    tokenizer to ``out``; a base model that axolotl and lm-eval load like any other."""
    if arch not in ARCHS:
        raise ConfigError(f"must be one of {ARCHS}, got {arch!r}", "arch")
    for name, value in (("layers", layers), ("hidden", hidden), ("heads", heads), ("max_len", max_len)):
        if value < 1:
            raise ConfigError(f"must be >= 1, got {value}", name)
    if hidden % heads:
        raise ConfigError(f"{hidden} is not a multiple of heads ({heads})", "hidden")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedModel

    tok = build_char_tokenizer(chars)
    torch.manual_seed(seed)
    special = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    if arch == "llama":
        model: PreTrainedModel = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tok),
                hidden_size=hidden,
                intermediate_size=hidden * 4,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                num_key_value_heads=heads,
                max_position_embeddings=max_len,
                tie_word_embeddings=True,
                **special,
            )
        )
    else:
        model = GPT2LMHeadModel(
            GPT2Config(vocab_size=len(tok), n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_len, **special)
        )
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_llama(out: str | Path, **kwargs) -> Path:
    """``build_tiny_model`` with ``arch="llama"``."""
    return build_tiny_model(out, arch="llama", **kwargs)
