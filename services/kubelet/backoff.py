"""Crash-loop back-off, as the Kubernetes kubelet does it: the first restart of a container is
immediate, each later one waits twice as long as the one before (10 s, 20 s, ... up to 5 min),
and a container that stays up for twice the maximum starts from scratch again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

INITIAL = 10.0
MAXIMUM = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class CrashLoopBackoff:
    def __init__(
        self,
        initial: float = INITIAL,
        maximum: float = MAXIMUM,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def remaining(self, key: str, finished_at: float) -> float:
        """Seconds to wait before the container may restart (0: restart now). finished_at is
        when the container last exited, on the same clock."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, finished_at + entry.delay - self.clock())

    def remaining_since_update(self, key: str) -> float:
        """Seconds to wait counted from the last restarted() call (Kubernetes'
        IsInBackOffSinceUpdate): for failures with no finish time of their own, such as image
        pulls, which the kubelet backs off the same way as crashing containers."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.last_update + entry.delay - self.clock())

    def restarted(self, key: str) -> None:
        """Record a restart: the next one waits twice as long."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.maximum:
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def forget(self, key_prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(key_prefix)]:
            del self._entries[key]
