"""Two apiserver processes on one etcd: one cluster, whichever replica a client reaches."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from capstan.api.meta.v1 import meta_pb2

from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    configmap,
    delete_request,
    fails,
    get,
    named,
    service,
    watching,
)
from tests.support.apiserver import apiserver_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
async def replicas(etcd_endpoint: str) -> AsyncIterator[tuple[Clients, Clients]]:
    url = f"etcd://{etcd_endpoint}"
    async with contextlib.AsyncExitStack() as stack:
        first, second = await asyncio.gather(
            stack.enter_async_context(apiserver_process(url)),
            stack.enter_async_context(apiserver_process(url)),
        )
        yield Clients.connect(first), Clients.connect(second)


@pytest.fixture
async def shared_ns(replicas: tuple[Clients, Clients]) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await replicas[0].create_namespace(name)
    return name


async def test_concurrent_service_creates_get_distinct_ips(
    replicas: tuple[Clients, Clients], shared_ns: str
) -> None:
    created = await asyncio.gather(
        *(
            replicas[i % 2].services.Create(service(shared_ns, f"s{i}"), timeout=RPC_TIMEOUT)
            for i in range(40)
        )
    )
    ips = [s.spec.cluster_ip for s in created]
    assert len(set(ips)) == 40
    listed = await replicas[1].services.List(
        meta_pb2.ListOptions(namespace=shared_ns), timeout=RPC_TIMEOUT
    )
    assert sorted(s.spec.cluster_ip for s in listed.items) == sorted(ips)


async def test_write_through_one_is_read_through_the_other(
    replicas: tuple[Clients, Clients], shared_ns: str
) -> None:
    one, two = replicas
    start = await one.configmaps.List(
        meta_pb2.ListOptions(namespace=shared_ns), timeout=RPC_TIMEOUT
    )
    opts = meta_pb2.ListOptions(
        namespace=shared_ns, resource_version=start.metadata.resource_version
    )
    async with watching(two.configmaps, opts) as w:
        for i in range(5):
            made = await one.configmaps.Create(configmap(shared_ns, f"cm-{i}"), timeout=RPC_TIMEOUT)
            # Get reads the store: visible at once.
            got = await two.configmaps.Get(get(shared_ns, f"cm-{i}"), timeout=RPC_TIMEOUT)
            assert got == made
            # List is consistent: it waits for its cache to reach the store's revision.
            listed = await two.configmaps.List(
                meta_pb2.ListOptions(namespace=shared_ns), timeout=RPC_TIMEOUT
            )
            assert [c.metadata.name for c in listed.items] == [f"cm-{j}" for j in range(i + 1)]
            assert int(listed.metadata.resource_version) >= int(made.metadata.resource_version)
            # Watch through the other replica within a second.
            seen = await w.until(named(f"cm-{i}", "ADDED"), within=1.0)
            assert len(seen) == 1
            assert seen[0].object.metadata.resource_version == made.metadata.resource_version


async def test_namespace_termination_is_seen_by_the_other_replica(
    replicas: tuple[Clients, Clients],
) -> None:
    one, two = replicas
    for _ in range(100):
        name = f"t-{uuid.uuid4().hex[:10]}"
        await one.create_namespace(name)
        await one.namespaces.Delete(delete_request("", name), timeout=RPC_TIMEOUT)
        err = await fails(
            two.configmaps.Create(configmap(name, "late"), timeout=RPC_TIMEOUT),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert "because it is being terminated" in err.message
