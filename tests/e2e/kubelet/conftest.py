"""The kubelet against a real dockerd: run inside the sandbox (tools/sandbox.sh --docker),
which provides DOCKER_HOST and a network namespace with no route out. One apiserver, one
kubelet and the test images are shared by the whole session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Client, SharedInformerFactory
from capstan.grpc_server import GrpcServer
from kubelet.docker_runtime import DockerRuntime
from kubelet.kubelet import Kubelet, KubeletConfig
from kubelet.node import NodeConfig, read_host
from kubelet.node_api import SERVICE, NodeApi

from tests.support.apiserver import RunningApiserver, run_apiserver
from tests.support.images import BUSYBOX, PAUSE, build_test_images

NODE = "e2e-node"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = ""
    if not os.environ.get("DOCKER_HOST"):
        reason = "needs a dockerd: run under tools/sandbox.sh --docker (sets DOCKER_HOST)"
    elif not os.environ.get("CAPSTAN_SANDBOX"):
        reason = "pods are reached by IP: only inside the sandbox network namespace"
    for item in items:
        if "tests/e2e/kubelet" in str(item.fspath) and reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Node:
    apiserver: RunningApiserver
    client: Client
    kubelet: Kubelet
    runtime: DockerRuntime
    informers: SharedInformerFactory
    api: NodeApi
    port: int
    root: Path

    async def restart_kubelet(self) -> None:
        """Stop the kubelet (containers keep running) and start a fresh one."""
        await self.kubelet.stop()
        await self.informers.stop()
        self.informers = SharedInformerFactory(self.client)
        self.kubelet = new_kubelet(self.client, self.runtime, self.informers, self.port, self.root)
        await self.kubelet.start()


def new_kubelet(
    client: Client, runtime: DockerRuntime, informers: SharedInformerFactory, port: int, root: Path
) -> Kubelet:
    cfg = KubeletConfig(
        node=NodeConfig(name=NODE, ip="127.0.0.1", port=port, labels={"e2e": "yes"}),
        root_dir=root,
        cluster_dns=["10.96.0.10"],
        pause_image=PAUSE,
        sync_frequency=2.0,
        relist_period=0.2,
        backoff_initial=1.0,
        backoff_max=4.0,
    )
    return Kubelet(client, runtime, cfg, informers, lambda: read_host(root))


@pytest.fixture(scope="session")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    await asyncio.to_thread(build_test_images)
    url = f"sqlite://{tmp_path_factory.mktemp('kubelet-e2e') / 'state.db'}"
    root = tmp_path_factory.mktemp("kubelet-root")
    async with run_apiserver(url) as apiserver:
        client = Client([apiserver.address], default_timeout=10)
        runtime = DockerRuntime(os.environ["DOCKER_HOST"])
        holder: dict[str, Kubelet] = {}
        api = NodeApi(
            runtime,
            NODE,
            lambda ns, name: holder["k"].find_pod(ns, name),
            lambda: holder["k"].pods.list(),
        )
        server = GrpcServer(["127.0.0.1:0"], [api.handler()], [SERVICE], None)
        await server.start()
        port = server.ports[0]
        informers = SharedInformerFactory(client)
        kubelet = new_kubelet(client, runtime, informers, port, root)
        holder["k"] = kubelet
        await kubelet.start()
        n = Node(apiserver, client, kubelet, runtime, informers, api, port, root)

        def current(ns: str, name: str) -> core_pb2.Pod | None:
            return n.kubelet.find_pod(ns, name)

        api.find_pod = current
        api.pods = lambda: n.kubelet.pods.list()
        try:
            yield n
        finally:
            await n.kubelet.stop()
            await n.informers.stop()
            await server.stop(1)
            for info in await runtime.list({"io.capstan.node.name": NODE}):
                with contextlib.suppress(Exception):
                    await runtime.remove(info.id)
            await runtime.close()
            await client.close()


@pytest.fixture
async def ns(node: Node) -> AsyncIterator[str]:
    n = core_pb2.Namespace()
    n.metadata.name = f"e2e-{uuid.uuid4().hex[:8]}"
    await node.client.namespaces.create(n)
    yield n.metadata.name
    pods = (await node.client.pods.list(n.metadata.name)).items
    for p in pods:
        with contextlib.suppress(NotFoundError):
            await node.client.pods.delete(
                p.metadata.name, p.metadata.namespace, grace_period_seconds=0
            )


def busybox_pod(ns: str, name: str, script: str, *, policy: str = "Always") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace, p.metadata.name = ns, name
    p.spec.node_name = NODE
    p.spec.restart_policy = policy
    p.spec.termination_grace_period_seconds = 1
    c = p.spec.containers.add(name="main", image=BUSYBOX, image_pull_policy="Never")
    c.command.extend(["sh", "-c", script])
    return p


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.1
) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - polling the API is the point
            await asyncio.sleep(interval)


async def wait_phase(
    client: Client, ns: str, name: str, phase: str, timeout: float = 20
) -> core_pb2.Pod:
    async def check() -> bool:
        return (await client.pods.get(name, ns)).status.phase == phase

    await eventually(check, timeout)
    return await client.pods.get(name, ns)


async def exec_in(client: Client, ns: str, pod: str, container: str, *cmd: str) -> tuple[int, str]:
    async def requests() -> AsyncIterator[core_pb2.ExecRequest]:
        yield core_pb2.ExecRequest(
            options=core_pb2.ExecOptions(
                namespace=ns,
                name=pod,
                container=container,
                command=list(cmd),
                stdout=True,
                stderr=True,
            )
        )

    out = bytearray()
    code = -1
    async for resp in client.pods.exec(requests()):
        kind = resp.WhichOneof("response")
        if kind in ("stdout", "stderr"):
            out.extend(getattr(resp, kind))
        elif kind == "result":
            code = resp.result.exit_code
    return code, out.decode(errors="replace")
