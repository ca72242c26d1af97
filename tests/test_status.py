"""`divplugin experiment status`: each point's state read from the results folder alone."""

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict

from divplugin.experiments import load_spec
from divplugin.experiments.runner import RUNNING, PointResult, clear_running, mark_running, point_hash, point_id
from divplugin.experiments.status import counts, point_status, sweep_status


def _result(spec, point, out, status="done", digest=None, error=""):
    d = out / "points" / point_id(point)
    d.mkdir(parents=True, exist_ok=True)
    r = PointResult(
        point_id(point),
        point.values,
        status,
        seed=point.seed,
        hash=digest or point_hash(spec, point, out, {}),
        error=error,
    )
    (d / "result.json").write_text(json.dumps(asdict(r)))
    return d


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_every_state_is_read_from_the_folder(tmp_path):
    spec = load_spec("phase-transition-cpu")
    p20, p100, p400, p2000 = spec.points()
    _result(spec, p20, tmp_path)
    _result(spec, p100, tmp_path, "failed", error="axolotl train exited with 1:\nTraceback ...")
    # 400: running here (this process), its log moving; 2000: another config's result
    d = tmp_path / "points" / point_id(p400)
    d.mkdir(parents=True)
    mark_running(d, "train")
    (d / "train.yml").write_text("{}")
    steps = spec.train["max_steps"]  # a progress bar of another total is not this config's
    (d / "train.log").write_text(f" 37%|███▋      | 1111/{steps} [10:00<17:00,  1.85it/s]")
    _result(spec, p2000, tmp_path, digest="0123456789abcdef")
    states = {s.id: s for s in sweep_status(spec, tmp_path, {})}
    assert {k: s.state for k, s in states.items()} == {
        point_id(p20): "done",
        point_id(p100): "failed",
        point_id(p400): "running",
        point_id(p2000): "stale",
    }
    assert states[point_id(p100)].error == "axolotl train exited with 1:"
    running = states[point_id(p400)]
    assert running.progress == f"train 1,111/{steps:,}" and running.host and running.started <= time.time()
    assert counts(list(states.values())) == {
        "done": 1,
        "failed": 1,
        "running": 1,
        "lost": 0,
        "stale": 1,
        "pending": 0,
    }
    # the eval phase keeps the start time
    started = running.started
    mark_running(d, "eval")
    again = point_status(spec, p400, tmp_path, {})
    assert again.progress == "eval" and again.started == started
    # its result written, the marker goes: done wins
    clear_running(d)
    _result(spec, p400, tmp_path)
    assert point_status(spec, p400, tmp_path, {}).state == "done" and not (d / RUNNING).exists()


def test_a_started_point_whose_process_is_gone_or_quiet_is_lost(tmp_path):
    spec = load_spec("phase-transition-cpu")
    point = spec.points()[0]
    d = tmp_path / "points" / point_id(point)
    d.mkdir(parents=True)
    assert point_status(spec, point, tmp_path, {}).state == "pending"
    mark_running(d, "train")
    info = json.loads((d / RUNNING).read_text())
    (d / RUNNING).write_text(json.dumps({**info, "pid": _dead_pid()}))  # killed on this host
    assert point_status(spec, point, tmp_path, {}).state == "lost"
    # on another host: only the log's age tells; an hour of silence is a lost job
    (d / RUNNING).write_text(json.dumps({**info, "host": "node-7"}))
    assert point_status(spec, point, tmp_path, {}).state == "running"
    hour_ago = time.time() - 3600
    os.utime(d / RUNNING, (hour_ago, hour_ago))
    assert point_status(spec, point, tmp_path, {}).state == "lost"
    assert point_status(spec, point, tmp_path, {}, stale_after=7200).state == "running"


def test_status_command_prints_states_and_json(cli, tmp_path):
    spec = load_spec("phase-transition-cpu")
    _result(spec, spec.points()[0], tmp_path)
    r = cli("experiment", "status", "phase-transition-cpu", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert "1 done, 3 pending" in r.output and "num_rules=20+seed=0" in r.output
    r = cli("experiment", "status", "phase-transition-cpu", "--out", tmp_path, "--json", "--only", "num_rules=2*")
    data = json.loads(r.output)
    assert data["counts"]["done"] == 1 and [p["id"] for p in data["points"]] == [
        "num_rules=20+seed=0",
        "num_rules=2000+seed=0",
    ]
    r = cli("experiment", "status", "phase-transition-cpu", "--out", tmp_path / "nowhere")
    assert r.exit_code == 2 and "no such results folder" in r.output
    r = cli("experiment", "status", "phase-transition-cpu", "--out", tmp_path, "--only", "num_rules=7")
    assert r.exit_code == 2 and "matches no point" in r.output
