"""A character-level tokenizer and a small Llama-style model, built from scratch.

The tokenizer is a BPE model with an empty merge list over a fixed character set (so every
character is one token) wrapped in ``PreTrainedTokenizerFast``; characters outside the set
map to ``<unk>``. Needs ``transformers`` and ``tokenizers`` (the [axolotl] or [eval] extras).
"""

from __future__ import annotations

import string
from pathlib import Path

DEFAULT_CHARS = string.ascii_letters + string.digits + string.punctuation + " \n\t"
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def build_char_tokenizer(chars: str = DEFAULT_CHARS):
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = "".join(dict.fromkeys(chars))
    if not chars:
        raise ValueError("chars: give at least one character")
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def build_tiny_llama(out: str | Path, *, layers: int = 2, hidden: int = 64, heads: int = 4,
                     max_len: int = 512, chars: str = DEFAULT_CHARS, seed: int = 0) -> Path:
    """Write a randomly initialised Llama-style model and its tokenizer to `out`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    tok = build_char_tokenizer(chars)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 4,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=max_len, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
