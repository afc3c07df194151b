"""A realistic pod for load tests: what a Deployment stamps out for a small web service
(two containers, labels, requests/limits, probes, env, volumes), about 1 KB serialised.
Empty, tiny pods would flatter every per-byte cost (encode, store, fan-out)."""

from __future__ import annotations

from capstan.api.core.v1 import core_pb2

NAMESPACE = "default"
# Pods carry shard=<i % SHARDS>, so one shard's selector matches 1/SHARDS of them.
SHARDS = 10


def pod_name(i: int) -> str:
    return f"bench-{i:06d}"


def make_pod(name: str, index: int) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    meta = pod.metadata
    meta.name = name
    meta.namespace = NAMESPACE
    meta.labels.update(
        {
            "app.kubernetes.io/name": "web",
            "app.kubernetes.io/component": "frontend",
            "pod-template-hash": "5d8f7c9b6d",
            "shard": str(index % SHARDS),
        }
    )
    meta.annotations["capstan.dev/bench"] = "apiserver"
    spec = pod.spec
    spec.restart_policy = "Always"
    spec.termination_grace_period_seconds = 30
    spec.service_account_name = "default"
    spec.node_selector["kubernetes.io/os"] = "linux"
    spec.volumes.add(name="cache").empty_dir.size_limit = "256Mi"
    config = spec.volumes.add(name="config")
    config.config_map.name = "web-config"

    web = spec.containers.add(name="web", image="registry.local/web:1.24.3")
    web.args.extend(["--listen=:8080", "--config=/etc/web/config.yaml", "--log-level=info"])
    web.ports.add(name="http", container_port=8080, protocol="TCP")
    web.ports.add(name="metrics", container_port=9102, protocol="TCP")
    web.env.add(name="WEB_MODE", value="production")
    web.env.add(name="WEB_WORKERS", value="4")
    web.env.add(name="POD_NAME").value_from.field_ref.field_path = "metadata.name"
    web.resources.requests.update({"cpu": "250m", "memory": "256Mi"})
    web.resources.limits.update({"cpu": "1", "memory": "512Mi"})
    web.volume_mounts.add(name="config", mount_path="/etc/web", read_only=True)
    web.volume_mounts.add(name="cache", mount_path="/var/cache/web")
    live = web.liveness_probe
    live.http_get.path = "/healthz"
    live.http_get.port.string_value = "http"
    live.initial_delay_seconds = 10
    live.period_seconds = 10
    ready = web.readiness_probe
    ready.http_get.path = "/ready"
    ready.http_get.port.number_value = 8080
    ready.period_seconds = 5

    side = spec.containers.add(name="log-shipper", image="registry.local/log-shipper:3.1.0")
    side.command.extend(["/bin/shipper", "--source=/var/cache/web/logs", "--sink=stdout"])
    side.resources.requests.update({"cpu": "50m", "memory": "64Mi"})
    side.resources.limits.update({"cpu": "200m", "memory": "128Mi"})
    side.volume_mounts.add(name="cache", mount_path="/var/cache/web", read_only=True)
    side_ready = side.readiness_probe
    side_ready.tcp_socket.port.number_value = 24224
    side_ready.period_seconds = 10
    return pod
