"""From a pod's container spec to what the runtime creates: image reference defaulting and pull
policy, resource limits in Docker's terms, labels that let a restarted kubelet adopt the
container, and container names in the kubelet's k8s_<container>_<pod>_<ns>_<uid>_<n> form."""

from __future__ import annotations

from capstan.api.core.v1 import core_pb2
from capstan.machinery.quantity import cpu_millis, to_bytes

from kubelet.runtime import (
    LABEL_CONTAINER_NAME,
    LABEL_INIT,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_RESTART_COUNT,
)

CPU_PERIOD = 100_000  # microseconds, as the Kubernetes kubelet uses
MIN_SHARES = 2
SHARES_PER_CPU = 1024


def normalize_image(image: str) -> str:
    """A reference with its tag made explicit: `busybox` -> `busybox:latest`."""
    if "@" in image:
        return image
    slash = image.rfind("/")
    if image.rfind(":") > slash:
        return image
    return f"{image}:latest"


def pull_policy(container: core_pb2.Container) -> str:
    if container.image_pull_policy:
        return container.image_pull_policy
    image = container.image
    if "@" in image:
        return "IfNotPresent"
    tag = normalize_image(image).rsplit(":", 1)[1]
    return "Always" if tag == "latest" else "IfNotPresent"


def resource_limits(container: core_pb2.Container) -> tuple[int, int, int, int]:
    """(memory bytes, cpu quota, cpu period, cpu shares) for Docker's HostConfig, from the
    container's limits and requests the way the kubelet maps them to cgroups."""
    limits, requests = container.resources.limits, container.resources.requests
    memory = to_bytes(limits["memory"]) if "memory" in limits else 0
    quota = period = 0
    if "cpu" in limits:
        millis = cpu_millis(limits["cpu"])
        period = CPU_PERIOD
        quota = max(1000, millis * CPU_PERIOD // 1000)
    request = requests.get("cpu") or limits.get("cpu")
    shares = (
        max(MIN_SHARES, cpu_millis(request) * SHARES_PER_CPU // 1000) if request else MIN_SHARES
    )
    return memory, quota, period, shares


def pod_labels(pod: core_pb2.Pod, node: str) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_NODE: node,
        LABEL_POD_UID: pod.metadata.uid,
        LABEL_POD_NAME: pod.metadata.name,
        LABEL_POD_NAMESPACE: pod.metadata.namespace,
    }


def container_labels(
    pod: core_pb2.Pod, node: str, name: str, restart_count: int, init: bool
) -> dict[str, str]:
    labels = pod_labels(pod, node)
    labels[LABEL_CONTAINER_NAME] = name
    labels[LABEL_RESTART_COUNT] = str(restart_count)
    if init:
        labels[LABEL_INIT] = "true"
    return labels


def runtime_name(pod: core_pb2.Pod, container: str, restart_count: int) -> str:
    m = pod.metadata
    return f"k8s_{container}_{m.name}_{m.namespace}_{m.uid}_{restart_count}"
