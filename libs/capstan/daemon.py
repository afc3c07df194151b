"""What every client daemon (scheduler, controller, kubelet, proxy) shares: the flags for
reaching the apiserver, logging, metrics, signal handling and (optionally) leader election.

A daemon declares its own flags on the parser this module builds, then hands a coroutine
to `run_daemon`; leader-elected daemons hand it to `run_leader_elected` instead, which runs
the coroutine only while this process holds the Lease and cancels it the moment the lease
is lost (a loop that lost the lease stops acting before another can act).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from capstan import eventloop, logs, systemd
from capstan.client import Client, ClientTLS, LeaderContext, LeaderElectionConfig, LeaderElector
from capstan.metrics import MetricsServer

log = structlog.get_logger(__name__)


def base_parser(
    prog: str, description: str, *, leader_election: bool = False
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    g = p.add_argument_group("apiserver connection")
    g.add_argument(
        "--server",
        default=os.environ.get("CAPSTAN_SERVER", "127.0.0.1:6443"),
        help="apiserver address(es), comma-separated: host:port or unix:///path "
        "(env CAPSTAN_SERVER)",
    )
    g.add_argument("--certificate-authority", help="CA bundle to verify the apiserver")
    g.add_argument("--client-certificate", help="client certificate for mTLS")
    g.add_argument("--client-key", help="client key for mTLS")
    g.add_argument("--tls-server-name", help="expected name in the apiserver's certificate")
    g.add_argument(
        "--insecure", action="store_true",
        help="plaintext to TCP apiserver addresses (unix sockets are always plaintext)",
    )  # fmt: skip
    o = p.add_argument_group("operation")
    o.add_argument(
        "--metrics-listen", default="127.0.0.1:0",
        help="host:port for /metrics, /healthz, /readyz ('' disables; port 0 picks one)",
    )  # fmt: skip
    o.add_argument("--log-format", choices=["auto", "console", "json"], default="auto")
    o.add_argument("--log-level", default="info")
    if leader_election:
        le = p.add_argument_group("leader election")
        le.add_argument(
            "--leader-elect", action=argparse.BooleanOptionalAction, default=True,
            help="run active/standby on a Lease (default on)",
        )  # fmt: skip
        le.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
        le.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
        le.add_argument("--leader-elect-retry-period", type=float, default=2.0)
        le.add_argument("--leader-elect-resource-name", default=prog.removeprefix("capstan-"))
        le.add_argument("--leader-elect-resource-namespace", default="kube-system")
        le.add_argument(
            "--leader-elect-identity", default="",
            help="holder identity (default hostname_pid)",
        )  # fmt: skip
    return p


def client_from_args(args: argparse.Namespace) -> Client:
    servers = [s.strip() for s in str(args.server).split(",") if s.strip()]
    if not servers:
        raise SystemExit("error: --server names no apiserver")
    tls: ClientTLS | None = None
    if args.certificate_authority or args.client_certificate:
        tls = ClientTLS(
            args.certificate_authority, args.client_certificate, args.client_key,
            args.tls_server_name,
        )  # fmt: skip
    elif not args.insecure and any(not s.startswith("unix:") for s in servers):
        raise SystemExit(
            "error: no --certificate-authority for a TCP apiserver address: pass it, "
            "or --insecure for plaintext"
        )
    return Client(servers, tls=tls)


@dataclass
class Runtime:
    """What a daemon's main coroutine gets: its client, parsed flags, and a stop event."""

    client: Client
    args: argparse.Namespace
    stop: asyncio.Event
    metrics: MetricsServer | None


Main = Callable[[Runtime], Coroutine[Any, Any, None]]


def run_daemon(
    args: argparse.Namespace, main: Main, *, ready: Callable[[], bool] | None = None
) -> int:
    """Run main until SIGTERM/SIGINT (it should return once runtime.stop is set)."""
    logs.configure(args.log_format, args.log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        metrics = None
        if args.metrics_listen:
            host, _, port = str(args.metrics_listen).rpartition(":")
            metrics = MetricsServer(host or "127.0.0.1", int(port), ready=ready)
            await metrics.start()
        client = client_from_args(args)
        try:
            task = asyncio.create_task(main(Runtime(client, args, stop, metrics)))
            stopping = asyncio.create_task(stop.wait())
            # Started: systemd (Type=notify) releases the units ordered after this one.
            async with systemd.lifecycle():
                done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if task not in done:
                    # Give main a moment to finish on its own (it watches stop), then cancel.
                    try:
                        await asyncio.wait_for(asyncio.shield(task), 10)
                    except TimeoutError:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                else:
                    stopping.cancel()
                    task.result()
        finally:
            await client.close()
            if metrics is not None:
                await metrics.stop()

    eventloop.run(serve())
    return 0


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"


async def run_leader_elected(
    runtime: Runtime, lead: Callable[[LeaderContext], Coroutine[Any, Any, None]]
) -> None:
    """Run lead(ctx) while this process leads; keep campaigning until stop is set.

    With --no-leader-elect, lead runs at once and for good (one instance only)."""
    args = runtime.args
    if not getattr(args, "leader_elect", False):
        await lead(LeaderContext.always())
        return
    config = LeaderElectionConfig(
        name=args.leader_elect_resource_name,
        identity=args.leader_elect_identity or default_identity(),
        namespace=args.leader_elect_resource_namespace,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )
    while not runtime.stop.is_set():
        elector = LeaderElector(
            runtime.client.leases,
            config,
            on_started_leading=lead,
            on_new_leader=lambda who: log.info("leader is", holder=who),
        )
        run = asyncio.create_task(elector.run())
        stopping = asyncio.create_task(runtime.stop.wait())
        await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            stopping.cancel()
            return
        stopping.cancel()
        run.result()
        log.warning("lost leadership; campaigning again")


def split_csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """key=value,key=value (flags like --node-labels)."""
    out: dict[str, str] = {}
    for item in items:
        for pair in split_csv(item):
            key, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(f"error: {pair!r} is not key=value")
            out[key] = value
    return out
