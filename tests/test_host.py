"""The cores divplugin sizes its pools and threads by: CPU affinity, capped by the cgroup quota."""

import os

import pytest

from divplugin.core import host


def _cgroup(tmp_path, proc_lines: str, files: dict[str, str]):
    (tmp_path / "proc_cgroup").write_text(proc_lines)
    root = tmp_path / "sys"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root, tmp_path / "proc_cgroup"


@pytest.fixture
def sixty_four(monkeypatch):
    """A 64-core host whose affinity allows every core."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)


def test_a_cgroup_v2_quota_caps_the_cores(tmp_path, sixty_four):
    root, proc = _cgroup(tmp_path, "0::/job/42\n", {"job/42/cpu.max": "200000 100000\n"})
    assert host.cgroup_cpu_limit(root, proc) == 2.0
    assert host.usable_cores(root, proc) == 2


def test_a_cgroup_v1_quota_caps_the_cores(tmp_path, sixty_four):
    root, proc = _cgroup(
        tmp_path,
        "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n",
        {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"},
    )
    assert host.cgroup_cpu_limit(root, proc) == 1.5
    assert host.usable_cores(root, proc) == 1  # a second thread would wait half the time


def test_inside_a_cgroup_namespace_the_root_holds_the_quota(tmp_path, sixty_four):
    root, proc = _cgroup(tmp_path, "0::/\n", {"cpu.max": "400000 100000\n"})
    assert host.usable_cores(root, proc) == 4


def test_no_quota_leaves_the_affinity(tmp_path, sixty_four, monkeypatch):
    root, proc = _cgroup(
        tmp_path,
        "0::/a\n1:cpu:/\n",
        {"a/cpu.max": "max 100000\n", "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert host.cgroup_cpu_limit(root, proc) is None
    assert host.usable_cores(root, proc) == 64
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5, 9}, raising=False)  # taskset
    assert host.usable_cores(root, proc) == 3
    assert host.usable_cores(tmp_path / "nothing", tmp_path / "none") == 3  # no cgroup files at all


def test_the_driver_shares_out_the_usable_cores_not_the_hosts(monkeypatch):
    """In a container limited to 2 CPUs on a 64-core host, two points get one thread each, and
    free cores count the busy share against the 2."""
    from divplugin.experiments import slot_env

    monkeypatch.setattr(host, "usable_cores", lambda *a: 2)
    import divplugin.experiments.sweep as ex

    monkeypatch.setattr(ex, "usable_cores", lambda *a: 2)
    assert slot_env(0, 2, None, None)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setattr(host, "busy_share", lambda window=1.0: 0.5)  # the host half busy
    assert host.busy_cores() == 1.0 and host.free_cores() == 1
    monkeypatch.setattr(host, "busy_share", lambda window=1.0: 0.0)
    assert host.free_cores() == 2
