"""Sandboxed execution of generated code (see :mod:`.sandbox`)."""

from .sandbox import CodeExecutionNotAllowed, ExecResult, Executor, Limits, SandboxError
from .values import Opaque

__all__ = ["CodeExecutionNotAllowed", "ExecResult", "Executor", "Limits", "Opaque", "SandboxError"]
