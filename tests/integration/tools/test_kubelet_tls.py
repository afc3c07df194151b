"""The apiserver's relays to kubelets (node stats here; logs/exec/port-forward share the
channel) over mutual TLS with the certificates tools/certs makes: the kubelet's serving
certificate for its node address, the apiserver-kubelet-client certificate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from capstan.api.core.v1 import core_pb2
from capstan.api.node.v1 import node_pb2
from capstan.client import Client, ClientTLS
from capstan.grpc_server import GrpcServer, TLSConfig
from kubelet.hollow_runtime import HollowRuntime
from kubelet.node_api import SERVICE, NodeApi

from tests.support.apiserver import run_apiserver

ROOT = Path(__file__).resolve().parents[3]
NODE = "n1"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "certs"), str(out), "--node", f"{NODE}=127.0.0.1"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture
async def kubelet_port(pki: Path) -> AsyncIterator[int]:
    """A node API server requiring client certificates signed by the cluster CA."""
    api = NodeApi(HollowRuntime(), NODE, lambda ns, name: None, list)
    tls = TLSConfig(
        str(pki / f"kubelet-{NODE}.crt"), str(pki / f"kubelet-{NODE}.key"), str(pki / "ca.crt")
    )
    server = GrpcServer(["127.0.0.1:0"], [api.handler()], [SERVICE], tls)
    await server.start()
    try:
        yield server.ports[0]
    finally:
        await server.stop(1)


async def register_node(client: Client, port: int) -> None:
    node = core_pb2.Node()
    node.metadata.name = NODE
    node.status.addresses.add(type="InternalIP", address="127.0.0.1")
    node.status.daemon_endpoints.kubelet_endpoint.port = port
    await client.nodes.create(node)


async def node_stats(address: str) -> list[node_pb2.StatsSample]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = cast(
            Any,
            channel.unary_stream(
                "/capstan.node.v1.NodeStats/Get",
                request_serializer=node_pb2.NodeStatsRequest.SerializeToString,
                response_deserializer=node_pb2.StatsSample.FromString,
            ),
        )
        return [s async for s in call(node_pb2.NodeStatsRequest(node_name=NODE), timeout=10)]


async def test_relay_dials_the_kubelet_with_mutual_tls(
    pki: Path, kubelet_port: int, tmp_path: Path
) -> None:
    kubelet_tls = ClientTLS(
        str(pki / "ca.crt"),
        str(pki / "apiserver-kubelet-client.crt"),
        str(pki / "apiserver-kubelet-client.key"),
    )
    async with run_apiserver(f"sqlite://{tmp_path / 's.db'}", kubelet_tls=kubelet_tls) as api:
        async with Client([api.address]) as client:
            await register_node(client, kubelet_port)
        (sample,) = await node_stats(api.address)
        assert sample.HasField("time")


async def test_relay_without_kubelet_credentials_is_refused(
    kubelet_port: int, tmp_path: Path
) -> None:
    async with run_apiserver(f"sqlite://{tmp_path / 's.db'}") as api:
        async with Client([api.address]) as client:
            await register_node(client, kubelet_port)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await node_stats(api.address)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
