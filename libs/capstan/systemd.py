"""systemd's readiness and watchdog protocol (sd_notify), without libsystemd.

With Type=notify a unit counts as started only when the daemon says READY=1, so units ordered
After= it (a kubelet after its local apiserver, say) start once it really serves, and
`systemctl start` fails if it never does. The protocol is one datagram of newline-separated
KEY=VALUE lines to the unix socket named in $NOTIFY_SOCKET (a path, or '@' for the abstract
namespace). Outside systemd the variable is unset and every call here does nothing.

With WatchdogSec= systemd restarts a daemon that stops sending WATCHDOG=1; `lifecycle` sends it
from the event loop, so a loop that hangs (a blocking call, a busy coroutine) gets the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import structlog

log = structlog.get_logger(__name__)


def notify(*states: str) -> bool:
    """Send states (e.g. "READY=1", "STATUS=serving") to systemd; False when not under a
    notify-aware systemd or when the send fails (readiness is best effort, never fatal)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or not states:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.warning("unsupported NOTIFY_SOCKET address", address=address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto("\n".join(states).encode(), address)
    except OSError as e:
        log.warning("sd_notify failed", error=str(e), states=list(states))
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec=, as sd_watchdog_enabled advises),
    or None when systemd set no watchdog for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for the process that started us, not for us
    return int(usec) / 1e6 / 2


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def lifecycle(status: str = "") -> AsyncIterator[None]:
    """READY=1 on entry (the daemon serves), WATCHDOG=1 pings while inside, STOPPING=1 on exit."""
    notify("READY=1", *([f"STATUS={status}"] if status else []))
    interval = watchdog_interval()
    pinger = asyncio.create_task(_watchdog(interval)) if interval else None
    try:
        yield
    finally:
        notify("STOPPING=1")
        if pinger is not None:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
