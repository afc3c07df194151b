"""A leader-election candidate, run as its own process by test_leaderelection: while it
leads it appends "<identity> <unix time>" to a file every 50 ms (checking is_leading()
right before each write, as real work must)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from capstan.client import Client, LeaderContext, LeaderElectionConfig, LeaderElector


def append(path: Path, line: str) -> None:
    # One short O_APPEND write: atomic next to the other candidate's, and too small to
    # be worth a thread.
    with path.open("a") as f:
        f.write(line)


async def main(args: argparse.Namespace) -> None:
    out = Path(args.out)

    async def lead(ctx: LeaderContext) -> None:
        while True:
            if ctx.is_leading():
                append(out, f"{args.identity} {time.time():.3f}\n")
            await asyncio.sleep(0.05)

    config = LeaderElectionConfig(
        name="hand-over",
        namespace=args.namespace,
        identity=args.identity,
        lease_duration=args.lease,
        renew_deadline=args.renew,
        retry_period=args.retry,
    )
    async with Client([args.server], default_timeout=5) as client:
        await LeaderElector(client.leases, config, on_started_leading=lead).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--renew", type=float, default=2.0)
    parser.add_argument("--retry", type=float, default=0.5)
    asyncio.run(main(parser.parse_args()))
