"""The processes a benchmark starts: the apiserver as its own process (so its CPU and memory
are its own, not the load generator's), optionally under cProfile, stopped by PID.

etcd comes from tests.support.etcd: the same launcher the integration tests use (free
loopback ports, a temporary data dir, stopped by PID), rather than a second copy of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.etcd import free_port


@dataclass(frozen=True)
class ApiserverProcess:
    address: str
    pid: int
    log_path: Path

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) from /proc, in KiB."""
        wanted = ("VmRSS", "VmHWM")
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in wanted:
                found[name] = int(value.split()[0])
        return found


async def wait_serving(address: str, process: asyncio.subprocess.Process, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"apiserver exited with status {process.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if loop.time() > deadline:
                raise TimeoutError(f"apiserver at {address} did not become healthy")
            await asyncio.sleep(0.1)


async def stop_process(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, then SIGKILL after grace seconds; only this PID, never a process group."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def apiserver_process(
    store_url: str, log_path: Path, *, profile_path: Path | None = None
) -> AsyncIterator[ApiserverProcess]:
    """capstan-apiserver (python -m apiserver --insecure) on a free loopback port. With
    profile_path the server runs under cProfile, which writes the profile when the server
    exits on SIGTERM (so the stop grace is generous)."""
    address = f"127.0.0.1:{free_port()}"
    profiler = ["-m", "cProfile", "-o", str(profile_path)] if profile_path else []
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *profiler, "-m", "apiserver",
            "--listen", address, "--insecure", "--store", store_url,
            "--metrics-listen", f"127.0.0.1:{free_port()}", "--log-format", "json",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env={**os.environ},
        )  # fmt: skip
    try:
        await wait_serving(address, process, timeout=60)
        yield ApiserverProcess(address, process.pid, log_path)
    finally:
        await stop_process(process, grace=60 if profile_path else 15)


def python_env() -> dict[str, str]:
    """The environment for a helper Python process: the repository root importable, as it
    is for this script, so `-m tools.bench...` resolves."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
