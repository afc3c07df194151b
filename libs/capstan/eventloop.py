"""The event loop every capstan process runs on: uvloop.

Measured here on a gRPC unary echo (grpc.aio server, 64 calls in flight from a second
process): 3.7k calls/s and 215 us of server CPU per call on the default asyncio loop,
6.9k calls/s and 150 us with uvloop. gRPC's asyncio integration dominates a Python
apiserver's cost per request, so the loop matters more than anything in our own code.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    return uvloop.run(main)
