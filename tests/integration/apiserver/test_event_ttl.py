"""Events expire like Kubernetes' --event-ttl: the stored key carries a TTL (an etcd
lease in etcd), and other kinds' keys do not."""

from __future__ import annotations

import pytest
from apiserver import objects
from capstan.api.core.v1 import core_pb2
from capstan.api.etcd import rpc_pb2
from capstan.machinery.kinds import by_kind
from capstan.store.etcd import EtcdStore

from tests.integration.apiserver.helpers import RPC_TIMEOUT, Clients, configmap

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EVENT_TTL = by_kind("Event").ttl_seconds


async def _ttl(api: Clients, key: str) -> float | None:
    """Seconds the key has left, read from the backend the apiserver runs on."""
    server = api.running.server
    assert server is not None
    store = server.store
    if not isinstance(store, EtcdStore):
        # The SQLite store holds its file with an exclusive lock: its expiry times are
        # visible only through its private connection (its own suite covers TTLs).
        pytest.skip("a key's TTL is observable cheaply only in etcd (a lease)")
    found = await store.client.unary(lambda m: m.kv.Range, rpc_pb2.RangeRequest(key=key.encode()))
    assert len(found.kvs) == 1, key
    lease = found.kvs[0].lease
    if not lease:
        return None
    alive = await store.client.unary(
        lambda m: m.lease.LeaseTimeToLive, rpc_pb2.LeaseTimeToLiveRequest(ID=lease)
    )
    return float(alive.TTL)


async def test_events_are_stored_with_a_ttl(api: Clients, ns: str) -> None:
    assert EVENT_TTL == 3600
    ev = core_pb2.Event()
    ev.metadata.namespace, ev.metadata.name = ns, "pod-started.1"
    ev.involved_object.kind, ev.involved_object.name = "Pod", "p"
    ev.involved_object.namespace = ns
    ev.reason, ev.message, ev.type = "Started", "Started container", "Normal"
    await api.events.Create(ev, timeout=RPC_TIMEOUT)
    key = objects.object_key(by_kind("Event"), ns, "pod-started.1")
    ttl = await _ttl(api, key)
    assert ttl is not None
    # etcd's shared leases may end up to one window (a tenth of the TTL, at most 10 s) later.
    assert EVENT_TTL - 5 <= ttl <= EVENT_TTL + 11

    # An update renews the TTL rather than dropping it.
    ev.message = "Started container again"
    await api.events.Update(ev, timeout=RPC_TIMEOUT)
    renewed = await _ttl(api, key)
    assert renewed is not None and renewed >= EVENT_TTL - 5

    await api.configmaps.Create(configmap(ns, "lasting"), timeout=RPC_TIMEOUT)
    assert await _ttl(api, objects.object_key(by_kind("ConfigMap"), ns, "lasting")) is None
