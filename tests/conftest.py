"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.support.etcd import run_etcd


@pytest.fixture(scope="session")
async def etcd_endpoint() -> AsyncIterator[str]:
    """One real etcd for the session: the sandbox's (CAPSTAN_TEST_ETCD_ENDPOINTS) when the
    suite runs under tools/test, else one started here. Tests isolate by key prefix or by
    namespace, never by assuming an empty store."""
    given = os.environ.get("CAPSTAN_TEST_ETCD_ENDPOINTS")
    if given:
        yield given
        return
    async with run_etcd() as etcd:
        yield etcd.endpoint
