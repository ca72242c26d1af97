"""How many cores this process may use, and how many of them other work leaves free.

One rule for every part of divplugin that sizes a pool or a thread count: the CPUs the
process's affinity allows, capped by the CPU quota of its cgroup (a container limited to 2
CPUs on a 64-core host gets 2, not 64: threads beyond the quota wait on each other and, when
they spin, crawl). Imports nothing from divplugin.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPUs this process's cgroup may use (quota / period), or None where no quota is set.

    cgroup v2 (``cpu.max``: "QUOTA PERIOD" or "max PERIOD") and v1 (``cpu.cfs_quota_us``, -1
    for none, over ``cpu.cfs_period_us``), in the process's own cgroup and at the root of the
    mount (which is the process's own inside a container's cgroup namespace); the smallest wins.
    """
    places: list[tuple[Path, str]] = []  # (folder, version)
    for line in (_read(proc_cgroup) or "").splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        rel = rel.lstrip("/")
        if hier == "0" and controllers == "":
            places.append((root / rel, "v2"))
        elif "cpu" in controllers.split(","):
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                places.append((mount / rel, "v1"))
    places += [(root, "v2"), (root / "cpu", "v1"), (root / "cpu,cpuacct", "v1")]
    limits = []
    for folder, version in dict.fromkeys(places):
        if version == "v2":
            fields = (_read(folder / "cpu.max") or "").split()
            if (
                len(fields) == 2
                and fields[0] != "max"
                and fields[0].isdigit()
                and fields[1].isdigit()
                and int(fields[1])
            ):
                limits.append(int(fields[0]) / int(fields[1]))
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            if (
                quota
                and period
                and quota.lstrip("-").isdigit()
                and period.isdigit()
                and int(quota) > 0
                and int(period) > 0
            ):
                limits.append(int(quota) / int(period))
    return min(limits) if limits else None


def affinity_cores() -> int:
    """The CPUs the process's affinity allows (all of the machine's where it cannot be read)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def usable_cores(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The cores this process may use: its affinity, capped by its cgroup's CPU quota (a quota
    of 1.5 CPUs gives 1: a second thread would wait half the time), at least 1."""
    cores = affinity_cores()
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit + 1e-9)))
    return max(1, cores)


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all the machine's CPUs since boot, from ``/proc/stat``."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(window: float = 1.0) -> float:
    """The share of the machine's CPU time (0-1) used over ``window`` seconds, from
    ``/proc/stat``, else the one-minute load average over the cores; 0 when neither reads."""
    before = _cpu_ticks()
    if before is not None:
        time.sleep(window)
        after = _cpu_ticks()
        if after is not None and after[1] > before[1]:
            return (after[0] - before[0]) / (after[1] - before[1])
    try:
        return min(1.0, os.getloadavg()[0] / max(1, os.cpu_count() or 1))
    except (AttributeError, OSError):
        return 0.0


def busy_cores(window: float = 1.0) -> float:
    """Of the cores this process may use, how many other work keeps busy now (the machine's
    busy share applied to them)."""
    return usable_cores() * busy_share(window)


def free_cores(window: float = 1.0) -> int:
    """Usable cores no other work is using now (at least 1): what threads may take without
    sharing a core, where threads that wait by spinning slow each other down many times over."""
    cores = usable_cores()
    return max(1, min(cores, int(cores - cores * busy_share(window) + 0.5)))
