"""Exceptions with messages that name what is wrong, and the "did you mean" hint they share."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def closest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice most like ``name`` (difflib), or None when none is close enough."""
    found = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str], show: Callable[[str], str] = repr, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    found = closest(name, choices, cutoff)
    return f"; did you mean {show(found)}?" if found else ""


class DivpluginError(Exception):
    """Base class of divplugin's own errors."""


class ConfigError(DivpluginError, ValueError):
    """A bad configuration value; the message names the field and the allowed range."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class GenerationError(DivpluginError, RuntimeError):
    """Generation could not satisfy the configuration (e.g. too few distinct rules exist)."""


class OutputExistsError(DivpluginError, FileExistsError):
    """The output folder exists and overwriting was not asked for."""


class DataFileError(DivpluginError, ValueError):
    """A data file is missing, unreadable or not valid JSON Lines (names the file and line)."""
