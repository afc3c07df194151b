"""One watcher process of the fan-out benchmark: N concurrent Pods/Watch streams over a few
channels, recording when each event arrives (CLOCK_MONOTONIC, which every process on the
machine shares, so the writer's completion times compare directly).

Several of these run at once because one Python process cannot drain 1000 busy streams
without becoming the bottleneck itself. Protocol on stdio: prints "ready" once every
stream has received an event (so it is registered with the server); on "stop" from stdin
it closes its streams and prints one JSON line {"receipts": {rv: [t, ...]}, ...}.

    python -m tools.bench.watch_worker ADDRESS STREAMS
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import sys
import time

import grpc
from capstan import eventloop
from capstan.api.core.v1 import core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2
from capstan.grpc_server import channel_options

# Stay well under any HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS a server may announce
# (gRPC core's default is unlimited, Go's 250, common proxies 100-128).
STREAMS_PER_CHANNEL = 100


async def run(address: str, streams: int) -> None:
    receipts: dict[str, list[float]] = collections.defaultdict(list)
    started: set[int] = set()
    ready = asyncio.Event()
    errors: list[str] = []
    # A private subchannel pool per channel: separate TCP connections, not one shared one.
    options = [*channel_options(), ("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(address, options=options)
        for _ in range(math.ceil(streams / STREAMS_PER_CHANNEL))
    ]

    def settled(index: int) -> None:
        started.add(index)
        if len(started) == streams:
            ready.set()

    async def watch(index: int) -> None:
        stub = core_pb2_grpc.PodsStub(channels[index % len(channels)])
        try:
            async for event in stub.Watch(meta_pb2.ListOptions()):
                now = time.monotonic()
                if event.type == "BOOKMARK":
                    continue
                receipts[event.object.metadata.resource_version].append(now)
                if index not in started:
                    settled(index)
        except grpc.aio.AioRpcError as e:
            errors.append(f"{e.code().name}: {e.details()}")
        # A stream that failed will never be ready: count it so the run can end and report.
        settled(index)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = [asyncio.create_task(watch(i)) for i in range(streams)]
    await ready.wait()
    print("ready", flush=True)
    while (await reader.readline()).strip() not in (b"stop", b""):
        pass
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for channel in channels:
        await channel.close()
    print(json.dumps({"receipts": receipts, "errors": errors, "streams": streams}), flush=True)


def main() -> None:
    address, streams = sys.argv[1], int(sys.argv[2])
    eventloop.run(run(address, streams))


if __name__ == "__main__":
    main()
