"""Pure parts of the transport: backoff bounds, round robin that skips dead servers."""

from __future__ import annotations

import pytest
from capstan.client.transport import Backoff, Transport

pytestmark = pytest.mark.unit


def test_backoff_is_jittered_exponential_and_capped() -> None:
    b = Backoff(initial=0.1, maximum=1.0, multiplier=2.0)
    for attempt, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (50, 1.0)]:
        delays = [b.delay(attempt) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_round_robin_skips_servers_marked_down() -> None:
    t = Transport(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
    try:
        picks = [t._pick().address for _ in range(6)]
        assert picks == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"] * 2
        t._servers[1].down_until = float("inf")
        picks = [t._pick().address for _ in range(4)]
        assert "127.0.0.1:2" not in picks
        for s in t._servers:
            s.down_until = float("inf")
        assert t._pick().address  # all down: still picks one rather than failing
    finally:
        await t.close()


def test_needs_a_server() -> None:
    with pytest.raises(ValueError):
        Transport([])
