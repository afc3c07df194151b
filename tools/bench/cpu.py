"""CPU seconds spent by a process (from /proc), so each phase can say who was busy: on two
shared cores a throughput number means little without knowing whether the apiserver, the
store or the load generator was the one using them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of pid (its threads included)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = stat.rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used (the first line of /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


@dataclass
class CpuMeter:
    """CPU use of named processes between start() and stop(), as cores busy on average,
    plus "others": what the rest of the (shared) machine used meanwhile."""

    pids: dict[str, int]

    def __post_init__(self) -> None:
        self._start: dict[str, float] = {}
        self._wall = 0.0
        self._machine = 0.0

    def start(self, now: float) -> None:
        self._wall = now
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_cpu_seconds()

    def stop(self, now: float) -> dict[str, float]:
        wall = max(now - self._wall, 1e-9)
        busy = {
            name: (cpu_seconds(pid) - self._start[name]) / wall for name, pid in self.pids.items()
        }
        machine = (machine_cpu_seconds() - self._machine) / wall
        busy["others"] = max(0.0, machine - sum(busy.values()))
        return {name: round(cores, 2) for name, cores in busy.items()}
