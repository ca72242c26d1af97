"""Tiny models built locally (no download), for CPU runs and tests."""

from .tiny import build_char_tokenizer, build_tiny_llama

__all__ = ["build_char_tokenizer", "build_tiny_llama"]
