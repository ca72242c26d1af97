"""Small models built locally (no download): character-level tokenizer, Llama or GPT-2."""

from divplugin.models.tiny import (
    ARCHS,
    build_char_tokenizer,
    build_tiny_llama,
    build_tiny_model,
)

__all__ = ["ARCHS", "build_char_tokenizer", "build_tiny_llama", "build_tiny_model"]
