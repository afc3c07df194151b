"""A real apiserver for tests, on a free loopback port, in-process (same event loop, real
gRPC over TCP) or as a separate process (for kill/restart and multi-replica tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from apiserver.server import ApiServer, Config
from capstan.grpc_server import channel_options
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.etcd import free_port


@dataclass
class RunningApiserver:
    address: str
    store_url: str
    server: ApiServer | None = None
    process: asyncio.subprocess.Process | None = None
    metrics_port: int = 0
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def channel(self) -> grpc.aio.Channel:
        ch = grpc.aio.insecure_channel(self.address, options=channel_options())
        self.channels.append(ch)
        return ch

    def stub(self, stub_cls: Any) -> Any:
        return stub_cls(self.channel())

    async def close_channels(self) -> None:
        for ch in self.channels:
            await ch.close()
        self.channels.clear()


async def wait_healthy(address: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with grpc.aio.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                r = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"apiserver at {address} did not become healthy")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def run_apiserver(store_url: str, **config: Any) -> AsyncIterator[RunningApiserver]:
    """In-process apiserver with a real gRPC server on a free port."""
    address = f"127.0.0.1:{free_port()}"
    cfg = Config(listen=[address], store=store_url, metrics_listen="127.0.0.1:0", **config)
    server = await ApiServer.open(cfg)
    await server.start()
    running = RunningApiserver(address, store_url, server=server)
    if server.metrics is not None:
        running.metrics_port = server.metrics.port
    try:
        yield running
    finally:
        await running.close_channels()
        await server.stop()


@contextlib.asynccontextmanager
async def apiserver_process(
    store_url: str, *extra_args: str, log_path: Path | None = None
) -> AsyncIterator[RunningApiserver]:
    """capstan-apiserver as its own process; stopped by PID (SIGTERM, then SIGKILL)."""
    address = f"127.0.0.1:{free_port()}"
    metrics_port = free_port()
    log_file = log_path or Path(tempfile.mkstemp(prefix="capstan-apiserver-", suffix=".log")[1])
    with log_file.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver",
            "--listen", address, "--insecure", "--store", store_url,
            "--metrics-listen", f"127.0.0.1:{metrics_port}", "--log-format", "json",
            *extra_args,
            stdout=log, stderr=log, env={**os.environ},
        )  # fmt: skip
    running = RunningApiserver(address, store_url, process=process, metrics_port=metrics_port)
    try:
        await wait_healthy(address)
        yield running
    finally:
        await running.close_channels()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
