"""Container environment, as the Kubernetes kubelet builds it: $(VAR) expansion, env values
from ConfigMaps, Secrets and pod fields, envFrom, and the Docker-links-style variables for the
Services of the pod's namespace."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from capstan.api.core.v1 import core_pb2
from capstan.machinery.quantity import parse_quantity

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' $(VAR) syntax: $(NAME) becomes the variable's value when it is defined and
    stays as written when not; $$ is an escaped $; any other $ is literal."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : close]
            value = lookup(name) if name else None
            out.append(value if value is not None else text[i : close + 1])
            i = close + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def service_env(services: Iterable[core_pb2.Service]) -> dict[str, str]:
    """FOO_SERVICE_HOST/FOO_SERVICE_PORT/FOO_PORT_... for every Service with a cluster IP."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s.metadata.name):
        ip = svc.spec.cluster_ip
        if not ip or ip == "None" or not svc.spec.ports:
            continue
        prefix = svc.metadata.name.upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(svc.spec.ports[0].port)
        for port in svc.spec.ports:
            if port.name:
                env[f"{prefix}_SERVICE_PORT_{port.name.upper().replace('-', '_')}"] = str(port.port)
        for i, port in enumerate(svc.spec.ports):
            proto = (port.protocol or "TCP").upper()
            url = f"{proto.lower()}://{ip}:{port.port}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            base = f"{prefix}_PORT_{port.port}_{proto}"
            env[base] = url
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port.port)
            env[f"{base}_ADDR"] = ip
    return env


class EnvError(Exception):
    """The env cannot be built yet (a referenced ConfigMap/Secret or key is missing):
    the container waits with CreateContainerConfigError."""


@dataclass
class EnvSources:
    """Where env values come from; the kubelet passes its informer caches."""

    config_map: Callable[[str, str], core_pb2.ConfigMap | None]
    secret: Callable[[str, str], core_pb2.Secret | None]
    services: Callable[[str], list[core_pb2.Service]]


def pod_field(pod: core_pb2.Pod, path: str) -> str:
    simple: dict[str, str] = {
        "metadata.name": pod.metadata.name,
        "metadata.namespace": pod.metadata.namespace,
        "metadata.uid": pod.metadata.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.hostIP": pod.status.host_ip,
        "status.podIP": pod.status.pod_ip,
        "status.podIPs": ",".join(ip.ip for ip in pod.status.pod_ips) or pod.status.pod_ip,
        "status.hostIPs": ",".join(ip.ip for ip in pod.status.host_ips) or pod.status.host_ip,
    }
    if path in simple:
        return simple[path]
    m = _FIELD_KEY.match(path)
    if m:
        source: Mapping[str, str] = (
            pod.metadata.labels if m.group(1) == "labels" else pod.metadata.annotations
        )
        return source.get(m.group(2), "")
    raise EnvError(f"unsupported fieldRef {path!r}")


def resource_field(container: core_pb2.Container, ref: core_pb2.ResourceFieldSelector) -> str:
    kind, _, name = ref.resource.partition(".")
    table = container.resources.limits if kind == "limits" else container.resources.requests
    value = table.get(name)
    if value is None and kind == "requests":
        value = container.resources.limits.get(name)
    if value is None:
        # Kubernetes falls back to the node's allocatable; "0" keeps the variable defined.
        return "0"
    divisor = parse_quantity(ref.divisor or "1").value
    result = parse_quantity(value).value / divisor
    return str(-(-result.numerator // result.denominator))


def container_env(
    pod: core_pb2.Pod, container: core_pb2.Container, sources: EnvSources
) -> dict[str, str]:
    """The ordered environment of one container, as Kubernetes makes it: service variables
    first (when enableServiceLinks), then envFrom, then env, each env value expanded against
    what came before it."""
    ns = pod.metadata.namespace
    env: dict[str, str] = {}
    links = pod.spec.enable_service_links if pod.spec.HasField("enable_service_links") else True
    if links:
        env.update(service_env(sources.services(ns)))
    for env_from in container.env_from:
        data: Mapping[str, str]
        if env_from.HasField("config_map_ref"):
            ref = env_from.config_map_ref
            cm = sources.config_map(ns, ref.name)
            if cm is None:
                if ref.optional:
                    continue
                raise EnvError(f'configmap "{ref.name}" not found')
            data = cm.data
        elif env_from.HasField("secret_ref"):
            sref = env_from.secret_ref
            secret = sources.secret(ns, sref.name)
            if secret is None:
                if sref.optional:
                    continue
                raise EnvError(f'secret "{sref.name}" not found')
            data = {k: v.decode("utf-8", "replace") for k, v in secret.data.items()}
            data = {**data, **secret.string_data}
        else:
            continue
        for key, value in data.items():
            name = env_from.prefix + key
            if _ENV_NAME.match(name):
                env[name] = value
    for var in container.env:
        if var.HasField("value_from"):
            found = _value_from(pod, container, var.value_from, sources)
            if found is None:
                continue
            env[var.name] = found
        else:
            env[var.name] = expand(var.value, env.get)
    return env


def _value_from(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    src: core_pb2.EnvVarSource,
    sources: EnvSources,
) -> str | None:
    ns = pod.metadata.namespace
    if src.HasField("field_ref"):
        return pod_field(pod, src.field_ref.field_path)
    if src.HasField("resource_field_ref"):
        return resource_field(container, src.resource_field_ref)
    if src.HasField("config_map_key_ref"):
        ref = src.config_map_key_ref
        cm = sources.config_map(ns, ref.name)
        if cm is None or ref.key not in cm.data:
            if ref.optional:
                return None
            what = f'configmap "{ref.name}"' if cm is None else f'key "{ref.key}" in {ref.name}'
            raise EnvError(f"{what} not found")
        return cm.data[ref.key]
    if src.HasField("secret_key_ref"):
        sref = src.secret_key_ref
        secret = sources.secret(ns, sref.name)
        if secret is not None and sref.key in secret.string_data:
            return secret.string_data[sref.key]
        if secret is None or sref.key not in secret.data:
            if sref.optional:
                return None
            what = f'secret "{sref.name}"' if secret is None else f'key "{sref.key}" in {sref.name}'
            raise EnvError(f"{what} not found")
        return secret.data[sref.key].decode("utf-8", "replace")
    return None


def expand_command(
    container: core_pb2.Container, env: Mapping[str, str]
) -> tuple[list[str] | None, list[str] | None]:
    """command (entrypoint) and args with $(VAR) expanded; None keeps the image's own."""
    command = [expand(c, env.get) for c in container.command] if container.command else None
    args = [expand(a, env.get) for a in container.args] if container.args else None
    return command, args
