"""Cascading deletion: background, foreground, orphan, and `capstan delete --cascade=orphan`."""

from __future__ import annotations

from pathlib import Path

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Client

from tests.integration.controller_cluster.conftest import cli, eventually, running
from tests.support.apiserver import RunningApiserver

pytestmark = pytest.mark.integration


async def owner_and_dependents(client: Client, ns: str, name: str, n: int = 2) -> str:
    owner = core_pb2.ConfigMap()
    owner.metadata.name, owner.metadata.namespace = name, ns
    created = await client.configmaps.create(owner)
    for i in range(n):
        dep = core_pb2.ConfigMap()
        dep.metadata.name, dep.metadata.namespace = f"{name}-dep{i}", ns
        dep.metadata.owner_references.add(
            api_version="v1", kind="ConfigMap", name=name, uid=created.metadata.uid,
            controller=True, block_owner_deletion=True,
        )  # fmt: skip
        await client.configmaps.create(dep)
    return str(created.metadata.uid)


async def exists(client: Client, ns: str, name: str) -> bool:
    try:
        await client.configmaps.get(name, ns)
    except NotFoundError:
        return False
    return True


async def test_background_foreground_and_orphan(client: Client, ns: str) -> None:
    await owner_and_dependents(client, ns, "bg")
    await owner_and_dependents(client, ns, "fg")
    await owner_and_dependents(client, ns, "or")
    async with running(client, "garbagecollector"):
        await client.configmaps.delete("bg", ns)

        async def bg_gone() -> bool:
            return not any([await exists(client, ns, f"bg-dep{i}") for i in range(2)])

        await eventually(bg_gone)

        deleting = await client.configmaps.delete("fg", ns, propagation_policy="Foreground")
        assert "foregroundDeletion" in deleting.metadata.finalizers

        async def fg_gone() -> bool:
            names = ("fg", "fg-dep0", "fg-dep1")
            return not any([await exists(client, ns, n) for n in names])

        await eventually(fg_gone)

        await client.configmaps.delete("or", ns, propagation_policy="Orphan")

        async def orphaned() -> bool:
            if await exists(client, ns, "or"):
                return False
            deps = [await client.configmaps.get(f"or-dep{i}", ns) for i in range(2)]
            return all(not d.metadata.owner_references for d in deps)

        await eventually(orphaned)


async def test_cli_cascade_orphan(
    client: Client, ns: str, apiserver: RunningApiserver, tmp_path: Path
) -> None:
    await owner_and_dependents(client, ns, "cli", n=1)
    async with running(client, "garbagecollector"):
        code, _, err = await cli(
            apiserver.address, tmp_path, "delete", "configmap", "cli", "-n", ns, "--cascade=orphan"
        )
        assert code == 0, err

        async def orphaned() -> bool:
            if await exists(client, ns, "cli"):
                return False
            dep = await client.configmaps.get("cli-dep0", ns)
            return not dep.metadata.owner_references

        await eventually(orphaned)
