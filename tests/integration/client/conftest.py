"""A real apiserver (SQLite) for the client library's tests: one per session, and a
namespace per test so tests never see each other's objects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client

from tests.support.apiserver import RunningApiserver, run_apiserver


@pytest.fixture(scope="session")
async def apiserver(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningApiserver]:
    url = f"sqlite://{tmp_path_factory.mktemp('client-apiserver') / 'state.db'}"
    async with run_apiserver(url) as running:
        yield running


@pytest.fixture
async def client(apiserver: RunningApiserver) -> AsyncIterator[Client]:
    async with Client([apiserver.address], default_timeout=10) as c:
        yield c


async def new_namespace(client: Client) -> str:
    ns = core_pb2.Namespace()
    ns.metadata.name = f"t-{uuid.uuid4().hex[:10]}"
    await client.namespaces.create(ns)
    return ns.metadata.name


@pytest.fixture
async def ns(client: Client) -> str:
    return await new_namespace(client)


def configmap(ns: str, name: str, **data: str) -> core_pb2.ConfigMap:
    cm = core_pb2.ConfigMap()
    cm.metadata.namespace = ns
    cm.metadata.name = name
    cm.data.update(data)
    return cm


def pod(ns: str, name: str, **labels: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace = ns
    p.metadata.name = name
    p.metadata.labels.update(labels)
    p.spec.containers.add(name="main", image="busybox")
    return p
