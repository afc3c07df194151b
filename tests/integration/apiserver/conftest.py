"""Apiservers for the API-semantics suite: every test runs once per store backend.

Each backend gets one apiserver for the whole session (starting one per test would cost
more than the tests), and each test gets its own namespace, so tests never see each
other's objects. A second, "small" apiserver per backend has tiny watch limits and a fast
bookmark interval, for the tests that need to overflow them cheaply.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.integration.apiserver.helpers import Clients
from tests.support.apiserver import RunningApiserver, run_apiserver

# What the small apiserver's limits are; tests size their writes from these.
SMALL_WATCH_CACHE_SIZE = 50
SMALL_WATCH_MAX_BACKLOG = 20
SMALL_BOOKMARK_INTERVAL = 0.2


@pytest.fixture(scope="session", params=["sqlite", "etcd"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _store_url(backend: str, request: pytest.FixtureRequest, name: str) -> str:
    """A fresh SQLite file, or the session's shared etcd (etcd only started when needed).
    Called from synchronous fixtures: an async fixture cannot set up another one."""
    if backend == "sqlite":
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        return f"sqlite://{factory.mktemp(name) / 'state.db'}"
    endpoint: str = request.getfixturevalue("etcd_endpoint")
    return f"etcd://{endpoint}"


@pytest.fixture(scope="session")
def store_url(backend: str, request: pytest.FixtureRequest) -> str:
    return _store_url(backend, request, "apiserver")


@pytest.fixture(scope="session")
def small_store_url(backend: str, request: pytest.FixtureRequest) -> str:
    return _store_url(backend, request, "small-apiserver")


@pytest.fixture(scope="session")
async def apiserver(store_url: str) -> AsyncIterator[RunningApiserver]:
    async with run_apiserver(store_url) as running:
        yield running


@pytest.fixture(scope="session")
async def small_apiserver(small_store_url: str) -> AsyncIterator[RunningApiserver]:
    async with run_apiserver(
        small_store_url,
        bookmark_interval=SMALL_BOOKMARK_INTERVAL,
        watch_cache_size=SMALL_WATCH_CACHE_SIZE,
        watch_max_backlog=SMALL_WATCH_MAX_BACKLOG,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def api(apiserver: RunningApiserver) -> Clients:
    return Clients.connect(apiserver)


@pytest.fixture(scope="session")
def small_api(small_apiserver: RunningApiserver) -> Clients:
    return Clients.connect(small_apiserver)


async def _new_namespace(clients: Clients) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await clients.create_namespace(name)
    return name


@pytest.fixture
async def ns(api: Clients) -> str:
    """A namespace of this test's own on the session apiserver."""
    return await _new_namespace(api)


@pytest.fixture
async def small_ns(small_api: Clients) -> str:
    """A namespace of this test's own on the small apiserver."""
    return await _new_namespace(small_api)
