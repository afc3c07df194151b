"""Fixtures for the apiserver's robustness and operability tests: a store URL per backend
(SQLite file or the session etcd), objects to seed, and throwaway TLS material."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

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
    """A store for one apiserver: a fresh SQLite file, or the session's etcd (shared with
    other tests, so tests isolate by namespace)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    endpoint: str = request.getfixturevalue("etcd_endpoint")
    return f"etcd://{endpoint}"


@pytest.fixture
def namespace() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}"
