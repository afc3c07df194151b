"""capstan-scheduler: active/standby, schedules only while it holds the Lease."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from capstan.client import LeaderContext
from capstan.daemon import Runtime, base_parser, run_daemon, run_leader_elected

from scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Options, Scheduler


def build_parser() -> argparse.ArgumentParser:
    p = base_parser("capstan-scheduler", "Binds pending pods to nodes.", leader_election=True)
    s = p.add_argument_group("scheduling")
    s.add_argument(
        "--scheduler-name", default=DEFAULT_SCHEDULER_NAME,
        help="schedule only pods whose spec.schedulerName is this",
    )  # fmt: skip
    s.add_argument(
        "--percentage-of-nodes-to-score", type=int, default=0,
        help="feasible nodes to find before scoring, in percent of all nodes (0: adaptive)",
    )  # fmt: skip
    s.add_argument(
        "--max-binds-in-flight", type=int, default=128,
        help="Bindings outstanding at once while the next pods are scheduled",
    )  # fmt: skip
    s.add_argument("--pod-initial-backoff-seconds", type=float, default=1.0)
    s.add_argument("--pod-max-backoff-seconds", type=float, default=10.0)
    return p


def options_from_args(args: argparse.Namespace) -> Options:
    return Options(
        scheduler_name=args.scheduler_name,
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
        max_binds_in_flight=max(1, args.max_binds_in_flight),
        initial_backoff=args.pod_initial_backoff_seconds,
        max_backoff=args.pod_max_backoff_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = options_from_args(args)

    async def serve(runtime: Runtime) -> None:
        async def lead(ctx: LeaderContext) -> None:
            # Fresh caches and queue per term: nothing half-done carries over from a
            # previous term, and the new leader starts from what the apiserver says.
            await Scheduler(runtime.client, options).run(ctx)

        await run_leader_elected(runtime, lead)

    return run_daemon(args, serve)


if __name__ == "__main__":
    raise SystemExit(main())
