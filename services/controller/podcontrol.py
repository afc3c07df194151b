"""Creating and deleting a controller's pods: slow-start batches, expectations and the
SuccessfulCreate/FailedCreate/SuccessfulDelete events every workload controller records."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError, NotFoundError
from capstan.client import NORMAL, WARNING, Client, EventRecorder
from capstan.client.indexer import object_key
from google.protobuf.message import Message

from controller.expectations import Expectations
from controller.ownership import owner_reference

# Kubernetes' SlowStartInitialBatchSize: a failing create (quota, admission) fails once,
# not a thousand times.
SLOW_START_INITIAL_BATCH = 1

R = TypeVar("R")


async def slow_start(count: int, fn: Callable[[], Awaitable[R]], initial: int = 1) -> list[R]:
    """Call fn count times in doubling batches (1, 2, 4, ...), stopping after the first
    batch with a failure; the results of the calls that succeeded. The first error is
    raised after the remaining expected calls are reported through skipped()."""
    done: list[R] = []
    remaining = count
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        done.extend(r for r in results if not isinstance(r, BaseException))
        if errors:
            raise SlowStartError(len(done), count - len(done), errors[0])
        remaining -= batch
        batch = min(remaining, 2 * batch)
    return done


class SlowStartError(Exception):
    def __init__(self, created: int, skipped: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.created = created
        self.skipped = skipped
        self.cause = cause


def pod_from_template(
    template: core_pb2.PodTemplateSpec, owner: Message, *, generate_name: str = ""
) -> core_pb2.Pod:
    meta = owner.metadata  # type: ignore[attr-defined]
    pod = core_pb2.Pod()
    pod.metadata.namespace = meta.namespace
    pod.metadata.generate_name = generate_name or f"{meta.name}-"
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.finalizers.extend(template.metadata.finalizers)
    pod.metadata.owner_references.append(owner_reference(owner))
    pod.spec.CopyFrom(template.spec)
    return pod


class PodControl:
    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def create(self, owner: Message, pod: core_pb2.Pod) -> core_pb2.Pod:
        try:
            created = await self.client.pods.create(pod)
        except ApiError as e:
            self.recorder.record(owner, WARNING, "FailedCreate", f"Error creating: {e.message}")
            raise
        self.recorder.record(
            owner, NORMAL, "SuccessfulCreate", f"Created pod: {created.metadata.name}"
        )
        return created

    async def create_many(
        self,
        owner: Message,
        key: str,
        expectations: Expectations,
        count: int,
        make: Callable[[], core_pb2.Pod],
    ) -> int:
        """Create count pods made by make() in slow-start batches, expecting each; returns
        how many were created and re-raises the first failure."""
        if count <= 0:
            return 0
        expectations.expect_creations(key, count)

        async def one() -> core_pb2.Pod:
            return await self.create(owner, make())

        try:
            return len(await slow_start(count, one, SLOW_START_INITIAL_BATCH))
        except SlowStartError as e:
            # Failed and never-attempted creates will not be observed.
            expectations.creation_failed(key, count - e.created)
            raise e.cause from None

    async def delete(self, owner: Message, pod: core_pb2.Pod) -> bool:
        """False if the pod was already gone (its deletion may never be observed)."""
        try:
            await self.client.pods.delete(pod.metadata.name, pod.metadata.namespace)
        except NotFoundError:
            return False
        except ApiError as e:
            self.recorder.record(owner, WARNING, "FailedDelete", f"Error deleting: {e.message}")
            raise
        self.recorder.record(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")
        return True

    async def delete_many(
        self, owner: Message, key: str, expectations: Expectations, pods: Sequence[core_pb2.Pod]
    ) -> None:
        if not pods:
            return
        keys = [object_key(p) for p in pods]
        expectations.expect_deletions(key, keys)
        results = await asyncio.gather(
            *(self.delete(owner, p) for p in pods), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for pod_key, r in zip(keys, results, strict=True):
            if r is not True:
                expectations.deletion_observed(key, pod_key)
        if errors:
            raise errors[0]
