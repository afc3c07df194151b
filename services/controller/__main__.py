"""capstan-controller: runs the reconcile loops of the registry while it holds the
controller Lease (active/standby), all on one client, one set of shared informers and one
event recorder."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

import structlog
from capstan.client import Controller, EventRecorder, LeaderContext, SharedInformerFactory
from capstan.daemon import Runtime, base_parser, parse_map, run_daemon, run_leader_elected

from controller import registry
from controller.cluster_flags import add_cluster_flags
from controller.registry import ControllerContext

log = structlog.get_logger(__name__)


def parser() -> argparse.ArgumentParser:
    p = base_parser(
        "capstan-controller", "capstan's reconcile loops (kube-controller-manager)",
        leader_election=True,
    )  # fmt: skip
    c = p.add_argument_group("controllers")
    c.add_argument(
        "--controllers", default="*",
        help="loops to run: '*' (every loop on by default), 'name' adds one, '-name' "
        f"removes one. Known: {', '.join(registry.CONTROLLERS)}",
    )  # fmt: skip
    c.add_argument(
        "--concurrent-syncs", action="append", default=[], metavar="NAME=N",
        help="workers for a loop, e.g. replicaset=10,deployment=5 (repeatable)",
    )  # fmt: skip
    c.add_argument(
        "--default-concurrent-syncs", type=int, default=0,
        help="workers for loops not named in --concurrent-syncs (0: each loop's default)",
    )  # fmt: skip
    c.add_argument(
        "--resync-period", type=float, default=0.0,
        help="seconds between informer resyncs (0: never; loops are event-driven)",
    )  # fmt: skip
    c.add_argument(
        "--job-pod-failure-backoff", type=float, default=10.0,
        help="seconds a Job waits before replacing its first failed pod (doubles per failure)",
    )  # fmt: skip
    c.add_argument(
        "--informer-sync-timeout", type=float, default=60.0,
        help="seconds to wait for the first List of every informer",
    )  # fmt: skip
    add_cluster_flags(p)
    return p


def build(ctx: ControllerContext, names: Sequence[str]) -> dict[str, Controller]:
    out: dict[str, Controller] = {}
    for name in names:
        out[name] = registry.CONTROLLERS[name].load()(ctx)
    return out


async def run_controllers(runtime: Runtime, names: Sequence[str], leader: LeaderContext) -> None:
    args = runtime.args
    informers = SharedInformerFactory(runtime.client, resync_period=args.resync_period)
    recorder = EventRecorder(runtime.client.events, "controller-manager")
    concurrency = {k: int(v) for k, v in parse_map(args.concurrent_syncs).items()}
    ctx = ControllerContext(runtime.client, informers, recorder, args, concurrency)
    controllers = build(ctx, names)
    recorder.start()
    informers.start()
    tasks = [
        asyncio.create_task(c.run(sync_timeout=args.informer_sync_timeout), name=f"loop-{n}")
        for n, c in controllers.items()
    ]
    log.info("controllers running", controllers=list(controllers), leading=leader.is_leading())
    stopping = asyncio.create_task(runtime.stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopping and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        stopping.cancel()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await informers.stop()
        await recorder.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        names = registry.select(args.controllers)
    except ValueError as e:
        print(f"error: --controllers: {e}", file=sys.stderr)
        return 2
    try:
        parse_map(args.concurrent_syncs)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2

    async def lead(runtime: Runtime) -> None:
        await run_leader_elected(runtime, lambda le: run_controllers(runtime, names, le))

    return run_daemon(args, lead)


if __name__ == "__main__":
    sys.exit(main())
