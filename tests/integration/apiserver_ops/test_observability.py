"""Health, reflection and metrics: what an operator (or a load balancer, or grpcurl) sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from capstan.api.core.v1 import core_pb2, core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2
from capstan.machinery.kinds import KINDS
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.apiserver_ops import ops
from tests.support.apiserver import RunningApiserver, run_apiserver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PODS = "capstan.core.v1.Pods"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApiserver]:
    async with run_apiserver(f"sqlite://{tmp_path / 'state.db'}") as running:
        yield running


async def metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, body = await ops.http_get(port, "/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def sample(
    m: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return m.get((name, frozenset(labels.items())), 0.0)


async def test_health_serving_for_the_server_and_each_service(api: RunningApiserver) -> None:
    health = health_pb2_grpc.HealthStub(api.channel())
    for service in ("", PODS, *(k.service for k in KINDS)):
        r = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_every_service(api: RunningApiserver) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel())
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=PODS),
    ]
    responses = [r async for r in stub.ServerReflectionInfo(iter(requests), timeout=10)]
    listed = {s.name for s in responses[0].list_services_response.service}
    assert {k.service for k in KINDS} <= listed
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= listed
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in responses[1].file_descriptor_response.file_descriptor_proto
    ]
    pods = next(s for f in files for s in f.service if f.package == "capstan.core.v1" and
                s.name == "Pods")  # fmt: skip
    methods = {m.name: m for m in pods.method}
    assert {"Create", "Get", "List", "Update", "UpdateStatus", "Delete", "Watch"} <= set(methods)
    assert methods["Watch"].server_streaming
    assert methods["Create"].input_type == ".capstan.core.v1.Pod"


async def test_metrics_count_requests_latency_and_watches(api: RunningApiserver) -> None:
    pods = core_pb2_grpc.PodsStub(api.channel())
    before = await metrics(api.metrics_port)
    await pods.Create(ops.pod("default", "m1"), timeout=5)
    await pods.List(meta_pb2.ListOptions(namespace="default"), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError):
        await pods.Get(meta_pb2.GetRequest(namespace="default", name="nope"), timeout=5)
    watch = pods.Watch(meta_pb2.ListOptions(namespace="default", send_initial_events=True))
    first = await asyncio.wait_for(watch.read(), 5)
    assert isinstance(first, core_pb2.PodWatchEvent) and first.type == "ADDED"

    during = await metrics(api.metrics_port)
    total = "capstan_apiserver_requests_total"
    for method, code in (("Create", "OK"), ("List", "OK"), ("Get", "NOT_FOUND")):
        delta = sample(during, total, service=PODS, method=method, code=code) - sample(
            before, total, service=PODS, method=method, code=code
        )
        assert delta == 1, (method, code)
    hist = "capstan_apiserver_request_duration_seconds"
    for method in ("Create", "List"):
        count = sample(during, f"{hist}_count", service=PODS, method=method)
        assert count >= 1 + sample(before, f"{hist}_count", service=PODS, method=method)
        assert count == sample(during, f"{hist}_bucket", service=PODS, method=method, le="+Inf")
    gauge = "capstan_apiserver_watches"
    open_watches = sample(during, gauge, service=PODS)
    assert open_watches == sample(before, gauge, service=PODS) + 1

    watch.cancel()
    for _ in range(50):
        if sample(await metrics(api.metrics_port), gauge, service=PODS) == open_watches - 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the watch gauge did not drop after the client went away")


async def test_probe_endpoints(api: RunningApiserver) -> None:
    assert await ops.http_get(api.metrics_port, "/healthz") == (200, "ok")
    assert await ops.http_get(api.metrics_port, "/readyz") == (200, "ok")
    assert (await ops.http_get(api.metrics_port, "/nope"))[0] == 404
    # A client that connects and says nothing must not hold up the others.
    _, idle = await asyncio.open_connection("127.0.0.1", api.metrics_port)
    try:
        assert await ops.http_get(api.metrics_port, "/healthz") == (200, "ok")
    finally:
        idle.close()
