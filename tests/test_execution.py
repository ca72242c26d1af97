"""The sandbox: plain runs, the wire format, and a hostile corpus that must be contained."""

import os

import pytest

from divplugin.execution import CodeExecutionNotAllowed, Executor, Limits
from divplugin.execution.values import Digest, Opaque, decode, encode

TEST = "def check(candidate):\n    assert abs(candidate(1) - 2) < 1e-9\n    assert candidate(41) == 42\n"
GOOD = "def f(x):\n    return x + 1\n"


def test_needs_explicit_opt_in():
    with pytest.raises(CodeExecutionNotAllowed, match="allow_code_execution"):
        Executor()


def test_script_pass_and_fail(ex):
    assert ex.run_script(GOOD, TEST, "f").status == "passed"
    bad = ex.run_script("def f(x):\n    return x\n", TEST, "f")
    assert bad.status == "failed" and "AssertionError" in bad.error


def test_io_mode_returns_typed_values(ex):
    code = "def f(x):\n    return (x, {x}, [x * 1.5], {'k': x}, 2j, b'x', 2**80, float('inf'))\n"
    res = ex.run_io(code, "f", [[1], [2]], [1.0, 1.0])
    assert res.status == "completed"
    assert [c[1] for c in res.calls] == [(x, {x}, [x * 1.5], {"k": x}, 2j, b"x", 2**80, float("inf")) for x in (1, 2)]


def test_io_mode_stops_at_first_error(ex):
    res = ex.run_io("def f(x):\n    return 1 // x\n", "f", [[1], [0], [2]], [1.0] * 3)
    assert [c[0] for c in res.calls] == ["ok", "error"]
    assert "ZeroDivisionError" in res.calls[1][1]


def test_check_runs_apart_from_the_candidate(ex):
    """The test sees the candidate only through a proxy: asserts on the entry point by name
    work (MBPP style), helpers come from the trusted context, the candidate's builtin
    exceptions keep their type, and only plain data crosses."""
    mbpp_style = "assert f(1) == 2\nassert f(41) == 42\n"
    assert ex.run_script(GOOD, mbpp_style, "f").status == "passed"
    assert ex.run_script("def f(x):\n    return x\n", mbpp_style, "f").status == "failed"
    context = "def helper(x):\n    return x * 10\n"
    test = "def check(c):\n    assert c(2) == helper(2) + 1\n"
    rigged = "def helper(x):\n    return 0\ndef f(x):\n    return 1\n"
    assert ex.run_script("def f(x):\n    return 10 * x + 1\n", test, "f", context=context).status == "passed"
    assert ex.run_script(rigged, test, "f", context=context).status == "failed"
    raises = "def check(c):\n    try:\n        c(-1)\n    except ValueError:\n        return\n    assert False\n"
    assert ex.run_script("def f(x):\n    raise ValueError(x)\n", raises, "f").status == "passed"
    assert ex.run_script("def f(x):\n    raise KeyError(x)\n", raises, "f").status == "failed"
    swallow = "def check(c):\n    try:\n        c(1)\n    except BaseException:\n        pass\n"
    assert ex.run_script("import os\ndef f(x):\n    os._exit(0)\n", swallow, "f").status == "crashed"
    gen = ex.run_script("def f(x):\n    return iter([x + 1])\n", "def check(c):\n    assert list(c(1)) == [2]\n", "f")
    assert gen.status == "failed" and "not plain data" in gen.error
    bad_arg = ex.run_script(GOOD, "def check(c):\n    c(object())\n", "f")
    assert bad_arg.status == "failed" and "argument that is not plain data" in bad_arg.error


def test_tests_that_draw_random_inputs_give_the_same_verdict_every_time(ex):
    """A test drawing from the global RNG (as some HumanEval tests do) sees the same draws on
    every run, so a candidate right for half the inputs gets one verdict, not a coin toss."""
    test = "import random\ndef check(c):\n    x = random.randint(0, 10**9)\n    assert c(x) == 0\n"
    verdicts = {ex.run_script("def f(x):\n    return x % 2\n", test, "f").status for _ in range(8)}
    assert len(verdicts) == 1


def test_the_candidates_side_never_gets_the_test_inputs_or_token(ex):
    secret, public = ex._requests("script", GOOD, "f", test=TEST, context="HELPERS = 1", cpu_total=1.0)
    assert public["code"] == GOOD and {"test", "context", "inputs", "token"} & set(public) == set()
    assert secret["test"] == TEST and "code" not in secret
    secret, public = ex._requests("io", GOOD, "f", inputs=[[1]], time_limits=[1.0])
    assert secret["inputs"] == [[1]] and "inputs" not in public


def test_io_seconds_are_cpu_time(ex):
    """A call that waits uses almost no CPU: time limits and reported seconds are CPU time,
    so neither depends on how busy the machine is."""
    res = ex.run_io("import time\ndef f(x):\n    time.sleep(x)\n    return x\n", "f", [[0.5]], [0.2])
    assert res.status == "completed" and res.calls[0][0] == "ok" and res.calls[0][2] < 0.2
    busy = ex.run_io("def f(x):\n    while True:\n        pass\n", "f", [[1]], [0.3])
    assert busy.calls == [("timeout",)]


def test_map_unordered_runs_every_item_and_cancels_the_rest_when_stopped(ex):
    def check(i):
        return ex.run_script(f"def f():\n    return {i}\n", f"def check(c):\n    assert c() == {i}\n", "f").status

    assert dict(ex.map_unordered(check, range(6))) == {i: "passed" for i in range(6)}
    with pytest.raises(ZeroDivisionError):
        dict(ex.map_unordered(lambda i: 1 // i, [2, 1, 0]))
    started = []

    def slow(i):
        started.append(i)
        return ex.run_script("import time\ndef f():\n    time.sleep(0.3)\n", "def check(c):\n    c()\n", "f")

    results = ex.map_unordered(slow, range(20))
    next(results)
    results.close()
    assert len(started) <= 2 * ex.workers


def test_wire_format_round_trip_and_rigged_values():
    import collections

    value = (1, [2.5, {3}], {"a": frozenset({4})}, None, True, b"\x00", 3 + 4j, -(2**100), float("nan"))
    back = decode(encode(value))
    assert back[:8] == value[:8] and back[8] != back[8]
    assert decode(encode(collections.Counter("aab"))) == {"a": 2, "b": 1}

    class Rigged(int):
        def __eq__(self, other):
            return True

    assert isinstance(decode(encode(Rigged(1))), Opaque)
    assert decode(encode(Rigged(1))) != 1
    assert Digest("ab", 3) == Digest("ab", 3) and Digest("ab", 3) != "ab"


def test_isolation_reported(ex):
    res = ex.run_script(GOOD, TEST, "f")
    if os.geteuid() == 0:
        assert {"pid", "net", "mount", "unprivileged"} <= set(res.isolation)


# Each hostile candidate must end not passed, and harm nothing.
HOSTILE = {
    "infinite_loop": "def f(x):\n    while True:\n        pass\n",
    "loop_swallowing_timeouts": "def f(x):\n    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n",
    "sleep_forever": "import time\ndef f(x):\n    time.sleep(10**6)\n",
    "fork_bomb_os": "import os\ndef f(x):\n    while True:\n        os.fork()\n",
    "fork_bomb_posix": "import posix\ndef f(x):\n    while True:\n        posix.fork()\n",
    "fork_bomb_multiprocessing": "import multiprocessing\ndef f(x):\n    while True:\n        multiprocessing.Process(target=f, args=(x,)).start()\n",
    "fork_bomb_ctypes": "import ctypes\ndef f(x):\n    while True:\n        ctypes.CDLL(None).fork()\n",
    "subprocess_rm": "import subprocess\ndef f(x):\n    subprocess.run(['rm', '-rf', SENTINEL])\n    return x + 1\n",
    "os_system": "import os\ndef f(x):\n    os.system('rm -rf ' + SENTINEL)\n    return x + 1\n",
    "memory_bomb": "def f(x):\n    return len(bytearray(10**11)) and x + 1\n",
    "memory_growth": "def f(x):\n    a = []\n    while True:\n        a.append(' ' * 10**7)\n",
    "huge_output": "def f(x):\n    while True:\n        print('x' * 10**6)\n",
    "huge_file": "def f(x):\n    with open('big.bin', 'wb') as fh:\n        while True:\n            fh.write(b'0' * 10**6)\n",
    "delete_sentinel": "import os\ndef f(x):\n    os.remove(SENTINEL)\n    return x + 1\n",
    "delete_sentinel_pathlib": "import pathlib\ndef f(x):\n    pathlib.Path(SENTINEL).unlink()\n    return x + 1\n",
    "delete_sentinel_rmtree": "import shutil, os\ndef f(x):\n    shutil.rmtree(os.path.dirname(SENTINEL))\n    return x + 1\n",
    "truncate_sentinel": "def f(x):\n    open(SENTINEL, 'w').close()\n    return x + 1\n",
    "create_file_outside": "def f(x):\n    open(OUTSIDE, 'w').write('pwned')\n    return x + 1\n",
    "network": "import socket\ndef f(x):\n    socket.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'pwned')\n    return x + 1\n",
    "network_reloaded_module": (
        "import importlib.util, sys\n"
        "def f(x):\n"
        "    for name in ('_socket', 'socket'):\n"
        "        sys.modules.pop(name, None)\n"
        "    import importlib\n"
        "    s = importlib.import_module('socket')\n"
        "    s.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'pwned')\n"
        "    return x + 1\n"
    ),
    "sys_exit_module_level": "import sys\nsys.exit(0)\ndef f(x):\n    return x + 1\n",
    "sys_exit_in_call": "import sys\ndef f(x):\n    sys.exit(0)\n",
    "os_exit": "import os\ndef f(x):\n    os._exit(0)\n",
    "raise_keyboard_interrupt": "def f(x):\n    raise KeyboardInterrupt\n",
    "patch_builtins_abs": "import builtins\ndef f(x):\n    builtins.abs = lambda v: 0\n    builtins.len = lambda v: 0\n    return x\n",
    "always_equal_object": "class A:\n    def __eq__(self, o):\n        return True\n    def __sub__(self, o):\n        return 0\ndef f(x):\n    return A()\n",
    "rigged_int_subclass": "class I(int):\n    def __eq__(self, o):\n        return True\n    def __sub__(self, o):\n        return 0\ndef f(x):\n    return I(0)\n",
    "ignore_alarm_signal": "import signal\ndef f(x):\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n",
    "cancel_timer": "import signal\ndef f(x):\n    signal.setitimer(signal.ITIMER_REAL, 0)\n    while True:\n        pass\n",
    "kill_parent": "import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x + 1\n",
    "kill_everything": "import signal\ndef f(x):\n    signal.pthread_kill(0, 9) if False else None\n    import os\n    os.killpg(0, 9)\n",
    "close_all_fds": "import os\ndef f(x):\n    os.closerange(0, 4096)\n    return x + 1\n",
    "forge_result_on_fds": (
        "import os\n"
        "def f(x):\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        '            os.write(fd, b\'{"token": "0", "calls": [], "error": null}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n"
    ),
    "recursion_bomb": "def f(x):\n    return f(x)\n",
    "segfault_via_recursion_limit": "import sys\nsys.setrecursionlimit(10**9)\ndef f(x):\n    return f(x)\n",
    "background_thread": "import threading\ndef f(x):\n    threading.Thread(target=lambda: [None for _ in iter(int, 1)]).start()\n    return x\n",
    "read_env_secret": "import os\ndef f(x):\n    s = os.environ.get('DIVPLUGIN_TEST_SECRET', '')\n    assert s == '', 'secret visible: ' + s\n    return x\n",
    "setuid_root": "import os\ndef f(x):\n    os.setuid(0)\n    return x + 1\n",
}


def test_hostile_corpus_is_contained(ex, outside_world, monkeypatch):
    assert len(HOSTILE) >= 30
    monkeypatch.setenv("DIVPLUGIN_TEST_SECRET", "s3cr3t")
    futures = {}
    for name, code in HOSTILE.items():
        futures[name] = ex.submit("run_script", outside_world.prelude + code, TEST, "f")
        futures[name + "/good"] = ex.submit("run_script", GOOD, TEST, "f")
    results = {name: fut.result() for name, fut in futures.items()}
    for name, res in results.items():
        if name.endswith("/good"):
            assert res.status == "passed", (name, res)
        else:
            assert res.status != "passed", (name, res)
    assert outside_world.untouched()
    # the workers are still healthy afterwards
    assert ex.run_script(GOOD, TEST, "f").status == "passed"


def test_no_isolation_mode_still_guards(tmp_path):
    with Executor(workers=1, allow_code_execution=True, limits=Limits(timeout_s=2, isolate=False)) as e:
        assert e.run_script(GOOD, TEST, "f").status == "passed"
        assert e.run_script(HOSTILE["os_exit"], TEST, "f").status == "crashed"
        assert e.run_script(HOSTILE["infinite_loop"], TEST, "f").status == "timeout"
        assert e.run_script(HOSTILE["fork_bomb_os"], TEST, "f").status == "failed"
