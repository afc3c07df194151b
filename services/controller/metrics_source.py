"""Where the HPA gets pod CPU usage: the kubelets' Stats API (capstan.node.v1.Kubelet/Stats).

Kubernetes' HPA reads the metrics API that metrics-server fills from the kubelets; capstan
has no metrics-server, so the controller asks each node's kubelet directly, at the node's
InternalIP and status.daemonEndpoints.kubeletEndpoint.Port - one call per node that runs
pods of the target. The HPA only sees the MetricsSource protocol, so tests inject usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

import grpc
import structlog
from capstan.api.node.v1 import node_pb2, node_pb2_grpc
from capstan.client import Informer
from capstan.grpc_server import channel_options

log = structlog.get_logger(__name__)

CALL_TIMEOUT = 5.0


class MetricsSource(Protocol):
    async def pod_cpu_millis(self, namespace: str, pods: Iterable[Any]) -> dict[str, int]:
        """CPU usage in millicores by pod name; pods without a sample are absent."""
        ...


def kubelet_target(node: Any) -> str | None:
    """host:port of a node's kubelet API, or None if the node publishes none."""
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    by_type = {a.type: a.address for a in node.status.addresses}
    host = by_type.get("InternalIP") or by_type.get("Hostname") or ""
    if not port or not host:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class KubeletMetricsSource:
    def __init__(self, nodes: Informer[Any], *, timeout: float = CALL_TIMEOUT) -> None:
        self.nodes = nodes
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, target: str) -> node_pb2_grpc.KubeletStub:
        channel = self._channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(target, options=channel_options())
            self._channels[target] = channel
        return node_pb2_grpc.KubeletStub(channel)

    async def _node_usage(self, target: str, namespace: str) -> dict[str, int]:
        stub = self._stub(target)
        out: dict[str, int] = {}
        call: Any = stub.Stats(node_pb2.StatsRequest(namespace=namespace), timeout=self.timeout)
        try:
            async for sample in call:
                for pod in sample.pods:
                    if pod.namespace == namespace:
                        out[pod.name] = round(pod.usage.cpu_usage_nano_cores / 1_000_000)
                break  # without an interval the kubelet sends one sample
        except grpc.aio.AioRpcError as e:
            log.warning("kubelet stats failed", target=target, code=e.code().name)
            return {}
        finally:
            call.cancel()
        return out

    async def pod_cpu_millis(self, namespace: str, pods: Iterable[Any]) -> dict[str, int]:
        by_target: dict[str, set[str]] = {}
        for pod in pods:
            node = self.nodes.get(pod.spec.node_name) if pod.spec.node_name else None
            target = kubelet_target(node) if node is not None else None
            if target is not None:
                by_target.setdefault(target, set()).add(pod.metadata.name)
        results = await asyncio.gather(
            *(self._node_usage(target, namespace) for target in by_target)
        )
        usage: dict[str, int] = {}
        for (_, names), found in zip(by_target.items(), results, strict=True):
            usage.update({n: v for n, v in found.items() if n in names})
        return usage

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
