"""The sandbox worker: a small trusted process that forks one fresh child per candidate.

Run as ``python -I _zygote.py``; it speaks length-prefixed messages on stdin/stdout (pickled
requests from the trusted parent; JSON replies). For each request it forks a keeper, which
(where the OS allows) enters new PID, network and mount namespaces, mounts private tmpfs
over the temp folders, and forks the runner: PID 1 of the new namespace, so every process
the candidate starts dies with it. The runner sets resource limits, drops to an unprivileged
user when started as root, applies the reliability guard, runs the candidate, and writes
its result with the request's random token to a pipe. The keeper enforces the wall-clock
limit. This file imports only the standard library (and preloads a few modules that
candidates commonly use, so forked children start warm).
"""

import os
import pickle
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import values  # noqa: E402  (sibling module; the package may not be importable under -I)

PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
           "copy", "random", "statistics", "fractions", "decimal", "operator", "hashlib",
           "typing", "datetime", "json", "array", "cmath", "numpy")
# What the keeper and runner themselves import: loaded once here, not once per candidate
# (importing them in each forked child costs more than the rest of a trivial candidate).
SANDBOX_MODULES = ("ctypes", "json", "resource", "shutil", "subprocess", "tempfile")
NOBODY = 65534
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000

# Set when the worker itself already lives in a network namespace with no interfaces:
# creating one per candidate costs more than the rest of the sandbox together.
_SHARED_NET = False

# keeper exit codes
K_EXITED, K_SIGNALED, K_TIMEOUT, K_SETUP = 0, 1, 2, 3


class _Timeout(BaseException):
    pass


def _read_exact(f, n):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


_LIBC = []


def _libc():
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


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
    for name in ("kill", "killpg", "system", "putenv", "unsetenv", "remove", "removedirs", "rmdir",
                 "unlink", "fchdir", "setuid", "setgid", "setreuid", "setregid", "setresuid",
                 "setresgid", "fork", "forkpty", "execv", "execve", "execvp", "execvpe", "execl",
                 "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
                 "posix_spawnp", "popen", "truncate", "ftruncate", "rename", "renames", "replace",
                 "lchown", "chown", "fchown", "chmod", "fchmod", "lchmod", "chroot", "link", "symlink",
                 "nice", "setpgid", "setsid", "plock", "register_at_fork", "unshare", "setns"):
        if hasattr(os, name):
            setattr(os, name, None)
    import posix

    for name in ("fork", "forkpty", "system", "kill", "killpg", "execv", "execve", "posix_spawn",
                 "posix_spawnp", "unshare", "setns"):
        if hasattr(posix, name):
            setattr(posix, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ctypes", "_ctypes", "_posixsubprocess", "subprocess", "multiprocessing", "pty",
                 "socket", "_socket", "resource", "psutil", "tkinter", "ipdb", "joblib", "faulthandler"):
        sys.modules[name] = None


def _set_limits(req):
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
    lim(resource.RLIMIT_CPU, int(req["timeout"]) + 2)
    lim(resource.RLIMIT_NPROC, int(req["max_processes"]))


def _drop_privileges(uid):
    """Become `uid` keeping only CAP_DAC_READ_SEARCH, so the interpreter's own files (which
    may sit in a private home) stay readable while nothing of root's is writable."""
    import ctypes

    libc = _libc()
    cap_dac_read_search = 2
    for cap in range(64):
        if cap != cap_dac_read_search:
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    if libc.prctl(8, 1, 0, 0, 0) != 0:  # PR_SET_KEEPCAPS
        raise OSError("prctl(PR_SET_KEEPCAPS) failed")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    data[0].effective = data[0].permitted = 1 << cap_dac_read_search
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
        raise OSError("capset failed")
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if os.getuid() != uid:
        raise OSError("could not drop privileges")


def _on_alarm(signum, frame):
    raise _Timeout()


def _describe(exc):
    text = f"{type(exc).__name__}: {exc}"
    return text[:500]


def _has_opaque(enc):
    if isinstance(enc, list):
        return any(_has_opaque(v) for v in enc)
    if isinstance(enc, dict):
        (tag, v), = enc.items()
        return tag == "X" or (isinstance(v, list) and _has_opaque(v))
    return False


def _plain_calls(fn):
    """Wrap a candidate so that a check sees only copies of plain data (exact builtin types)."""
    def call(*args, **kwargs):
        enc = values.encode_obj(fn(*args, **kwargs))
        if _has_opaque(enc):
            raise TypeError("the candidate returned a value that is not plain data")
        return values.decode_obj(enc)
    return call


def _run_candidate(req):
    """Runs in the runner (PID 1 of the sandbox); returns the result dict."""
    import builtins

    snapshot = dict(builtins.__dict__)
    g = {}
    signal.signal(signal.SIGALRM, _on_alarm)
    result = {"token": req["token"], "calls": [], "error": None}
    try:
        if req["mode"] == "script":
            signal.setitimer(signal.ITIMER_REAL, req["timeout"])
            exec(compile(req["code"], "<candidate>", "exec"), g)
            # The checker runs with its own copy of the builtins, so a candidate that patches
            # `builtins` (abs, len, ...) while running cannot change what the checks compute.
            checker = dict(g)
            checker["__builtins__"] = snapshot
            exec(compile(req["test"], "<test>", "exec"), checker)
            checker["check"](_plain_calls(g[req["entry_point"]]))
            signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            signal.setitimer(signal.ITIMER_REAL, max(req["time_limits"] or [1.0]) + 1.0)
            exec(compile(req["code"], "<candidate>", "exec"), g)
            signal.setitimer(signal.ITIMER_REAL, 0)
            fn = g[req["entry_point"]]
            for inp, limit in zip(req["inputs"], req["time_limits"]):
                t0 = time.perf_counter()
                try:
                    signal.setitimer(signal.ITIMER_REAL, limit)
                    out = fn(*inp)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                except _Timeout:
                    result["calls"].append(["timeout"])
                    break
                except BaseException as exc:  # noqa: BLE001 - a candidate may raise anything
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    result["calls"].append(["error", _describe(exc)])
                    break
                dt = time.perf_counter() - t0
                try:
                    enc = values.compact(values.encode_obj(out))
                except values.TooLarge:
                    enc = values.repr_digest(out)
                result["calls"].append(["ok", enc, dt])
    except _Timeout:
        result["error"] = "timeout"
    except BaseException as exc:  # noqa: BLE001
        signal.setitimer(signal.ITIMER_REAL, 0)
        result["error"] = _describe(exc)
    return result


def _runner(req, wfd, workdir, drop_to):
    """PID 1 of the sandbox: limits, privileges, guard, then the candidate."""
    try:
        if drop_to is not None:
            os.chown(workdir, drop_to, drop_to)
        os.chdir(workdir)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, wfd)
        os.closerange(wfd + 1, 4096)
        if os.getpid() == 1:
            try:
                _libc().mount(b"proc", b"/proc", b"proc", 0, None)
            except OSError:
                pass
        _set_limits(req)
        if drop_to is not None:
            _drop_privileges(drop_to)
        _guard()
        result = _run_candidate(req)
        payload = __import__("json").dumps(result, separators=(",", ":")).encode()
        view = memoryview(payload)
        while view:
            n = os.write(wfd, view)
            view = view[n:]
    finally:
        os._exit(0)


def _keeper(req, wfd):
    """Forked per candidate: namespaces, temp dir, the runner, the wall clock."""
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
        os.write(wfd, ("#" + ",".join(got) + "\n").encode())
        pid = os.fork()
        if pid == 0:
            _runner(req, wfd, workdir, drop_to)
        os.close(wfd)
        timed_out = []

        def on_alarm(signum, frame):
            timed_out.append(True)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, req["timeout"])
        _, status = os.waitpid(pid, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not private_tmp:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        if timed_out:
            os._exit(K_TIMEOUT)
        os._exit(K_SIGNALED if os.WIFSIGNALED(status) else K_EXITED)
    except BaseException:  # noqa: BLE001
        os._exit(K_SETUP)


def handle(req):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _keeper(req, wfd)
    os.close(wfd)
    cap = int(req["output_cap"])
    chunks, total, over = [], 0, False
    while True:
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        total += len(chunk)
        if total > cap:
            over = True
            break
        chunks.append(chunk)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    data = b"".join(chunks)
    isolation = ""
    if data.startswith(b"#"):
        head, _, data = data.partition(b"\n")
        isolation = head[1:].decode()
    return {"id": req["id"], "keeper": code, "over_cap": over, "isolation": isolation,
            "data": data.decode("utf-8", "replace")}


def main():
    for name in PRELOAD + SANDBOX_MODULES:
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
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"ready\n")
    stdout.flush()
    while True:
        head = _read_exact(stdin, 4)
        if head is None:
            return
        (n,) = struct.unpack("<I", head)
        req = pickle.loads(_read_exact(stdin, n))
        reply = __import__("json").dumps(handle(req)).encode()
        stdout.write(struct.pack("<I", len(reply)) + reply)
        stdout.flush()


if __name__ == "__main__":
    main()
