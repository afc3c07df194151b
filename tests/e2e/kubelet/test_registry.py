"""Real pulls: a registry behind basic auth on loopback inside the sandbox serves an image the
local dockerd does not have; the kubelet pulls it with the credentials of the pod's
kubernetes.io/dockerconfigjson imagePullSecret and honours the image pull policies."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from capstan.api.core.v1 import core_pb2

from tests.e2e.kubelet.conftest import NODE, Node, eventually, exec_in, wait_phase
from tests.support.images import BUSYBOX
from tests.support.registry import (
    RegistryCredentials,
    RunningRegistry,
    registry_binary,
    run_registry,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("DOCKER_HOST"),
        reason="needs a dockerd: run under tools/sandbox.sh --docker (sets DOCKER_HOST)",
    ),
    pytest.mark.skipif(
        registry_binary() is None,
        reason="docker-registry is not installed (tools/setup.sh installs it)",
    ),
]

REPOSITORY = "capstan-test/pulled"
TAG = "1"
MARKER = "pulled-from-registry"
SECRET = "regcred"


def _build_marked_image(tag: str) -> None:
    """BUSYBOX plus a layer of its own, so that pulling the image transfers real content."""
    with tempfile.TemporaryDirectory() as ctx:
        (Path(ctx) / "Dockerfile").write_text(
            f'FROM {BUSYBOX}\nRUN ["/bin/sh", "-c", "echo {MARKER} > /marker"]\n'
        )
        subprocess.run(
            ["docker", "build", "-q", "-t", tag, ctx],
            check=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            stdout=subprocess.DEVNULL,
            timeout=60,
        )


@pytest.fixture(scope="module")
async def registry(node: Node) -> AsyncIterator[RunningRegistry]:
    """An authenticated registry holding REPOSITORY:TAG, which the node's dockerd lacks."""
    images = node.runtime.docker.images
    async with run_registry(RegistryCredentials("capstan", "pull-me")) as reg:
        source = "capstan-test/pulled-source:1"
        await asyncio.to_thread(_build_marked_image, source)
        await images.tag(source, f"{reg.host}/{REPOSITORY}", tag=TAG)
        await images.push(f"{reg.host}/{REPOSITORY}", tag=TAG, auth=reg.docker_auth())
        # Both references gone: the image itself (its own layer) leaves the local dockerd.
        for ref in (reg.image(REPOSITORY, TAG), source):
            await images.delete(ref, force=True)
        assert not await node.runtime.image_present(reg.image(REPOSITORY, TAG))
        yield reg


def _pod(ns: str, name: str, image: str, policy: str, *, pull_secret: str = "") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace, p.metadata.name = ns, name
    p.spec.node_name = NODE
    p.spec.termination_grace_period_seconds = 1
    if pull_secret:
        p.spec.image_pull_secrets.add(name=pull_secret)
    c = p.spec.containers.add(name="main", image=image, image_pull_policy=policy)
    c.command.extend(["sleep", "3600"])
    return p


async def _pull_secret(node: Node, ns: str, registry: RunningRegistry) -> None:
    secret = core_pb2.Secret(type="kubernetes.io/dockerconfigjson")
    secret.metadata.namespace, secret.metadata.name = ns, SECRET
    secret.data[".dockerconfigjson"] = registry.dockerconfigjson()
    await node.client.secrets.create(secret)


async def _events(node: Node, ns: str, pod: str) -> list[core_pb2.Event]:
    return [e for e in (await node.client.events.list(ns)).items if e.involved_object.name == pod]


async def _waiting_reason(node: Node, ns: str, pod: str) -> str:
    statuses = (await node.client.pods.get(pod, ns)).status.container_statuses
    return statuses[0].state.waiting.reason if statuses else ""


async def test_pulls_with_image_pull_secret(node: Node, ns: str, registry: RunningRegistry) -> None:
    image = registry.image(REPOSITORY, TAG)
    await _pull_secret(node, ns, registry)
    await node.client.pods.create(_pod(ns, "pulled", image, "Always", pull_secret=SECRET))
    pod = await wait_phase(node.client, ns, "pulled", "Running", timeout=30)
    assert pod.status.container_statuses[0].image == image
    code, out = await exec_in(node.client, ns, "pulled", "main", "cat", "/marker")
    assert (code, out.strip()) == (0, MARKER)

    async def pulled() -> bool:
        messages = {e.reason: e.message for e in await _events(node, ns, "pulled")}
        return "Pulling" in messages and "Successfully pulled" in messages.get("Pulled", "")

    await eventually(pulled, timeout=10)
    assert "Failed" not in {e.reason for e in await _events(node, ns, "pulled")}


async def test_pull_without_credentials_fails(
    node: Node, ns: str, registry: RunningRegistry
) -> None:
    image = registry.image(REPOSITORY, TAG)
    await node.client.pods.create(_pod(ns, "denied", image, "Always"))

    async def failed() -> bool:
        reason = await _waiting_reason(node, ns, "denied")
        events = await _events(node, ns, "denied")
        return reason in ("ErrImagePull", "ImagePullBackOff") and any(
            e.reason == "Failed" and image in e.message for e in events
        )

    await eventually(failed, timeout=20)

    # Between attempts the kubelet backs off instead of pulling on every wake-up.
    async def backing_off() -> bool:
        events = await _events(node, ns, "denied")
        return await _waiting_reason(node, ns, "denied") == "ImagePullBackOff" and any(
            e.reason == "BackOff" and "Back-off pulling image" in e.message for e in events
        )

    await eventually(backing_off, timeout=10)
    pod = await node.client.pods.get("denied", ns)
    assert pod.status.phase == "Pending"


async def test_if_not_present_uses_the_local_image(
    node: Node, ns: str, registry: RunningRegistry
) -> None:
    image = registry.image(REPOSITORY, TAG)
    await node.runtime.pull(image, registry.docker_auth())
    # No pull secret: a pull would fail, so Running proves the kubelet did not pull.
    await node.client.pods.create(_pod(ns, "local", image, "IfNotPresent"))
    await wait_phase(node.client, ns, "local", "Running", timeout=20)
    reasons = {e.reason for e in await _events(node, ns, "local")}
    assert "Pulling" not in reasons
    assert "Failed" not in reasons


async def test_never_with_a_missing_image(node: Node, ns: str, registry: RunningRegistry) -> None:
    image = registry.image("capstan-test/absent", TAG)
    await node.client.pods.create(_pod(ns, "never", image, "Never"))

    async def refused() -> bool:
        reasons = {e.reason for e in await _events(node, ns, "never")}
        reason = await _waiting_reason(node, ns, "never")
        return reason == "ErrImageNeverPull" and "ErrImageNeverPull" in reasons

    await eventually(refused, timeout=20)
    pod = await node.client.pods.get("never", ns)
    assert pod.status.phase == "Pending"
    assert "Pulling" not in {e.reason for e in await _events(node, ns, "never")}
