"""`capstan scale` and `capstan rollout status|history|undo|pause|resume` end to end: the
real capstan command and the real capstan-controller process (leader-elected) against a
real apiserver process; pods are scheduled and run by the fake cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from capstan.apierrors import ConflictError
from capstan.client import Client
from controller import podutil

from tests.integration.controller.conftest import eventually
from tests.integration.controller.fakecluster import FakeCluster
from tests.integration.controller.workloads import deployment
from tests.support.apiserver import RunningApiserver, apiserver_process

pytestmark = pytest.mark.integration


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningApiserver]:
    async with apiserver_process(f"sqlite://{tmp_path / 'state.db'}") as running:
        yield running


@pytest.fixture
async def controller_process(server: RunningApiserver, tmp_path: Path) -> AsyncIterator[None]:
    log = (tmp_path / "controller.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", "--server", server.address, "--insecure",
        "--controllers", "replicaset,deployment", "--leader-elect-resource-namespace", "default",
        "--leader-elect-retry-period", "0.2", "--log-format", "json",
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        yield
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
        assert proc.returncode == 0, (tmp_path / "controller.log").read_text()[-3000:]


async def capstan(server: RunningApiserver, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "CAPSTAN_CONFIG": str(tmp_path / "no-config")}
    env.pop("CAPSTAN_SERVER", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capstan.cli.main", "--server", server.address, "--insecure",
        "-n", "default", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"capstan {' '.join(args)}: {err.decode()}{out.decode()}"
    return out.decode()


async def set_image(client: Client, image: str, cause: str = "") -> None:
    """Update the template, re-reading on a conflict with the controller's status writes."""
    for _ in range(10):
        cur = await client.deployments.get("web", "default")
        cur.spec.template.spec.containers[0].image = image
        if cause:
            cur.metadata.annotations["kubernetes.io/change-cause"] = cause
        try:
            await client.deployments.update(cur)
            return
        except ConflictError:
            await asyncio.sleep(0.1)
    raise AssertionError("could not update the deployment")


async def test_scale_and_rollout_verbs(
    server: RunningApiserver, controller_process: None, tmp_path: Path
) -> None:
    async with (
        Client([server.address], default_timeout=10) as client,
        FakeCluster(client, "default") as fc,
    ):
        await fc.add_node("cli-node")
        d = deployment("default", "web", 3)
        d.metadata.annotations["kubernetes.io/change-cause"] = "initial"
        await client.deployments.create(d)
        out = await capstan(
            server, tmp_path, "rollout", "status", "deployment/web", "--timeout", "30"
        )
        assert 'deployment "web" successfully rolled out' in out

        await set_image(client, "busybox:2", "upgrade")
        await capstan(server, tmp_path, "rollout", "status", "deployment/web", "--timeout", "30s")
        history = await capstan(server, tmp_path, "rollout", "history", "deployment/web")
        assert [line.split() for line in history.splitlines()[2:]] == [
            ["1", "initial"],
            ["2", "upgrade"],
        ]

        out = await capstan(server, tmp_path, "rollout", "undo", "deployment/web")
        assert "rolled back" in out
        await capstan(server, tmp_path, "rollout", "status", "deployment/web", "--timeout", "30")

        def images() -> set[str]:
            return {p.spec.containers[0].image for p in fc.running()}

        await eventually(lambda: images() == {"busybox:1"})
        history = await capstan(server, tmp_path, "rollout", "history", "deployment/web")
        # Revision 1 comes back as 3, with its change-cause.
        assert [line.split() for line in history.splitlines()[2:]] == [
            ["2", "upgrade"],
            ["3", "initial"],
        ]

        await capstan(server, tmp_path, "rollout", "pause", "deployment/web")
        await set_image(client, "busybox:3")
        await capstan(server, tmp_path, "scale", "deployment/web", "--replicas=5")
        await eventually(
            lambda: len(fc.running()) == 5 and all(podutil.is_ready(p) for p in fc.running())
        )
        assert images() == {"busybox:1"}
        await capstan(server, tmp_path, "rollout", "resume", "deployment/web")
        await capstan(server, tmp_path, "rollout", "status", "deployment/web", "--timeout", "30")
        await eventually(lambda: images() == {"busybox:3"} and len(fc.running()) == 5)
        await capstan(server, tmp_path, "scale", "deployment", "web", "--replicas=2")
        await eventually(lambda: len(fc.running()) == 2)
