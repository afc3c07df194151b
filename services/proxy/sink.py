"""The service CIDR routed to a local sink device.

Without it, a packet to a cluster IP that no rule rewrote follows the default route off the
node (and here: off the machine). With the whole CIDR routed to a local device, the route
lookup a local connect() needs before DNAT still succeeds, DNAT then re-routes the packets it
rewrites, and whatever is left is caught by the REJECT for the service CIDR (or dies on a
device with nothing attached). The kernel here has no `dummy` link type, so the sink is a
bridge with no ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

DEFAULT_SINK = "capstan-sink"


async def _ip(args: Sequence[str], prefix: Sequence[str] = (), check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        "ip",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode() if proc.returncode == 0 else ""


async def ensure_sink(cidr: str, device: str = DEFAULT_SINK, prefix: Sequence[str] = ()) -> None:
    """Idempotent: create the device if missing, bring it up, (re)point the CIDR at it."""
    if not await _ip(["-o", "link", "show", "dev", device], prefix, check=False):
        await _ip(["link", "add", device, "type", "bridge"], prefix)
    await _ip(["link", "set", device, "up"], prefix)
    await _ip(["route", "replace", cidr, "dev", device], prefix)


async def remove_sink(cidr: str, device: str = DEFAULT_SINK, prefix: Sequence[str] = ()) -> bool:
    """Remove the route and the device if they are there; True if anything was removed."""
    removed = False
    if await _ip(["-o", "route", "show", cidr, "dev", device], prefix, check=False):
        await _ip(["route", "del", cidr, "dev", device], prefix, check=False)
        removed = True
    if await _ip(["-o", "link", "show", "dev", device], prefix, check=False):
        await _ip(["link", "del", device], prefix)
        removed = True
    return removed
