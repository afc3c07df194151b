"""`logs`, `exec` and `port-forward`: the streaming pod subresources, proxied by the
apiserver to the pod's kubelet."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import sys
from collections.abc import AsyncIterator
from typing import Any

from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError
from capstan.cli.common import CliError, Session, parse_targets

_SINCE = re.compile(r"^(\d+)(s|m|h)$")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "logs",
        parents=parents,
        help="print a container's logs",
        description="Print the logs of a pod's container.",
    )
    p.add_argument("pod", metavar="POD | pod/POD")
    p.add_argument("container_arg", nargs="?", metavar="CONTAINER")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming new output")
    p.add_argument(
        "-p", "--previous", action="store_true", help="the previous, terminated instance"
    )
    p.add_argument("--tail", type=int, default=-1, help="only the last N lines")
    p.add_argument("--since", default="", help="only newer than 5s, 2m, 3h")
    p.add_argument("--since-time", default="", help="only newer than this RFC 3339 time")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("--limit-bytes", type=int, default=0)
    p.set_defaults(handler=run_logs)

    e = sub.add_parser(
        "exec",
        parents=parents,
        help="run a command in a container",
        description="Run a command in a container: `exec POD [-c C] [-it] -- CMD`. "
        "The exit code is the command's.",
    )
    e.add_argument("pod", metavar="POD | pod/POD")
    e.add_argument("-c", "--container", default="")
    e.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    e.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    e.set_defaults(handler=run_exec)

    f = sub.add_parser(
        "port-forward",
        parents=parents,
        help="forward local ports to a pod",
        description="Forward local ports to a pod: `port-forward POD 8080:80 9090`."
        " Listens on 127.0.0.1 only.",
    )
    f.add_argument("pod", metavar="POD | pod/POD")
    f.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE")
    f.add_argument("--address", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"])
    f.set_defaults(handler=run_port_forward)


def pod_name(text: str) -> str:
    if "/" in text:
        targets = parse_targets([text])
        if targets[0].kind.kind != "Pod":
            raise CliError(f"only pods are supported here, not {targets[0].kind.plural}")
        return targets[0].names[0]
    return text


def since_seconds(text: str) -> int:
    m = _SINCE.match(text)
    if not m:
        raise CliError(f'invalid --since "{text}": use a duration like 10s, 5m or 2h')
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


async def stream_logs(
    session: Session,
    pod: str,
    namespace: str,
    container: str,
    *,
    follow: bool = False,
    opts: core_pb2.PodLogOptions | None = None,
) -> None:
    options = opts or core_pb2.PodLogOptions()
    options.namespace, options.name = namespace, pod
    options.container = container or options.container
    options.follow = follow or options.follow
    out = sys.stdout.buffer
    async for chunk in session.client.resource("Pod").logs(options):
        out.write(chunk)
        out.flush()


async def run_logs(session: Session, args: argparse.Namespace) -> int:
    opts = core_pb2.PodLogOptions(
        previous=args.previous, timestamps=args.timestamps, follow=args.follow
    )
    if args.tail >= 0:
        opts.tail_lines = args.tail
    if args.since:
        opts.since_seconds = since_seconds(args.since)
    if args.since_time:
        try:
            opts.since_time.FromJsonString(args.since_time)
        except ValueError as e:
            raise CliError(f'invalid --since-time "{args.since_time}": {e}') from e
    if args.limit_bytes:
        opts.limit_bytes = args.limit_bytes
    container = args.container or args.container_arg or ""
    await stream_logs(session, pod_name(args.pod), session.namespace, container, opts=opts)
    return 0


async def _stdin_chunks() -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        data = await reader.read(32 * 1024)
        if not data:
            return
        yield data


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Any:
    """Raw mode for -t: keystrokes go to the remote terminal unprocessed."""
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def run_exec(session: Session, args: argparse.Namespace) -> int:
    command = list(args.dash_args)
    if not command:
        raise CliError("you must specify at least one command for the container (after --)")
    options = core_pb2.ExecOptions(
        namespace=session.namespace,
        name=pod_name(args.pod),
        container=args.container,
        command=command,
        stdin=args.stdin,
        stdout=True,
        stderr=not args.tty,
        tty=args.tty,
    )

    async def requests() -> AsyncIterator[core_pb2.ExecRequest]:
        yield core_pb2.ExecRequest(options=options)
        if args.tty:
            size = shutil.get_terminal_size()
            yield core_pb2.ExecRequest(
                resize=core_pb2.TerminalSize(width=size.columns, height=size.lines)
            )
        if args.stdin:
            async for data in _stdin_chunks():
                yield core_pb2.ExecRequest(stdin=data)
            yield core_pb2.ExecRequest(close_stdin=True)

    code = 0
    with _raw_terminal(args.tty and args.stdin):
        async for resp in session.client.resource("Pod").exec(requests()):
            which = resp.WhichOneof("response")
            if which == "stdout":
                sys.stdout.buffer.write(resp.stdout)
                sys.stdout.buffer.flush()
            elif which == "stderr":
                sys.stderr.buffer.write(resp.stderr)
                sys.stderr.buffer.flush()
            elif which == "result":
                if resp.result.error:
                    raise CliError(resp.result.error)
                code = resp.result.exit_code
    return code


def parse_port_spec(spec: str) -> tuple[int, int]:
    """`8080:80` (local:remote), `8080` (same on both) or `:80` (any free local port)."""
    local, sep, remote = spec.partition(":")
    if not sep:
        local, remote = spec, spec
    try:
        lp = int(local) if local else 0
        rp = int(remote)
    except ValueError as e:
        raise CliError(f'invalid port "{spec}": expected [LOCAL:]REMOTE') from e
    if not (0 <= lp < 65536 and 0 < rp < 65536):
        raise CliError(f'invalid port "{spec}": out of range')
    return lp, rp


async def _forward(
    session: Session,
    pod: str,
    namespace: str,
    port: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    async def requests() -> AsyncIterator[core_pb2.PortForwardRequest]:
        yield core_pb2.PortForwardRequest(
            options=core_pb2.PortForwardOptions(namespace=namespace, name=pod, port=port)
        )
        while True:
            data = await reader.read(64 * 1024)
            if not data:
                return
            yield core_pb2.PortForwardRequest(data=data)

    try:
        async for resp in session.client.resource("Pod").port_forward(requests()):
            if resp.WhichOneof("response") == "data":
                writer.write(resp.data)
                await writer.drain()
            elif resp.WhichOneof("response") == "error":
                print(f"error forwarding port {port} to pod {pod}: {resp.error}", file=sys.stderr)
    except ApiError as e:
        print(f"error forwarding port {port} to pod {pod}: {e.message}", file=sys.stderr)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def run_port_forward(session: Session, args: argparse.Namespace) -> int:
    pod = pod_name(args.pod)
    namespace = session.namespace
    specs = [parse_port_spec(s) for s in args.ports]
    # Fail early, like kubectl, if the pod does not exist or is not running.
    obj: Any = await session.client.resource("Pod").get(pod, namespace)
    if obj.status.phase != "Running":
        raise CliError(
            f"unable to forward port because pod is not running. Current status="
            f"{obj.status.phase or 'Pending'}"
        )
    servers = []
    host = "::1" if args.address == "::1" else "127.0.0.1"
    for local, remote in specs:

        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, remote: int = remote) -> Any:
            print(f"Handling connection for {remote}", flush=True)
            return _forward(session, pod, namespace, remote, r, w)

        server = await asyncio.start_server(handler, host, local)
        bound = server.sockets[0].getsockname()[1]
        print(f"Forwarding from {host}:{bound} -> {remote}", flush=True)
        servers.append(server)
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers))
    finally:
        for s in servers:
            s.close()
    return 0
