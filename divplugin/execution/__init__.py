"""Sandboxed execution of generated code (see :mod:`.sandbox`)."""

from divplugin.execution.sandbox import (
    CodeExecutionNotAllowed,
    ExecResult,
    Executor,
    Limits,
    SandboxError,
)
from divplugin.execution.values import Opaque

__all__ = ["CodeExecutionNotAllowed", "ExecResult", "Executor", "Limits", "Opaque", "SandboxError"]
