"""The writer process of the informer benchmark: creates N pods, then updates them
round-robin until it has made U updates, as fast as `concurrency` calls in flight allow.
Prints one JSON line: {"created": N, "updates": U, "seconds": ..., "resource_version": ...}.

    python -m tools.bench.informer_writer ADDRESS PODS UPDATES [CONCURRENCY]
"""

from __future__ import annotations

import json
import sys
import time

from capstan import eventloop
from capstan.api.core.v1 import core_pb2
from capstan.client import Client

from tools.bench import harness
from tools.bench.pods import make_pod, pod_name


async def run(address: str, pods: int, updates: int, concurrency: int) -> None:
    async with Client([address], default_timeout=60) as client:
        current: dict[int, core_pb2.Pod] = {}
        start = time.perf_counter()
        if pods:

            async def create(i: int) -> None:
                current[i] = await client.pods.create(make_pod(pod_name(i), i))

            await harness.closed_loop(create, pods, concurrency)
        else:
            items, _ = await client.pods.list_all("default")
            current = {i: p for i, p in enumerate(items)}
        last_rv = 0

        async def update(n: int) -> None:
            nonlocal last_rv
            i = n % len(current)
            pod = current[i]
            pod.metadata.annotations["capstan.dev/generation"] = str(n)
            current[i] = await client.pods.update(pod)
            last_rv = max(last_rv, int(current[i].metadata.resource_version))

        # One update per pod in flight at a time: no self-inflicted conflicts.
        await harness.closed_loop(update, updates, min(concurrency, len(current)))
        print(
            json.dumps(
                {
                    "created": pods,
                    "updates": updates,
                    "seconds": time.perf_counter() - start,
                    "resource_version": last_rv,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    eventloop.run(run(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 64))
