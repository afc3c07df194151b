"""Probes, graceful deletion and kubelet restarts on real Docker."""

from __future__ import annotations

import time

import pytest
from capstan.apierrors import NotFoundError

from tests.e2e.kubelet.conftest import Node, busybox_pod, eventually, exec_in, wait_phase

pytestmark = pytest.mark.e2e


def _ready(pod: object) -> bool:
    return any(
        c.type == "Ready" and c.status == "True"
        for c in pod.status.conditions  # type: ignore[attr-defined]
    )


async def test_liveness_failure_restarts_the_container(node: Node, ns: str) -> None:
    p = busybox_pod(ns, "live", "touch /tmp/healthy; sleep 1; rm /tmp/healthy; sleep 3600")
    probe = p.spec.containers[0].liveness_probe
    probe.exec.command.extend(["cat", "/tmp/healthy"])
    probe.period_seconds, probe.failure_threshold = 1, 1
    await node.client.pods.create(p)

    async def restarted() -> bool:
        pod = await node.client.pods.get("live", ns)
        cs = pod.status.container_statuses
        return bool(cs) and cs[0].restart_count >= 1

    await eventually(restarted, timeout=30)
    reasons = {e.reason for e in (await node.client.events.list(ns)).items}
    assert {"Unhealthy", "Killing", "Started"} <= reasons


async def test_readiness_drives_ready(node: Node, ns: str) -> None:
    p = busybox_pod(ns, "ready", "sleep 3600")
    probe = p.spec.containers[0].readiness_probe
    probe.exec.command.extend(["cat", "/tmp/ready"])
    probe.period_seconds, probe.failure_threshold = 1, 1
    await node.client.pods.create(p)
    pod = await wait_phase(node.client, ns, "ready", "Running")
    assert not _ready(pod)
    await exec_in(node.client, ns, "ready", "main", "touch", "/tmp/ready")

    async def is_ready(want: bool) -> bool:
        return _ready(await node.client.pods.get("ready", ns)) == want

    await eventually(lambda: is_ready(True))
    await exec_in(node.client, ns, "ready", "main", "rm", "/tmp/ready")
    await eventually(lambda: is_ready(False))


async def test_http_and_tcp_probes(node: Node, ns: str) -> None:
    script = (
        "mkdir -p /www && echo ok > /www/index.html && httpd -p 8080 -h /www; "
        "while true; do echo x | nc -l -p 9090; done"
    )
    p = busybox_pod(ns, "web", script)
    c = p.spec.containers[0]
    c.readiness_probe.http_get.path = "/index.html"
    c.readiness_probe.http_get.port.number_value = 8080
    c.readiness_probe.period_seconds = 1
    c.liveness_probe.tcp_socket.port.number_value = 9090
    c.liveness_probe.period_seconds = 1
    await node.client.pods.create(p)

    async def ready() -> bool:
        return _ready(await node.client.pods.get("web", ns))

    await eventually(ready)
    pod = await node.client.pods.get("web", ns)
    assert pod.status.container_statuses[0].restart_count == 0


async def test_grace_period_then_kill(node: Node, ns: str) -> None:
    # sh as PID 1 ignores SIGTERM: only the SIGKILL after the grace period stops it.
    p = busybox_pod(ns, "stubborn", "trap '' TERM; while true; do sleep 1; done")
    p.spec.termination_grace_period_seconds = 3
    await node.client.pods.create(p)
    await wait_phase(node.client, ns, "stubborn", "Running")
    start = time.monotonic()
    await node.client.pods.delete("stubborn", ns)

    async def not_ready() -> bool:
        try:
            return not _ready(await node.client.pods.get("stubborn", ns))
        except NotFoundError:
            return True

    await eventually(not_ready, timeout=2)
    assert time.monotonic() - start < 2.5

    async def gone() -> bool:
        try:
            await node.client.pods.get("stubborn", ns)
        except NotFoundError:
            return True
        return False

    await eventually(gone, timeout=15)
    elapsed = time.monotonic() - start
    assert 3 <= elapsed < 10
    assert not [
        c
        for c in await node.runtime.list({"io.capstan.pod.namespace": ns})
        if c.labels.get("io.capstan.pod.name") == "stubborn"
    ]


async def test_kubelet_restart_keeps_running_pods(node: Node, ns: str) -> None:
    await node.client.pods.create(busybox_pod(ns, "steady", "sleep 3600"))
    before = await wait_phase(node.client, ns, "steady", "Running")
    await node.restart_kubelet()
    await node.client.pods.create(busybox_pod(ns, "after", "sleep 3600"))
    await wait_phase(node.client, ns, "after", "Running")
    now = await node.client.pods.get("steady", ns)
    assert now.status.container_statuses[0].container_id == (
        before.status.container_statuses[0].container_id
    )
    assert now.status.container_statuses[0].restart_count == 0
    assert now.status.pod_ip == before.status.pod_ip
