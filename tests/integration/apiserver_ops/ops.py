"""Helpers shared by the apiserver operability tests: valid objects to seed, a raw HTTP
GET (no HTTP client library is a dependency), and reading a status from a raw call."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
from capstan.api.core.v1 import core_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.etcd import free_port


def pod(namespace: str, name: str, **labels: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = namespace
    p.metadata.labels.update(labels or {"app": "web"})
    c = p.spec.containers.add(name="c", image="nginx:1.25")
    c.ports.add(container_port=80)
    return p


def service(namespace: str, name: str) -> core_pb2.Service:
    s = core_pb2.Service()
    s.metadata.name = name
    s.metadata.namespace = namespace
    s.spec.selector["app"] = "web"
    port = s.spec.ports.add(name="http", port=80, protocol="TCP")
    port.target_port.number_value = 80
    return s


def namespace_obj(name: str) -> core_pb2.Namespace:
    ns = core_pb2.Namespace()
    ns.metadata.name = name
    return ns


async def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; returns (status code, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode()


@contextlib.asynccontextmanager
async def apiserver_with_args(
    args: Sequence[str], *, credentials: grpc.ChannelCredentials | None, log_path: Path
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """capstan-apiserver with exactly these flags (plus --listen) as its own process, ready
    once Health answers SERVING over the given credentials; stopped by PID."""
    address = f"127.0.0.1:{free_port()}"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver", "--listen", address, *args,
            stdout=log, stderr=log,
        )  # fmt: skip
    try:
        await _wait_serving(address, credentials, process)
        yield address, process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


def open_channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, credentials)


async def _wait_serving(
    address: str, credentials: grpc.ChannelCredentials | None, process: asyncio.subprocess.Process
) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    async with open_channel(address, credentials) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"apiserver exited with {process.returncode} before serving")
            try:
                r = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"apiserver at {address} did not become healthy")
            await asyncio.sleep(0.1)
