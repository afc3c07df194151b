"""Logs, exec, port-forward and stats: through the apiserver's relay to the node API, with
the client library and with the `capstan` CLI."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from capstan.api.core.v1 import core_pb2
from capstan.api.node.v1 import node_pb2, node_pb2_grpc

from tests.e2e.kubelet.conftest import Node, busybox_pod, eventually, exec_in, wait_phase
from tests.support.etcd import free_port

pytestmark = pytest.mark.e2e

SERVER = "echo line1; echo line2 >&2; while true; do echo hello-pf | nc -l -p 8080; done"


async def cli(node: Node, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capstan.cli.main", "--server", node.apiserver.address,
        "--insecure", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 30)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.fixture
async def server_pod(node: Node, ns: str) -> str:
    await node.client.pods.create(busybox_pod(ns, "srv", SERVER))
    await wait_phase(node.client, ns, "srv", "Running")
    return "srv"


async def test_logs_through_apiserver_and_cli(node: Node, ns: str, server_pod: str) -> None:
    async def both_lines() -> bool:
        opts = core_pb2.PodLogOptions(namespace=ns, name=server_pod)
        data = b"".join([x async for x in node.client.pods.logs(opts)])
        return b"line1" in data and b"line2" in data

    await eventually(both_lines)
    code, out = await cli(node, "-n", ns, "logs", server_pod)
    assert code == 0 and "line1" in out and "line2" in out
    code, out = await cli(node, "-n", ns, "logs", server_pod, "--tail", "1")
    assert out.strip() in ("line1", "line2") and len(out.strip().splitlines()) == 1


async def test_logs_previous_instance(node: Node, ns: str) -> None:
    await node.client.pods.create(
        busybox_pod(ns, "twice", "echo run-$(date +%s%N); sleep 0.3; exit 1")
    )

    async def restarted() -> bool:
        pod = await node.client.pods.get("twice", ns)
        cs = pod.status.container_statuses
        return bool(cs) and cs[0].restart_count >= 1

    await eventually(restarted)
    opts = core_pb2.PodLogOptions(namespace=ns, name="twice", previous=True)
    data = b"".join([x async for x in node.client.pods.logs(opts)])
    assert data.startswith(b"run-")


async def test_exec_exit_code_and_stdin(node: Node, ns: str, server_pod: str) -> None:
    code, out = await exec_in(node.client, ns, server_pod, "main", "sh", "-c", "echo hi; exit 7")
    assert (code, out) == (7, "hi\n")
    code, out = await cli(node, "-n", ns, "exec", server_pod, "--", "sh", "-c", "echo cli; exit 5")
    assert code == 5 and "cli" in out
    code, out = await cli(node, "-n", ns, "exec", "-i", server_pod, "--", "cat", stdin=b"piped\n")
    assert code == 0 and out == "piped\n"


async def test_port_forward_through_apiserver(node: Node, ns: str, server_pod: str) -> None:
    async def requests() -> AsyncIterator[core_pb2.PortForwardRequest]:
        yield core_pb2.PortForwardRequest(
            options=core_pb2.PortForwardOptions(namespace=ns, name=server_pod, port=8080)
        )

    data = b""
    async for resp in node.client.pods.port_forward(requests()):
        assert resp.WhichOneof("response") == "data", resp.error
        data += resp.data
    assert data == b"hello-pf\n"

    local = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capstan.cli.main", "--server", node.apiserver.address,
        "--insecure", "-n", ns, "port-forward", server_pod, f"{local}:8080",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        got = b""
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", local)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            got = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            break
        assert got == b"hello-pf\n"
    finally:
        proc.terminate()
        await proc.wait()


async def test_stats(node: Node, ns: str, server_pod: str) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{node.port}") as ch:
        stub = node_pb2_grpc.KubeletStub(ch)
        samples = [
            s async for s in stub.Stats(node_pb2.StatsRequest(namespace=ns, name=server_pod))
        ]
    (sample,) = samples
    (pod,) = sample.pods
    assert pod.name == server_pod and pod.usage.memory_usage_bytes > 0
    assert [c.name for c in pod.containers] == ["main"]


async def test_top_through_apiserver_relay_and_cli(node: Node, ns: str, server_pod: str) -> None:
    """`capstan top` reads the kubelet's Stats through the apiserver's NodeStats relay."""

    async def pod_row() -> bool:
        code, out = await cli(node, "top", "pods", "-n", ns)
        return code == 0 and any(line.split()[:1] == [server_pod] for line in out.splitlines())

    await eventually(pod_row, timeout=20)
    code, out = await cli(node, "top", "pods", "-n", ns, "--containers")
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "CONTAINER", "CPU(cores)", "MEMORY(bytes)"]
    assert [r.split()[:2] for r in rows] == [[server_pod, "main"]]
    assert rows[0].split()[2].endswith("m") and rows[0].split()[3].endswith("Mi")

    code, out = await cli(node, "top", "nodes")
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    (row,) = [r.split() for r in rows]
    assert row[1].endswith("m") and row[2].endswith("%") and row[4].endswith("%")
