"""Exceptions with messages that name what is wrong."""


class DivpluginError(Exception):
    """Base class of divplugin's own errors."""


class ConfigError(DivpluginError, ValueError):
    """A bad configuration value; the message names the field and the allowed range."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class GenerationError(DivpluginError, RuntimeError):
    """Generation could not satisfy the configuration (e.g. too few distinct rules exist)."""


class OutputExistsError(DivpluginError, FileExistsError):
    """The output folder exists and overwriting was not asked for."""


class DataFileError(DivpluginError, ValueError):
    """A data file is missing, unreadable or not valid JSON Lines (names the file and line)."""
