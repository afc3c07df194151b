"""Backends for the store conformance suite: every test runs once per backend.

etcd runs as one real process for the whole session; each test gets its own key prefix,
so tests never see each other's keys (they do share etcd's global revision counter, so
tests compare revisions relative to what they observed, never to absolute numbers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from capstan.store import Store, open_store

try:
    import capstan.store.etcd  # noqa: F401
except ImportError as exc:
    ETCD_SKIP_REASON: str | None = f"capstan.store.etcd does not import: {exc}"
else:
    ETCD_SKIP_REASON = None

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "etcd",
        id="etcd",
        marks=pytest.mark.skipif(ETCD_SKIP_REASON is not None, reason=str(ETCD_SKIP_REASON)),
    ),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store. etcd is only started when an etcd test runs."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.db'}"
    endpoint: str = request.getfixturevalue("etcd_endpoint")
    return f"etcd://{endpoint}"


@pytest.fixture
def backend(store_url: str) -> str:
    return store_url.partition(":")[0]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    # after_revision=0 means "from now", so a watch cannot replay from an empty store's
    # revision 0: one write outside every test prefix makes "the revision before my
    # writes" always a positive, replayable revision.
    await opened.create(f"/conformance-seed/{uuid.uuid4().hex}", b"")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def prefix() -> str:
    return f"/conformance/{uuid.uuid4().hex[:12]}/"
