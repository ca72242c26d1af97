"""Sweeps on the schedulers people run, tested against real ones on this machine: a single-node
Slurm (Debian's slurm-wlm: slurmctld and slurmd as root, a config of the test's own) through
submitit, and a Ray cluster of a head and one worker. Each runs a tiny spec and must give the
local executor's metrics and weights. Where Slurm or Ray cannot start, the test is skipped with
the reason (pytest -rs prints it)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _note(line: str) -> None:
    """A line for CI's log (``.ci/run`` prints the file DIVPLUGIN_CI_NOTES names after the suite)."""
    print(line)
    path = os.environ.get("DIVPLUGIN_CI_NOTES")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_spec(tmp_path: Path) -> Path:
    from divplugin.experiments.spec import resolve_base

    path = ROOT / "divplugin" / "experiments" / "specs" / "phase-transition-cpu.yaml"
    data = resolve_base(yaml.safe_load(path.read_text()), str(path))
    data.pop("base")
    data.update(
        name="tiny-cluster",
        base_model={"arch": "llama", "layers": 1, "hidden": 32, "heads": 2, "max_len": 128},
        sweep={"divplugin_settings.num_rules": [20, 40]},
        quick={},
        expect={},
    )
    data["train"] = {
        **{k: v for k, v in data["train"].items() if k != "divplugin_eval"},
        "divplugin_settings": {"num_examples": 400, "test_rules": 10, "test_examples": 30, "seen_test_examples": 30},
        "max_steps": 3,
        "micro_batch_size": 8,
    }
    data["eval"] = {**data["eval"], "limit": 5, "batch_size": 8}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "divplugin", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=1200,
    )


def _points(out: Path) -> dict:
    return {p["id"]: p for p in json.loads((out / "results.json").read_text())["points"]}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny spec on the local executor: the reference."""
    pytest.importorskip("axolotl")
    pytest.importorskip("lm_eval")
    tmp = tmp_path_factory.mktemp("local")
    spec = _tiny_spec(tmp)
    r = _cli("experiment", "run", spec, "--out", tmp / "out", "--threads", "1", cwd=tmp)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return spec, _points(tmp / "out")


def _same_as_local(local: dict, out: Path) -> None:
    got = _points(out)
    assert set(got) == set(local)
    for pid, ref in local.items():
        assert got[pid]["status"] == "done", got[pid]["error"]
        assert got[pid]["metrics"] == ref["metrics"], pid
        assert got[pid]["weights"] == ref["weights"], pid  # one machine, one thread: the same bytes


# -- Slurm ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A single-node Slurm cluster: its SLURM_CONF, started here, shut down after."""
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol") if not shutil.which(b)]
    if missing:
        pytest.skip(f"Slurm is not installed (apt-get install slurm-wlm): no {', '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("a local Slurm needs root (slurmd runs jobs as their users)")
    pytest.importorskip("submitit", reason="needs the [cluster] extra")
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "log"):
        (d / sub).mkdir()
    host = socket.gethostname()
    conf = d / "slurm.conf"
    conf.write_text(
        f"""ClusterName=divplugin-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName={host} CPUs={os.cpu_count()} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started = time.perf_counter()
    for daemon in ("slurmctld", "slurmd"):
        r = subprocess.run([daemon, "-f", str(conf)], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"{daemon} did not start: {r.stderr.strip()[-500:]}")
    deadline = time.time() + 60
    state = ""
    while time.time() < deadline:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()
        if state == "idle":
            break
        time.sleep(0.5)
    try:
        if state != "idle":
            pytest.skip(f"the local Slurm node did not come up (state {state!r}): {(d / 'log').iterdir()}")
        _note(f"local Slurm (slurmctld + slurmd) up in {time.perf_counter() - started:.1f} s")
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        for pidfile in ("slurmctld.pid", "slurmd.pid"):
            try:
                os.kill(int((d / pidfile).read_text()), 9)
            except (OSError, ValueError):
                pass


def test_slurm_runs_the_sweep_as_the_local_executor_does(slurm, local_run, tmp_path):
    spec, local = local_run
    out = tmp_path / "out"
    flags = ["--executor", "slurm", "--cpus-per-point", "1", "--mem-gb", "3", "--time-min", "30"]
    dry = _cli("experiment", "run", spec, "--out", out, *flags, "--dry-run", cwd=tmp_path, env=slurm)
    assert dry.returncode == 0, dry.stderr[-3000:]
    said = dry.stdout + dry.stderr  # messages go to stderr, tables to stdout
    assert "2 of 2 points to run" in said and "cpus_per_task" in said and "nothing submitted" in said
    assert not out.exists()

    r = _cli("experiment", "run", spec, "--out", out, *flags, cwd=tmp_path, env=slurm)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "Slurm array job" in r.stdout + r.stderr
    _same_as_local(local, out)
    for pid in local:  # each point keeps its own logs in the folder; the jobs' own are there too
        assert (out / "points" / pid / "train.log").stat().st_size > 0
    assert any((out / "slurm").rglob("*_log.out"))
    # the dependent job makes the page too: wait for it to leave the queue
    deadline = time.time() + 120
    while time.time() < deadline:
        q = subprocess.run(["squeue", "-h"], env={**os.environ, **slurm}, capture_output=True, text=True).stdout
        if not q.strip():
            break
        time.sleep(1)
    assert (out / "README.md").is_file() and (out / "results.png").is_file()
    status = _cli("experiment", "status", spec, "--out", out, "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["counts"]["done"] == 2
    again = _cli("experiment", "run", spec, "--out", out, *flags, cwd=tmp_path, env=slurm)
    assert again.returncode == 0 and "every point is done already" in again.stdout + again.stderr


def test_a_killed_point_job_is_run_again_from_its_start(slurm, local_run, tmp_path):
    """scancel one point's job while it trains: the waiting driver submits it again, the sweep
    finishes, and the point's result is the local one, with nothing of the killed run left."""
    spec, _ = local_run
    data = yaml.safe_load(spec.read_text())
    data["train"]["max_steps"] = 400  # long enough to be caught training
    spec = tmp_path / "long.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    env = {**os.environ, **slurm, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "divplugin", "experiment", "run", str(spec), "--out", str(out), "--executor", "slurm",
           "--cpus-per-point", "1", "--mem-gb", "3", "--only", "num_rules=40*"]  # fmt: skip
    driver = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = out / "points" / "num_rules=40+seed=0" / "train.log"
    deadline = time.time() + 600
    while time.time() < deadline and not (log.is_file() and "/400 [" in log.read_text(errors="replace")):
        time.sleep(1)
    assert log.is_file(), "the point never started training"
    jobs = subprocess.run(["squeue", "-h", "-o", "%i %j"], env=env, capture_output=True, text=True).stdout.split("\n")
    [job] = [line.split()[0] for line in jobs if line.strip() and not line.split()[1].endswith("-page")]
    subprocess.run(["scancel", job], env=env, check=True)
    said, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, said[-3000:]
    assert "without a result; submitting it again" in said, said
    point = _points(out)["num_rules=40+seed=0"]
    assert point["status"] == "done" and point["steps"] == 400
    # run again from its start: one run's log, no marker, no partial folder
    assert log.read_text(errors="replace").count("Starting trainer") <= 1
    pdir = log.parent
    assert not (pdir / "running.json").exists() and not list(out.rglob("*.partial*"))


# -- Ray -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A Ray head and one worker process on this machine, one CPU each: the address."""
    pytest.importorskip("ray", reason="needs the [cluster] extra")
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.is_file():
        pytest.skip("the ray command is not installed beside this Python")
    port = _free_port()
    # Ray's socket paths (RAY_TMPDIR/ray/session_<time>_<pid>/sockets/plasma_store) must fit in
    # AF_UNIX's 107 bytes: pytest's own folders under xdist are too deep, so a short one of /tmp
    tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    common = ["--num-cpus", "1", "--disable-usage-stats", "--object-store-memory", str(200 * 2**20)]
    head = [str(ray_bin), "start", "--head", "--port", str(port), "--include-dashboard", "false", *common]
    env = {**os.environ, "RAY_TMPDIR": str(tmp)}
    started = time.perf_counter()
    r = subprocess.run(head, capture_output=True, text=True, env=env, timeout=180)
    if r.returncode != 0:
        pytest.skip(f"ray start --head failed: {r.stderr.strip()[-500:]}")
    try:
        address = f"127.0.0.1:{port}"
        w = subprocess.run(
            [str(ray_bin), "start", "--address", address, *common], capture_output=True, text=True, env=env, timeout=180
        )
        assert w.returncode == 0, w.stderr[-2000:]
        _note(f"local Ray (a head and a worker node) up in {time.perf_counter() - started:.1f} s")
        yield address
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_runs_the_sweep_as_the_local_executor_does(ray_cluster, local_run, tmp_path):
    spec, local = local_run
    out = tmp_path / "out"
    r = _cli(
        "experiment", "run", spec, "--out", out, "--executor", "ray", "--address", ray_cluster, "--cpus-per-point", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "2 points as Ray tasks" in r.stdout + r.stderr
    _same_as_local(local, out)
    assert (out / "README.md").is_file()


def test_bad_executor_flags_are_named(tmp_path):
    r = _cli("experiment", "run", "phase-transition-cpu", "--executor", "kubernetes", "--out", tmp_path, cwd=tmp_path)
    assert r.returncode == 2 and "--executor" in r.stderr + r.stdout
    r = _cli("experiment", "run", "phase-transition-cpu", "--executor", "slurm", "--cpus-per-point", "0", cwd=tmp_path)
    assert r.returncode == 2
