"""A storm of malformed and refused requests: each gets its precise status code, the store
is byte-identical afterwards, and the server keeps serving without leaking tasks."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import grpc
import pytest
from capstan.api.core.v1 import core_pb2, core_pb2_grpc
from capstan.api.meta.v1.meta_pb2 import GetRequest
from capstan.machinery.kinds import KINDS
from capstan.store import Store
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.apiserver_ops import ops
from tests.integration.apiserver_ops.fuzzcases import Call, Seed, corpus
from tests.support.apiserver import run_apiserver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CONCURRENCY = 32
CALL_TIMEOUT = 20.0
# Tasks the loop may legitimately gain during the storm (grpc's own pollers, a pending
# watch-cache notify); a leak per request would be hundreds.
TASK_SLACK = 5
# Raw calls: request and response stay bytes (no serializer), as a fuzzer needs.
Unary = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
Streaming = grpc.aio.UnaryStreamMultiCallable[bytes, bytes]


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    message: str
    reason: str  # ErrorInfo.reason from grpc-status-details-bin, "" if none


async def seed_objects(address: str, ns: str) -> Seed:
    async with grpc.aio.insecure_channel(address) as ch:
        namespaces = core_pb2_grpc.NamespacesStub(ch)
        pods = core_pb2_grpc.PodsStub(ch)
        services = core_pb2_grpc.ServicesStub(ch)
        await namespaces.Create(ops.namespace_obj(ns))
        created = {}
        for i in range(5):
            created[f"web-{i}"] = await pods.Create(ops.pod(ns, f"web-{i}", app="web", idx=str(i)))
        stale = created["web-1"].metadata.resource_version
        changed = core_pb2.Pod()
        changed.CopyFrom(created["web-1"])
        changed.metadata.labels["touched"] = "yes"
        created["web-1"] = await pods.Update(changed)
        service = await services.Create(ops.service(ns, "web"))
    return Seed(ns, created, service, stale)


async def store_snapshot(store: Store) -> tuple[int, list[tuple[str, bytes, int, int]]]:
    result = await store.range("/registry/")
    rows = [(kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in result.kvs]
    return await store.current_revision(), rows


async def api_snapshot(channel: grpc.aio.Channel) -> dict[str, bytes]:
    """Every kind's List (all namespaces) as the server serialised it."""
    out = {}
    for kind in KINDS:
        call: Unary = channel.unary_unary(f"/{kind.service}/List")
        out[kind.kind] = await call(b"", timeout=10)
    return out


def _reason(err: grpc.aio.AioRpcError) -> str:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return str(info.reason)
    return ""


async def fire(channel: grpc.aio.Channel, call: Call) -> Outcome:
    try:
        if call.stream:
            streaming: Streaming = channel.unary_stream(call.method)
            async for _ in streaming(call.request, timeout=CALL_TIMEOUT):
                pass
        else:
            unary: Unary = channel.unary_unary(call.method)
            await unary(call.request, timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as e:
        return Outcome(e.code(), e.details() or "", _reason(e))
    return Outcome(grpc.StatusCode.OK, "", "")


def judge(call: Call, out: Outcome) -> str | None:
    """Why the outcome is wrong, or None."""
    if out.code != call.expected:
        return f"got {out.code.name} ({out.message[:160]!r}), want {call.expected.name}"
    if out.code not in (grpc.StatusCode.OK, grpc.StatusCode.UNIMPLEMENTED) and not out.reason:
        return f"{out.code.name} without an ErrorInfo detail: not the server's own answer"
    if call.detail and call.detail not in out.message:
        return f"message {out.message[:160]!r} lacks {call.detail!r}"
    return None


async def storm(channel: grpc.aio.Channel, calls: list[Call]) -> list[Outcome]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Call) -> Outcome:
        async with gate:
            return await fire(channel, call)

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def test_malformed_requests_never_touch_the_store(store_url: str, namespace: str) -> None:
    # Seed through one apiserver, fuzz a second one on the same store: its watch cache
    # starts after the seed writes, so an old resource version is really expired.
    async with run_apiserver(store_url) as first:
        seed = await seed_objects(first.address, namespace)
    async with run_apiserver(store_url) as api:
        assert api.server is not None
        store = api.server.store
        calls = corpus(seed)
        assert len(calls) > 1500
        channel = api.channel()
        # Warm up the channel and the server's per-method machinery before counting tasks.
        await storm(channel, calls[:64])
        await asyncio.sleep(0.2)
        before_store = await store_snapshot(store)
        before_api = await api_snapshot(channel)
        tasks_before = len(asyncio.all_tasks())

        outcomes = await storm(channel, calls)

        failures = [
            f"{c.label} {c.method} ({len(c.request)} bytes): {why}"
            for c, o in zip(calls, outcomes, strict=True)
            if (why := judge(c, o)) is not None
        ]
        codes = Counter(o.code.name for o in outcomes)
        assert not failures, f"{len(failures)} of {len(calls)} wrong ({codes}):\n" + "\n".join(
            sorted(set(failures))[:40]
        )
        assert "UNKNOWN" not in codes and "INTERNAL" not in codes

        await asyncio.sleep(0.3)
        assert len(asyncio.all_tasks()) <= tasks_before + TASK_SLACK
        after_store = await store_snapshot(store)
        changed = sorted(set(after_store[1]) ^ set(before_store[1]))
        assert not changed, f"the storm changed stored keys: {[row[0] for row in changed]}"
        assert after_store[0] == before_store[0], "the storm wrote to the store"
        assert await api_snapshot(channel) == before_api

        health = health_pb2_grpc.HealthStub(channel)
        check = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        pods = core_pb2_grpc.PodsStub(channel)
        made = await pods.Create(ops.pod(namespace, "after-storm"), timeout=5)
        assert made.metadata.uid and int(made.metadata.resource_version) > before_store[0]
        got = await pods.Get(GetRequest(namespace=namespace, name="after-storm"), timeout=5)
        assert got.metadata.uid == made.metadata.uid
