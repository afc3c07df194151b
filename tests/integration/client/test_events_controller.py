"""The event recorder (aggregation, rate limit) and the reconcile-loop skeleton against a
real apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from capstan.client import (
    NORMAL,
    WARNING,
    Client,
    Controller,
    EventRecorder,
    Informer,
    controller_owner_key,
)
from prometheus_client import REGISTRY

from tests.integration.client.conftest import configmap, pod

pytestmark = pytest.mark.integration


async def events_about(client: Client, ns: str, name: str) -> list[Any]:
    listed = await client.events.list(ns, field_selector=f"involvedObject.name={name}")
    return sorted(listed.items, key=lambda e: e.reason + e.message)


async def test_repeats_aggregate_into_one_event_with_a_count(client: Client, ns: str) -> None:
    p = await client.pods.create(pod(ns, "web"))
    rec = EventRecorder(client.events, "test-controller", "host-1")
    rec.start()
    try:
        for _ in range(3):
            rec.record(p, WARNING, "BackOff", "Back-off restarting failed container")
        rec.record(p, NORMAL, "Pulled", "image pulled")
        await rec.flush()
        events = await events_about(client, ns, "web")
        assert [(e.reason, e.count, e.type) for e in events] == [
            ("BackOff", 3, WARNING),
            ("Pulled", 1, NORMAL),
        ]
        backoff = events[0]
        assert backoff.metadata.name.startswith("web.")
        assert backoff.involved_object.kind == "Pod"
        assert backoff.involved_object.uid == p.metadata.uid
        assert backoff.source.component == "test-controller"
        assert backoff.last_timestamp.ToNanoseconds() > backoff.first_timestamp.ToNanoseconds()
    finally:
        await rec.stop()


async def test_outside_the_window_a_new_event_is_created(client: Client, ns: str) -> None:
    cm = await client.configmaps.create(configmap(ns, "cm"))
    rec = EventRecorder(client.events, "c", aggregate_window=0.0)
    rec.start()
    try:
        rec.record(cm, NORMAL, "Synced", "ok")
        await rec.flush()
        await asyncio.sleep(0.01)
        rec.record(cm, NORMAL, "Synced", "ok")
        await rec.flush()
        assert [e.count for e in await events_about(client, ns, "cm")] == [1, 1]
    finally:
        await rec.stop()


async def test_rate_limit_drops_a_flood_without_blocking(client: Client, ns: str) -> None:
    cm = await client.configmaps.create(configmap(ns, "flood"))
    rec = EventRecorder(client.events, "c", burst=5, refill_seconds=3600)
    rec.start()
    try:
        for i in range(50):
            rec.record(cm, WARNING, "Failed", f"attempt {i}")  # distinct: no aggregation
        await rec.flush()
        assert len(await events_about(client, ns, "flood")) == 5
    finally:
        await rec.stop()


async def test_controller_reconciles_owner_keys_and_retries_failures(
    client: Client, ns: str
) -> None:
    calls: list[str] = []
    fail_once = {f"{ns}/flaky"}

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        if key in fail_once:
            fail_once.discard(key)
            raise RuntimeError("transient")
        return None

    pods = Informer(client.pods, namespace=ns)
    configmaps = Informer(client.configmaps, namespace=ns)
    ctrl = Controller("test-owner", reconcile, workers=2, base_delay=0.05)
    ctrl.watch(configmaps)
    ctrl.watch(pods, controller_owner_key("ConfigMap"))
    run = asyncio.create_task(ctrl.run(sync_timeout=10))
    try:
        owner = await client.configmaps.create(configmap(ns, "owner"))
        child = pod(ns, "child")
        child.metadata.owner_references.add(
            api_version="v1",
            kind="ConfigMap",
            name="owner",
            uid=owner.metadata.uid,
            controller=True,
        )
        await client.pods.create(child)
        await client.configmaps.create(configmap(ns, "flaky"))

        async def done() -> bool:
            return calls.count(f"{ns}/flaky") == 2 and f"{ns}/owner" in calls

        async with asyncio.timeout(10):
            while True:
                if await done():
                    break
                await asyncio.sleep(0.02)
        # The pod's events were mapped to its owner; no key for the pod itself.
        assert f"{ns}/child" not in calls
        assert ctrl.queue.num_requeues(f"{ns}/flaky") == 0  # forgotten after success
        errors = REGISTRY.get_sample_value(
            "capstan_controller_reconcile_total", {"controller": "test-owner", "result": "error"}
        )
        assert errors == 1.0
    finally:
        await ctrl.stop()
        await asyncio.wait_for(run, 5)
        await pods.stop()
        await configmaps.stop()
