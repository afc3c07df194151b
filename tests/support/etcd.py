"""A real etcd server for tests: started on free loopback ports in a temporary data
directory, stopped by its own PID when the context ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdProcess:
    client_url: str
    data_dir: str
    process: asyncio.subprocess.Process

    @property
    def endpoint(self) -> str:
        return self.client_url.removeprefix("http://")


async def _wait_ready(url: str, timeout: float) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def run_etcd(binary: str | None = None) -> AsyncIterator[EtcdProcess]:
    etcd = binary or shutil.which("etcd") or "/usr/bin/etcd"
    data_dir = tempfile.mkdtemp(prefix="capstan-etcd-")
    client_url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    # A file handle for the child's output; opening it is instant, not I/O worth offloading.
    log = Path(data_dir, "etcd.log").open("wb")  # noqa: SIM115, ASYNC230
    process = await asyncio.create_subprocess_exec(
        etcd,
        "--name=test",
        f"--data-dir={data_dir}/data",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=test={peer_url}",
        stdout=log,
        stderr=log,
        env={**os.environ, "ETCD_UNSUPPORTED_ARCH": os.environ.get("ETCD_UNSUPPORTED_ARCH", "")},
    )
    try:
        await _wait_ready(client_url, timeout=20)
        yield EtcdProcess(client_url=client_url, data_dir=data_dir, process=process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)
