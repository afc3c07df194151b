"""Endpoints follow the pods' readiness; selector-less Services keep their Endpoints."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Client
from capstan.machinery.intstr import make_int_or_str

from tests.integration.controller_cluster.conftest import eventually, pod, running, set_pod_status

pytestmark = pytest.mark.integration


async def addresses(client: Client, ns: str, name: str) -> tuple[list[str], list[str]]:
    try:
        ep = await client.endpoints.get(name, ns)
    except NotFoundError:
        return [], []
    ready = sorted(a.ip for s in ep.subsets for a in s.addresses)
    not_ready = sorted(a.ip for s in ep.subsets for a in s.not_ready_addresses)
    return ready, not_ready


async def test_endpoints_follow_readiness(client: Client, ns: str) -> None:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = "web", ns
    svc.spec.selector["app"] = "web"
    port = svc.spec.ports.add(name="http", port=80, protocol="TCP")
    port.target_port.CopyFrom(make_int_or_str("http"))
    await client.services.create(svc)
    manual = core_pb2.Service()
    manual.metadata.name, manual.metadata.namespace = "external", ns
    manual.spec.ports.add(port=5432, protocol="TCP")
    await client.services.create(manual)
    hand = core_pb2.Endpoints()
    hand.metadata.name, hand.metadata.namespace = "external", ns
    hand.subsets.add().addresses.add(ip="192.0.2.10")
    await client.endpoints.create(hand)
    for name in ("a", "b"):
        await client.pods.create(pod(name, ns, {"app": "web"}))
    async with running(client, "endpoints"):
        await set_pod_status(client, ns, "a", ip="10.1.0.1", ready=True)
        await set_pod_status(client, ns, "b", ip="10.1.0.2", ready=False)

        async def split() -> bool:
            return await addresses(client, ns, "web") == (["10.1.0.1"], ["10.1.0.2"])

        await eventually(split)
        ep = await client.endpoints.get("web", ns)
        assert ep.subsets[0].ports[0].port == 8080
        await set_pod_status(client, ns, "b", ready=True)

        async def both_ready() -> bool:
            return await addresses(client, ns, "web") == (["10.1.0.1", "10.1.0.2"], [])

        await eventually(both_ready)
        await client.pods.delete("a", ns)

        async def one_left() -> bool:
            return await addresses(client, ns, "web") == (["10.1.0.2"], [])

        await eventually(one_left)
        kept = await client.endpoints.get("external", ns)
        assert [a.ip for a in kept.subsets[0].addresses] == ["192.0.2.10"]
        await client.services.delete("web", ns)

        async def gone() -> bool:
            try:
                await client.endpoints.get("web", ns)
            except NotFoundError:
                return True
            return False

        await eventually(gone)
