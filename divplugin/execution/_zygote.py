"""The sandbox's workers: small trusted processes, one pair per sandbox slot.

Run as ``python -I _zygote.py ROLE FD``. The *candidate* worker only ever sees candidates'
code; the *checker* worker only ever sees tests, inputs and tokens, and never runs candidate
code. Both speak length-prefixed messages with the trusted parent (pickled requests in, JSON
replies out) and share one Unix socket (FD), over which the checker worker hands the
candidate's side fresh pipes for each request.

Per request:

- The candidate worker forks a *keeper*, which (where the OS allows) enters new PID, network
  and mount namespaces, mounts private tmpfs over the temp folders, takes the request's pipes
  from the socket and forks the *runner*: PID 1 of the new namespace, so every process the
  candidate starts dies with it. The runner sets resource limits, drops to an unprivileged
  user when started as root, applies the reliability guard, runs the candidate's code and
  answers calls: arguments in, plain data (or the error) out, in the safe wire format
  (:mod:`values`).
- The checker worker, running as a user of its own (not traceable, not the runner's), runs
  the test (``check(candidate)``, or asserts that call the entry point by name) with
  ``candidate`` a proxy over those pipes, or drives the io inputs, and replies with the
  verdict and the token.

Nothing that runs in the runner can reach the test, the checker's builtins or modules, the
token or the verdict: they live in a process tree it cannot see, signal or trace. Time is the
candidate's CPU time, read by the checker from ``/proc``, so verdicts do not depend on how busy
the machine is; a wall-clock backstop (a multiple of the CPU limit) catches candidates that
sleep. The global ``random`` is reseeded before each test, so tests that draw their inputs
from it draw the same ones every time. This file imports only the standard library (and
preloads modules that candidates and tests commonly use, so forked children start warm).
"""

import json
import os
import pickle
import random
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import values  # noqa: E402  (sibling module; the package may not be importable under -I)

PRELOAD = (
    "math",
    "re",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "copy",
    "random",
    "statistics",
    "fractions",
    "decimal",
    "operator",
    "hashlib",
    "typing",
    "datetime",
    "json",
    "array",
    "cmath",
)
CANDIDATE_PRELOAD = ("numpy",)  # candidates use it often, tests seldom: a smaller checker forks faster
# What the sandbox itself imports: loaded once here, not once per request (importing them in
# each forked child costs more than the rest of a trivial candidate).
SANDBOX_MODULES = ("ctypes", "json", "resource", "shutil", "subprocess", "tempfile")
NOBODY = 65534  # the runner's user when started as root
CHECKER_UID = 65533  # the checker's: not the runner's, so the runner cannot signal or trace it
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
CAP_DAC_READ_SEARCH = 2
POLL_S = 0.02  # how often a waiting checker reads the candidate's CPU time
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Set when the worker itself already lives in a network namespace with no interfaces:
# creating one per candidate costs more than the rest of the sandbox together.
_SHARED_NET = False


def _read_exact(read, n):
    """`n` bytes from ``read(k)`` (a file's read or ``os.read`` on a descriptor), or None at end
    of file."""
    buf = b""
    while len(buf) < n:
        chunk = read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


_LIBC: list = []


def _libc():
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


# ---------------------------------------------------------------- messages between processes


def _send(fd, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    view = memoryview(struct.pack("<I", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _recv_blocking(fd):
    """One message from `fd` (used by the runner), or None at end of file."""

    def read(k):
        return os.read(fd, k)

    head = _read_exact(read, 4)
    body = None if head is None else _read_exact(read, struct.unpack("<I", head)[0])
    return None if body is None else json.loads(body)


# ---------------------------------------------------------------- isolation


def _enter_namespaces(libc, want):
    """Unshare PID/net/mount namespaces; returns the list of what took effect."""
    got = []
    if not want:
        return got
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWPID | CLONE_NEWNS | (0 if _SHARED_NET else CLONE_NEWNET)
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        return got
    if flags & CLONE_NEWUSER:
        try:
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"0 {gid} 1")
            got.append("user")
        except OSError:
            pass
    got += ["pid", "net"]  # the network namespace is the worker's own (see main) or a new one
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0:
        ok = True
        for d in (b"/tmp", b"/var/tmp", b"/dev/shm"):
            if os.path.isdir(d) and libc.mount(b"tmpfs", d, b"tmpfs", 0, b"size=64m,mode=1777") != 0:
                ok = False
        if ok:
            got.append("mount")
    return got


def _guard():
    """Disable what a test never needs: process control, deletion, env, native calls."""
    import builtins
    import shutil
    import subprocess

    os.environ.clear()
    for name in (
        "kill",
        "killpg",
        "system",
        "putenv",
        "unsetenv",
        "remove",
        "removedirs",
        "rmdir",
        "unlink",
        "fchdir",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "fork",
        "forkpty",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "posix_spawn",
        "posix_spawnp",
        "popen",
        "truncate",
        "ftruncate",
        "rename",
        "renames",
        "replace",
        "lchown",
        "chown",
        "fchown",
        "chmod",
        "fchmod",
        "lchmod",
        "chroot",
        "link",
        "symlink",
        "nice",
        "setpgid",
        "setsid",
        "plock",
        "register_at_fork",
        "unshare",
        "setns",
    ):
        if hasattr(os, name):
            setattr(os, name, None)
    import posix

    for name in (
        "fork",
        "forkpty",
        "system",
        "kill",
        "killpg",
        "execv",
        "execve",
        "posix_spawn",
        "posix_spawnp",
        "unshare",
        "setns",
    ):
        if hasattr(posix, name):
            setattr(posix, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in (
        "ctypes",
        "_ctypes",
        "_posixsubprocess",
        "subprocess",
        "multiprocessing",
        "pty",
        "socket",
        "_socket",
        "resource",
        "psutil",
        "tkinter",
        "ipdb",
        "joblib",
        "faulthandler",
    ):
        sys.modules[name] = None


def _set_limits(req, cpu_s=None):
    import resource

    def lim(which, value):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    mem = int(req["memory_mb"]) * 1024 * 1024
    lim(resource.RLIMIT_AS, mem)
    lim(resource.RLIMIT_DATA, mem)
    lim(resource.RLIMIT_FSIZE, int(req["file_size_mb"]) * 1024 * 1024)
    lim(resource.RLIMIT_CORE, 0)
    if cpu_s is not None:
        lim(resource.RLIMIT_CPU, int(cpu_s) + 2)
    lim(resource.RLIMIT_NPROC, int(req["max_processes"]))


_CAPS: list = []


def _caps():
    """capset's header and data for "CAP_DAC_READ_SEARCH only", built once per worker."""
    if not _CAPS:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            ]

        data = (Data * 2)()
        data[0].effective = data[0].permitted = 1 << CAP_DAC_READ_SEARCH
        _CAPS.extend([ctypes.byref(Header(0x20080522, 0)), data])
    return _CAPS


def _drop_privileges(uid):
    """Become `uid` keeping only CAP_DAC_READ_SEARCH, so the interpreter's own files (which
    may sit in a private home) stay readable while nothing of root's is writable."""
    libc = _libc()
    header, data = _caps()
    for cap in range(64):
        if cap != CAP_DAC_READ_SEARCH:
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    if libc.prctl(8, 1, 0, 0, 0) != 0:  # PR_SET_KEEPCAPS
        raise OSError("prctl(PR_SET_KEEPCAPS) failed")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if libc.capset(header, data) != 0:
        raise OSError("capset failed")
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if os.getuid() != uid:
        raise OSError("could not drop privileges")


def _close_fds_except(*keep):
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if devnull != fd:
            os.dup2(devnull, fd)
    keep = sorted(set(keep) | {0, 1, 2})
    for lo, hi in zip(keep, keep[1:] + [4096]):
        os.closerange(lo + 1, hi)


def _describe(exc):
    text = f"{type(exc).__name__}: {exc}"
    return text[:500]


def _has_opaque(enc):
    if isinstance(enc, list):
        return any(_has_opaque(v) for v in enc)
    if isinstance(enc, dict):
        ((tag, v),) = enc.items()
        return tag == "X" or (isinstance(v, list) and _has_opaque(v))
    return False


# ---------------------------------------------------------------- the candidate's side


def _error(exc):
    """The answer that reports a candidate's exception."""
    return {"e": [type(exc).__name__, _describe(exc)]}


def _serve(req, call_r, resp_w):
    """Runs in the runner: the candidate's code, then one answer per call until end of file."""
    compact = req["mode"] == "io"
    g = {"__name__": "__main__"}
    try:
        exec(compile(req["code"], "<candidate>", "exec"), g)
        fn = g[req["entry_point"]]
    except BaseException as exc:  # noqa: BLE001 - a candidate may raise anything
        _send(resp_w, _error(exc))
        return
    _send(resp_w, {"ready": 1})
    while True:
        msg = _recv_blocking(call_r)
        if msg is None:
            return
        try:
            out = fn(*values.decode_obj(msg["a"]), **values.decode_obj(msg.get("k") or {"D": []}))
        except BaseException as exc:  # noqa: BLE001
            _send(resp_w, _error(exc))
            continue
        try:
            enc = values.encode_obj(out)
            if compact:
                enc = values.compact(enc)
        except values.TooLarge as exc:
            if not compact:
                _send(resp_w, {"e": ["ValueError", f"the candidate's value is too large to compare: {exc}"]})
                continue
            enc = values.repr_digest(out)
        except BaseException as exc:  # noqa: BLE001 - a value whose inspection raises
            _send(resp_w, _error(exc))
            continue
        _send(resp_w, {"v": enc})


def _runner(req, call_r, resp_w, workdir, drop_to):
    """PID 1 of the sandbox: limits, privileges, guard, then the candidate."""
    try:
        if drop_to is not None:
            os.chown(workdir, drop_to, drop_to)
        os.chdir(workdir)
        _close_fds_except(call_r, resp_w)
        if os.getpid() == 1:
            try:
                _libc().mount(b"proc", b"/proc", b"proc", 0, None)
            except OSError:
                pass
        _set_limits(req, req["cpu_total"])
        if drop_to is not None:
            _drop_privileges(drop_to)
        _guard()
        _serve(req, call_r, resp_w)
    finally:
        os._exit(0)


def _receive_fds(sock, request_id):
    """The pipe ends the checker worker sent for this request (skipping any a failed earlier
    request left behind)."""
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 64, 3)
        if not msg:
            raise OSError("the checker worker is gone")
        if msg == request_id.encode() and len(fds) == 3:
            return fds
        for fd in fds:
            os.close(fd)


def _keeper(req, sock, wfd):
    """Forked per candidate: namespaces, temp dir, the runner; ends it when the checker is done
    or the wall-clock backstop passes."""
    try:
        import tempfile

        drop_to = NOBODY if os.geteuid() == 0 and req["isolate"] else None
        libc = _libc() if req["isolate"] else None
        got = _enter_namespaces(libc, req["isolate"])
        # /tmp is then a fresh tmpfs, gone with the namespace: no name clash, no cleanup
        private_tmp = "mount" in got and os.path.isdir("/tmp")
        if private_tmp:
            workdir = "/tmp/divplugin-exec"
            os.mkdir(workdir, 0o700)
        else:
            workdir = tempfile.mkdtemp(prefix="divplugin-exec-")
        if drop_to is not None:
            got.append("unprivileged")
        os.write(wfd, ("#" + ",".join(got)).encode())
        os.close(wfd)
        call_r, resp_w, ctl_fd = _receive_fds(sock, req["id"])
        sock.close()
        ctl = socket.socket(fileno=ctl_fd)
        pid = os.fork()
        if pid == 0:
            ctl.close()
            _runner(req, call_r, resp_w, workdir, drop_to)
        os.close(call_r)
        os.close(resp_w)
        ctl.sendall(f"{pid}\n".encode())  # the runner's PID, as the checker sees it
        select.select([ctl], [], [], req["wall"] + 2.0)  # the checker's end closes when it is done
        try:
            os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: everything it started goes too
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        if not private_tmp:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        os._exit(0)
    except BaseException:  # noqa: BLE001
        os._exit(1)


_KEEPERS: set = set()  # keepers still running after their reply was sent


def _reap(block=False):
    for pid in list(_KEEPERS):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _KEEPERS.discard(pid)


def handle_candidate(req, sock):
    """Starts the candidate's keeper, which takes this request's pipes from the socket once its
    namespaces are in place; replies with the isolation it got, and reaps the keeper later,
    so its teardown overlaps the next request (the verdict is the checker's)."""
    _reap()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _keeper(req, sock, wfd)
    os.close(wfd)
    header = b""
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        header += chunk
    os.close(rfd)
    _KEEPERS.add(pid)
    if not header.startswith(b"#"):
        _reap(block=True)
        return {"id": req["id"], "started": False, "isolation": ""}
    return {"id": req["id"], "started": True, "isolation": header[1:].decode("utf-8", "replace")}


# ---------------------------------------------------------------- the checker's side


class _Gone(BaseException):
    """The candidate stopped answering: timeout or crash. Not an Exception, so a test's
    ``except Exception`` cannot swallow it (and the verdict does not rest on that either)."""


class _Candidate:
    """The checker's handle on the runner: calls over the pipes, time from /proc."""

    def __init__(self, call_w, resp_r, pid, cap):
        self.call_w, self.resp_r, self.pid, self.cap = call_w, resp_r, pid, cap
        self.broken = None  # None, "timeout" or "crashed: why"
        self.buf = b""
        self.wall0 = time.monotonic()
        self.poller = select.poll()
        self.poller.register(resp_r, select.POLLIN)
        self._cpu, self._cpu_at = None, -1.0

    def cpu(self, max_age=POLL_S):
        """The runner's CPU seconds (all its threads), read from /proc at most `max_age`
        seconds ago (a quick call does not pay for a read); None if /proc will not say."""
        now = time.monotonic()
        if now - self._cpu_at > max_age:
            try:
                with open(f"/proc/{self.pid}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                self._cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            except (OSError, IndexError, ValueError):
                self._cpu = None
            self._cpu_at = now
        return self._cpu

    def receive(self, cpu_limit, wall_limit, start=None):
        """The next message; `cpu_limit` is CPU seconds from `start` (the runner's CPU time
        when the wait began; read now if not given), `wall_limit` the backstop."""
        start = self.cpu() if start is None else start
        t0 = time.monotonic()
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack("<I", self.buf[:4])
                if n > self.cap:
                    return self._fail("crashed: an answer larger than the output cap")
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
                    try:
                        msg = json.loads(body)
                    except ValueError:
                        return self._fail("crashed: a malformed answer")
                    if not isinstance(msg, dict):
                        return self._fail("crashed: a malformed answer")
                    return msg
            left = wall_limit - (time.monotonic() - t0)
            if left <= 0:
                return self._fail("timeout")
            if self.poller.poll(max(1, int(min(POLL_S, left) * 1000))):
                chunk = os.read(self.resp_r, 1 << 20)
                if not chunk:
                    return self._fail("crashed: the candidate's process ended (exit, crash or signal)")
                self.buf += chunk
                continue
            now = self.cpu(0)
            if now is not None and start is not None and now - start > cpu_limit:
                return self._fail("timeout")

    def _fail(self, why):
        self.broken = self.broken or why
        return None

    def _answer(self, key, cpu_limit, wall_limit, start=None):
        msg = self.receive(cpu_limit, wall_limit, start)
        if msg is not None and not _well_formed(msg, key):
            msg = self._fail("crashed: a malformed answer")
        return msg

    def load(self, cpu_limit, wall_limit):
        """Wait until the candidate's code has run: None when it did, else (outcome, error)."""
        msg = self._answer("ready", cpu_limit, wall_limit)
        if msg is None:
            return _broken_outcome(self)
        return ("failed", msg["e"][1]) if "e" in msg else None

    def call(self, args, kwargs, cpu_limit, wall_limit, start=None):
        """The answer to one call, ``{"v": value}`` or ``{"e": [type name, message]}``; None
        once the candidate is broken (it ended, stopped answering, answered nonsense or
        raised an exit), with the reason in `broken`."""
        msg = {"a": args}
        if kwargs:
            msg["k"] = kwargs
        try:
            _send(self.call_w, msg)
        except OSError:
            return self._fail("crashed: the candidate's process ended (exit, crash or signal)")
        msg = self._answer("v", cpu_limit, wall_limit, start)
        if msg is not None and "e" in msg and msg["e"][0] in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
            return self._fail(f"crashed: the candidate raised {msg['e'][0]}")
        return msg


def _well_formed(msg, key):
    """An answer is ``{"ready": 1}``, ``{"v": value}`` or ``{"e": [type name, message]}``,
    nothing else."""
    if list(msg) == ["e"]:
        e = msg["e"]
        return isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)
    if key == "ready":
        return msg == {"ready": 1}
    return list(msg) == ["v"]


def _exception(name, text):
    """The candidate's exception, rebuilt in the checker: a builtin exception type keeps its
    type (tests may expect ValueError); anything else becomes a RuntimeError."""
    import builtins

    kind = getattr(builtins, str(name), None)
    msg = str(text).partition(": ")[2]
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(msg)
        except Exception:  # noqa: BLE001 - an exception type with other constructor arguments
            pass
    return RuntimeError(str(text))


def _script_check(req, cand):
    """The test, with `candidate` as a proxy; returns (outcome, error)."""
    budget = float(req["cpu_total"])
    wall = float(req["wall"])

    def left():
        used = cand.cpu()
        spent = time.monotonic() - cand.wall0
        return (budget - used if used is not None else budget - spent), wall - spent

    def proxy(*args, **kwargs):
        if cand.broken:
            raise _Gone(cand.broken)
        enc = values.encode_obj(list(args))
        enc_kw = values.encode_obj(dict(kwargs)) if kwargs else None
        if _has_opaque(enc) or (enc_kw and _has_opaque(enc_kw)):
            raise TypeError("the test passed the candidate an argument that is not plain data")
        cpu_left, wall_left = left()
        if cpu_left <= 0:
            cand._fail("timeout")
            raise _Gone("timeout")
        msg = cand.call(enc, enc_kw, cpu_left, wall_left)
        if msg is None:
            raise _Gone(cand.broken)
        if "e" in msg:
            raise _exception(*msg["e"])
        try:
            value = values.decode_obj(msg["v"])
        except (ValueError, TypeError, KeyError, IndexError):
            cand._fail("crashed: a malformed answer")
            raise _Gone(cand.broken) from None
        if _has_opaque(msg["v"]):
            raise TypeError("the candidate returned a value that is not plain data")
        return value

    proxy.__name__ = req["entry_point"]
    failed = cand.load(*left())
    if failed:
        return failed
    g = {"__name__": "__divplugin_check__", "__builtins__": dict(_BUILTINS)}
    try:
        if isinstance(req["compiled"], BaseException):
            raise req["compiled"]
        context, test = req["compiled"]
        exec(context, g)
        g[req["entry_point"]] = proxy
        exec(test, g)
        if callable(g.get("check")):
            g["check"](proxy)
    except _CheckTimeout:
        raise
    except BaseException as exc:  # noqa: BLE001 - the test's failure, or the candidate's
        if cand.broken:
            return _broken_outcome(cand)
        return "failed", _describe(exc)
    if cand.broken:  # a test that swallowed the proxy's signal does not pass
        return _broken_outcome(cand)
    return "passed", None


def _broken_outcome(cand):
    if cand.broken == "timeout":
        return "timeout", "time limit reached"
    return "crashed", cand.broken.partition(": ")[2] or cand.broken


def _io_check(req, cand):
    """Each input in turn, each within its CPU-time limit; returns (outcome, error, calls)."""
    factor = float(req["wall_factor"])
    ready = float(req["ready_cpu"])
    failed = cand.load(ready, factor * ready + 1.0)
    if failed:
        return (*failed, [])
    calls = []
    for inp, limit in zip(req["inputs"], req["time_limits"]):
        # a call's time is the runner's CPU from the arguments' arrival to the answer's
        # departure: the same measure for the reference solution and the candidate
        before = cand.cpu(0)
        msg = cand.call(values.encode_obj(list(inp)), None, limit, factor * limit + 1.0, before)
        if msg is None:
            if cand.broken == "timeout":
                calls.append(["timeout"])
                return "completed", None, calls
            return (*_broken_outcome(cand), calls)
        if "e" in msg:
            calls.append(["error", msg["e"][1]])
            return "completed", None, calls
        after = cand.cpu(0)
        calls.append(["ok", msg["v"], after - before if None not in (before, after) else 0.0])
    return "completed", None, calls


class _CheckTimeout(BaseException):
    """The check as a whole outran its wall-clock backstop."""


def _on_check_alarm(signum, frame):
    raise _CheckTimeout()


_COMPILED: dict = {}
_BUILTINS: dict = {}  # the builtins as the checker worker started, for each test's globals


def _compiled(text, name):
    """`text` compiled, cached in the checker worker (n samples of a problem share its test)."""
    key = (text, name)
    if key not in _COMPILED:
        if len(_COMPILED) > 512:
            _COMPILED.clear()
        _COMPILED[key] = compile(text, name, "exec")
    return _COMPILED[key]


def _runner_pid(ctl, wall):
    """The runner's PID, which its keeper sends once the runner is forked."""
    ctl.settimeout(wall)
    pid = b""
    while not pid.endswith(b"\n"):
        chunk = ctl.recv(32)
        if not chunk:
            break
        pid += chunk
    return int(pid) if pid.strip().isdigit() else None


def handle_check(req, sock):
    """One check, run in this worker: a process of its own user that never runs candidate code.
    Hands the candidate's side fresh pipes, then runs the test (or the io inputs) against them."""
    result = {"token": req["token"], "outcome": "setup", "calls": [], "error": "the candidate's process did not start"}
    timed_out = False
    call_r, call_w = os.pipe()
    resp_r, resp_w = os.pipe()
    ctl, ctl_c = socket.socketpair()
    socket.send_fds(sock, [req["id"].encode()], [call_r, resp_w, ctl_c.fileno()])
    for fd in (call_r, resp_w):
        os.close(fd)
    ctl_c.close()
    signal.setitimer(signal.ITIMER_REAL, float(req["wall"]) + 5.0)
    try:
        if req["mode"] == "script":
            try:
                req["compiled"] = [_compiled(req["context"] or "", "<context>"), _compiled(req["test"], "<test>")]
            except SyntaxError as exc:
                req["compiled"] = exc  # the test's failure, reported as such
        pid = _runner_pid(ctl, float(req["wall"]))
        if pid is not None:
            random.seed(0)  # tests that draw inputs from the global RNG draw the same ones each time
            cand = _Candidate(call_w, resp_r, pid, int(req["output_cap"]))
            if req["mode"] == "script":
                result["outcome"], result["error"] = _script_check(req, cand)
            else:
                result["outcome"], result["error"], result["calls"] = _io_check(req, cand)
    except _CheckTimeout:
        timed_out = True
    except BaseException as exc:  # noqa: BLE001
        result["outcome"], result["error"] = "crashed", "checker error: " + _describe(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for fd in (call_w, resp_r):  # the runner sees the end of its input and goes
            os.close(fd)
        ctl.close()
    data = json.dumps(result, separators=(",", ":"))
    over = len(data) > int(req["output_cap"])
    return {"id": req["id"], "over_cap": over, "timed_out": timed_out, "data": "" if over else data}


def main():
    role, sock_fd = sys.argv[1], int(sys.argv[2])
    for name in PRELOAD + SANDBOX_MODULES + (CANDIDATE_PRELOAD if role == "candidate" else ()):
        try:
            __import__(name)
        except ImportError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _SHARED_NET
    if os.geteuid() == 0:
        try:
            _SHARED_NET = _libc().unshare(CLONE_NEWNET) == 0
        except OSError:
            _SHARED_NET = False
    sock = socket.socket(fileno=sock_fd)
    _caps()
    # the protocol with the parent moves off fds 0 and 1: whatever a test prints goes nowhere
    proto_in, proto_out = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    os.close(devnull)
    if role == "candidate":
        handle = handle_candidate
    else:
        import builtins

        _BUILTINS.update(builtins.__dict__)
        signal.signal(signal.SIGALRM, _on_check_alarm)
        if os.geteuid() == 0:
            _drop_privileges(CHECKER_UID)  # not the runner's user: it can neither signal nor trace us
        _libc().prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: not traceable by same-user processes either
        handle = handle_check
    import gc

    gc.collect()
    gc.freeze()  # what is loaded now stays out of forked children's collections: fewer pages copied
    proto_out.write(b"ready\n")
    proto_out.flush()
    while True:
        head = _read_exact(proto_in.read, 4)
        if head is None:
            return
        (n,) = struct.unpack("<I", head)
        req = pickle.loads(_read_exact(proto_in.read, n))
        reply = json.dumps(handle(req, sock)).encode()
        proto_out.write(struct.pack("<I", len(reply)) + reply)
        proto_out.flush()


if __name__ == "__main__":
    main()
