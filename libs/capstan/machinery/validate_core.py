"""Validation of the core (v1) kinds other than Pod: Service, Endpoints, ConfigMap, Secret,
ServiceAccount, Namespace, Node, Event, PersistentVolume(Claim), ResourceQuota, LimitRange.

Rules, paths and messages follow k8s.io/kubernetes/pkg/apis/core/validation. Things only the
apiserver knows (the configured node-port range, which cluster IPs are free) are its business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from capstan.api.core.v1 import core_pb2
from capstan.machinery.intstr import port_ok, validate_int_or_str_port
from capstan.machinery.quantity import Quantity, QuantityError, parse_quantity
from capstan.machinery.validate_meta import (
    Errors,
    each_invalid,
    enum,
    immutable,
    key,
    maps_equal,
    non_negative,
    render,
)
from capstan.machinery.validate_pod import (
    validate_conditions,
    validate_nfs,
    validate_node_selector,
    validate_quantity_value,
    validate_taint_effect,
)
from capstan.machinery.validation import (
    SUPPORTED_PROTOCOLS,
    child,
    config_map_key_ok,
    dns1123_label_ok,
    duplicate,
    forbidden,
    index,
    invalid,
    is_cidr,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_ip,
    is_ipv4,
    is_label_value,
    is_port_number,
    is_qualified_name,
    not_supported,
    required,
    too_long,
    utf8_len,
    validate_label_selector,
    validate_labels,
    validate_qualified_name,
)
from capstan.machinery.violations import FieldViolation

MAX_SECRET_SIZE: Final = 1024 * 1024
SERVICE_TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES: Final = ("ClientIP", "None")
IP_FAMILIES: Final = ("IPv4", "IPv6")
IP_FAMILY_POLICIES: Final = ("SingleStack", "PreferDualStack", "RequireDualStack")
TRAFFIC_POLICIES: Final = ("Cluster", "Local")
MAX_CLIENT_IP_AFFINITY_SECONDS: Final = 86400
KUBELET_PORT: Final = 10250
ACCESS_MODES: Final = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES: Final = ("Delete", "Recycle", "Retain")
VOLUME_MODES: Final = ("Block", "Filesystem")
LIMIT_TYPES: Final = ("Pod", "Container", "PersistentVolumeClaim")
EVENT_TYPES: Final = ("Normal", "Warning")
NAMESPACE_PHASES: Final = ("Active", "Terminating")
PV_PHASES: Final = ("Pending", "Available", "Bound", "Released", "Failed")
PVC_PHASES: Final = ("Pending", "Bound", "Lost")
NODE_PHASES: Final = ("Pending", "Running", "Terminated")
NODE_ADDRESS_TYPES: Final = ("Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS")
QUOTA_SCOPES: Final = (
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
)
STANDARD_QUOTA_RESOURCES: Final = frozenset(
    {
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
IMMUTABLE_WHEN_SET: Final = "field is immutable when `immutable` is set"


# ---------------------------------------------------------------------------------------------
# Service


def _is_headless(spec: core_pb2.ServiceSpec) -> bool:
    return spec.cluster_ip == "None"


def _service_port_ok(port: core_pb2.ServicePort, require_name: bool, names: set[str]) -> bool:
    """True only when _validate_service_port would report nothing; then, like it, adds the
    port's name to `names`. Anything unusual is left to the validator."""
    name = port.name
    if name:
        if not dns1123_label_ok(name) or name in names:
            return False
    elif require_name:
        return False
    if (
        not 1 <= port.port <= 65535
        or port.protocol not in SUPPORTED_PROTOCOLS
        or not port_ok(port.target_port)
        or (port.node_port and not 1 <= port.node_port <= 65535)
        or port.HasField("app_protocol")
    ):
        return False
    if name:
        names.add(name)
    return True


def _validate_service_port(
    port: core_pb2.ServicePort, require_name: bool, names: set[str], path: str
) -> Errors:
    out: Errors = []
    name_path = child(path, "name")
    if require_name and not port.name:
        out.append(required(name_path))
    elif port.name:
        out.extend(each_invalid(is_dns1123_label(port.name), name_path, port.name))
        if port.name in names:
            out.append(duplicate(name_path, port.name))
        names.add(port.name)
    out.extend(each_invalid(is_port_number(port.port), child(path, "port"), port.port))
    out.extend(enum(port.protocol, SUPPORTED_PROTOCOLS, child(path, "protocol")))
    out.extend(validate_int_or_str_port(port.target_port, child(path, "targetPort")))
    if port.node_port:
        out.extend(
            each_invalid(is_port_number(port.node_port), child(path, "nodePort"), port.node_port)
        )
    if port.HasField("app_protocol"):
        out.extend(validate_qualified_name(port.app_protocol, child(path, "appProtocol")))
    return out


def _validate_cluster_ips(spec: core_pb2.ServiceSpec, path: str) -> Errors:
    out: Errors = []
    ip_path, ips_path = child(path, "clusterIP"), child(path, "clusterIPs")
    if spec.cluster_ip and spec.cluster_ip != "None":
        out.extend(
            [invalid(ip_path, spec.cluster_ip, "must be empty, 'None', or a valid IP address")]
            if is_ip(spec.cluster_ip)
            else []
        )
    if spec.cluster_ips and spec.cluster_ip and spec.cluster_ips[0] != spec.cluster_ip:
        out.append(invalid(ips_path, list(spec.cluster_ips), "first value must match `clusterIP`"))
    for i, ip in enumerate(spec.cluster_ips):
        if ip == "None":
            if i > 0 or len(spec.cluster_ips) > 1:
                out.append(
                    invalid(index(ips_path, i), ip, "'None' must be the first and only value")
                )
        elif i > 0 or ip != spec.cluster_ip:
            out.extend(each_invalid(is_ip(ip), index(ips_path, i), ip))
    if len(spec.cluster_ips) > 2:
        out.append(invalid(ips_path, list(spec.cluster_ips), "may only hold up to 2 values"))
    families_path = child(path, "ipFamilies")
    seen: set[str] = set()
    for i, family in enumerate(spec.ip_families):
        if family not in IP_FAMILIES:
            out.append(not_supported(index(families_path, i), family, IP_FAMILIES))
        elif family in seen:
            out.append(duplicate(index(families_path, i), family))
        seen.add(family)
    if len(spec.ip_families) > 2:
        out.append(invalid(families_path, list(spec.ip_families), "may only hold up to 2 values"))
    if spec.HasField("ip_family_policy"):
        out.extend(enum(spec.ip_family_policy, IP_FAMILY_POLICIES, child(path, "ipFamilyPolicy")))
    return out


def validate_service(svc: core_pb2.Service, old: core_pb2.Service | None) -> Errors:
    spec, path = svc.spec, "spec"
    out: Errors = []
    headless = _is_headless(spec)
    ports_path = child(path, "ports")
    if not spec.ports and not headless and spec.type != "ExternalName":
        out.append(required(ports_path))
    if spec.type == "LoadBalancer":
        if headless:
            out.append(
                invalid(
                    child(path, "clusterIP"),
                    "None",
                    "may not be set to 'None' for LoadBalancer services",
                )
            )
        for i, port in enumerate(spec.ports):
            if port.port == KUBELET_PORT:
                out.append(
                    invalid(
                        index(ports_path, i),
                        port.port,
                        f"may not expose port {KUBELET_PORT} externally since it is used by "
                        "kubelet",
                    )
                )
    elif spec.type == "NodePort":
        if headless:
            out.append(
                invalid(
                    child(path, "clusterIP"),
                    "None",
                    "may not be set to 'None' for NodePort services",
                )
            )
    elif spec.type == "ExternalName":
        if spec.cluster_ip or spec.cluster_ips:
            field = "clusterIP" if spec.cluster_ip else "clusterIPs"
            out.append(forbidden(child(path, field), "may not be set for ExternalName services"))
        if spec.ip_families:
            out.append(
                forbidden(child(path, "ipFamilies"), "may not be set for ExternalName services")
            )
        if spec.HasField("ip_family_policy"):
            out.append(
                forbidden(child(path, "ipFamilyPolicy"), "may not be set for ExternalName services")
            )
        cname = spec.external_name.removesuffix(".")
        en_path = child(path, "externalName")
        if cname:
            out.extend(each_invalid(is_dns1123_subdomain(cname), en_path, cname))
        else:
            out.append(required(en_path))
    names: set[str] = set()
    require_name = len(spec.ports) > 1
    for i, port in enumerate(spec.ports):
        if not _service_port_ok(port, require_name, names):
            out.extend(_validate_service_port(port, require_name, names, index(ports_path, i)))
    out.extend(validate_labels(spec.selector, child(path, "selector")))
    out.extend(enum(spec.session_affinity, SESSION_AFFINITIES, child(path, "sessionAffinity")))
    cfg_path = child(path, "sessionAffinityConfig")
    if spec.session_affinity == "ClientIP":
        out.extend(_client_ip_config(spec, cfg_path))
    elif spec.session_affinity == "None" and spec.HasField("session_affinity_config"):
        out.append(forbidden(cfg_path, "must not be set when session affinity is None"))
    if spec.type != "ExternalName":
        out.extend(_validate_cluster_ips(spec, path))
    for i, ip in enumerate(spec.external_ips):
        out.extend(each_invalid(is_ip(ip), index(child(path, "externalIPs"), i), ip))
    out.extend(enum(spec.type, SERVICE_TYPES, child(path, "type")))
    node_ports: set[tuple[str, int]] = set()
    service_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(spec.ports):
        p = index(ports_path, i)
        if port.node_port:
            if spec.type == "ClusterIP":
                out.append(
                    forbidden(child(p, "nodePort"), "may not be used when `type` is 'ClusterIP'")
                )
            if (port.protocol, port.node_port) in node_ports:
                out.append(duplicate(child(p, "nodePort"), port.node_port))
            node_ports.add((port.protocol, port.node_port))
        pair = (port.protocol, port.port)
        if pair in service_ports:
            out.append(
                FieldViolation(
                    p, f'Duplicate value: {{"port":{port.port},"protocol":"{port.protocol}"}}'
                )
            )
        service_ports.add(pair)
    for i, cidr in enumerate(spec.load_balancer_source_ranges):
        out.extend(
            each_invalid(
                is_cidr(cidr.strip()), index(child(path, "loadBalancerSourceRanges"), i), cidr
            )
        )
    if spec.external_traffic_policy:
        etp = child(path, "externalTrafficPolicy")
        if spec.type not in ("NodePort", "LoadBalancer"):
            out.append(
                invalid(
                    etp,
                    spec.external_traffic_policy,
                    "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
                )
            )
        else:
            out.extend(enum(spec.external_traffic_policy, TRAFFIC_POLICIES, etp))
    if spec.HasField("internal_traffic_policy"):
        out.extend(
            enum(
                spec.internal_traffic_policy, TRAFFIC_POLICIES, child(path, "internalTrafficPolicy")
            )
        )
    if old is not None:
        old_spec = old.spec
        if (
            "ExternalName" not in (spec.type, old_spec.type)
            and old_spec.cluster_ip
            and spec.cluster_ip
            and spec.cluster_ip != old_spec.cluster_ip
        ):
            out.append(immutable(child(path, "clusterIP"), spec.cluster_ip))
    return out


def _client_ip_config(spec: core_pb2.ServiceSpec, path: str) -> Errors:
    detail = "when session affinity type is ClientIP"
    if not spec.HasField("session_affinity_config"):
        return [required(path, detail)]
    cfg = spec.session_affinity_config
    if not cfg.HasField("client_ip"):
        return [required(child(path, "clientIP"), detail)]
    timeout_path = child(path, "clientIP.timeoutSeconds")
    if not cfg.client_ip.HasField("timeout_seconds"):
        return [required(timeout_path, detail)]
    timeout = cfg.client_ip.timeout_seconds
    if not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
        return [
            invalid(
                timeout_path,
                timeout,
                f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}",
            )
        ]
    return []


def validate_service_status(svc: core_pb2.Service, old: core_pb2.Service) -> Errors:
    out: Errors = []
    ingress_path = "status.loadBalancer.ingress"
    for i, ingress in enumerate(svc.status.load_balancer.ingress):
        p = index(ingress_path, i)
        if ingress.ip:
            out.extend(each_invalid(is_ip(ingress.ip), child(p, "ip"), ingress.ip))
        if ingress.hostname:
            out.extend(
                each_invalid(
                    is_dns1123_subdomain(ingress.hostname), child(p, "hostname"), ingress.hostname
                )
            )
            if not is_ip(ingress.hostname):
                out.append(
                    invalid(
                        child(p, "hostname"),
                        ingress.hostname,
                        "must be a DNS name, not an IP address",
                    )
                )
    out.extend(validate_conditions(svc.status.conditions, "status.conditions"))
    return out


# ---------------------------------------------------------------------------------------------
# Endpoints


def validate_endpoints(ep: core_pb2.Endpoints, old: core_pb2.Endpoints | None) -> Errors:
    out: Errors = []
    for i, subset in enumerate(ep.subsets):
        p = index("subsets", i)
        if not subset.addresses and not subset.not_ready_addresses:
            out.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for field, camel in (
            ("addresses", "addresses"),
            ("not_ready_addresses", "notReadyAddresses"),
        ):
            for j, addr in enumerate(getattr(subset, field)):
                ap = index(child(p, camel), j)
                out.extend(each_invalid(is_ip(addr.ip), child(ap, "ip"), addr.ip))
                if addr.hostname:
                    out.extend(
                        each_invalid(
                            is_dns1123_label(addr.hostname), child(ap, "hostname"), addr.hostname
                        )
                    )
                if addr.HasField("node_name") and addr.node_name:
                    out.extend(
                        each_invalid(
                            is_dns1123_subdomain(addr.node_name),
                            child(ap, "nodeName"),
                            addr.node_name,
                        )
                    )
        require_name = len(subset.ports) > 1
        for j, port in enumerate(subset.ports):
            pp = index(child(p, "ports"), j)
            if require_name and not port.name:
                out.append(required(child(pp, "name")))
            elif port.name:
                out.extend(each_invalid(is_dns1123_label(port.name), child(pp, "name"), port.name))
            out.extend(each_invalid(is_port_number(port.port), child(pp, "port"), port.port))
            out.extend(enum(port.protocol, SUPPORTED_PROTOCOLS, child(pp, "protocol")))
    return out


# ---------------------------------------------------------------------------------------------
# ConfigMap, Secret, ServiceAccount


def _immutable_data(
    new_immutable: bool, old_immutable: bool, changes: Sequence[tuple[str, bool]]
) -> Errors:
    if not old_immutable:
        return []
    out: Errors = []
    if not new_immutable:
        out.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
    out.extend(forbidden(path, IMMUTABLE_WHEN_SET) for path, changed in changes if changed)
    return out


def _data_keys_ok(data: Mapping[str, object], binary: Mapping[str, bytes]) -> bool:
    """Every key a valid config key, and none in both maps: no key errors to report."""
    for k in data:
        if not config_map_key_ok(k) or k in binary:
            return False
    return all(config_map_key_ok(k) for k in binary)


def validate_config_map(cm: core_pb2.ConfigMap, old: core_pb2.ConfigMap | None) -> Errors:
    out: Errors = []
    total = 0
    data, binary = cm.data, cm.binary_data
    if _data_keys_ok(data, binary):
        # Nothing to report per key, so no need to sort them or build their paths.
        total = sum(utf8_len(data[k]) for k in data) + sum(len(binary[k]) for k in binary)
    else:
        for k in sorted(data):
            p = key("data", k)
            out.extend(each_invalid(is_config_map_key(k), p, k))
            if k in binary:
                out.append(invalid(p, k, "duplicate of key present in binaryData"))
            total += utf8_len(data[k])
        for k in sorted(binary):
            p = key("binaryData", k)
            out.extend(each_invalid(is_config_map_key(k), p, k))
            if k in data:
                out.append(invalid(p, k, "duplicate of key present in data"))
            total += len(binary[k])
    if total > MAX_SECRET_SIZE:
        out.append(too_long("data", MAX_SECRET_SIZE))
    if old is not None:
        out.extend(
            _immutable_data(
                cm.immutable,
                old.immutable,
                (
                    ("data", not maps_equal(data, old.data)),
                    ("binaryData", not maps_equal(binary, old.binary_data)),
                ),
            )
        )
    return out


def validate_secret(secret: core_pb2.Secret, old: core_pb2.Secret | None) -> Errors:
    out: Errors = []
    data = secret.data
    total = 0
    if _data_keys_ok(data, {}):
        total = sum(len(data[k]) for k in data)
    else:
        for k in sorted(data):
            out.extend(each_invalid(is_config_map_key(k), key("data", k), k))
            total += len(data[k])
    if total > MAX_SECRET_SIZE:
        out.append(too_long("data", MAX_SECRET_SIZE))
    stype = secret.type
    if stype == "kubernetes.io/service-account-token":
        if not secret.metadata.annotations.get("kubernetes.io/service-account.name"):
            out.append(required(key("metadata.annotations", "kubernetes.io/service-account.name")))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        data_key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if data_key not in data:
            out.append(required(key("data", data_key)))
        else:
            try:
                parsed = json.loads(data[data_key])
                if not isinstance(parsed, dict):
                    raise ValueError("must be a JSON object")
            except ValueError as err:
                out.append(invalid(key("data", data_key), "<secret contents redacted>", str(err)))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            out.append(required(key("data", "username")))
            out.append(required(key("data", "password")))
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            out.append(required(key("data", "ssh-privatekey")))
    elif stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                out.append(required(key("data", k)))
    if old is not None:
        if secret.type != old.type:
            out.append(immutable("type", secret.type))
        out.extend(
            _immutable_data(
                secret.immutable, old.immutable, (("data", not maps_equal(data, old.data)),)
            )
        )
    return out


def validate_service_account(
    sa: core_pb2.ServiceAccount, old: core_pb2.ServiceAccount | None
) -> Errors:
    out: Errors = []
    for i, ref in enumerate(sa.secrets):
        if ref.name:
            out.extend(
                each_invalid(
                    is_dns1123_subdomain(ref.name), child(index("secrets", i), "name"), ref.name
                )
            )
    for i, lref in enumerate(sa.image_pull_secrets):
        if not lref.name:
            out.append(required(child(index("imagePullSecrets", i), "name")))
    return out


# ---------------------------------------------------------------------------------------------
# Namespace and Node


def _standard_or_qualified_finalizer(name: str, path: str) -> Errors:
    out = each_invalid(is_qualified_name(name), path, name)
    if "/" not in name and name not in ("kubernetes", "orphan", "foregroundDeletion"):
        out.append(
            invalid(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        )
    return out


def validate_namespace(ns: core_pb2.Namespace, old: core_pb2.Namespace | None) -> Errors:
    out: Errors = []
    for i, finalizer in enumerate(ns.spec.finalizers):
        out.extend(_standard_or_qualified_finalizer(finalizer, index("spec.finalizers", i)))
    return out


def validate_namespace_status(ns: core_pb2.Namespace, old: core_pb2.Namespace) -> Errors:
    out = enum(ns.status.phase, NAMESPACE_PHASES, "status.phase", allow_empty=True)
    out.extend(validate_conditions(ns.status.conditions, "status.conditions"))
    return out


def _validate_taints(taints: Sequence[core_pb2.Taint], path: str) -> Errors:
    out: Errors = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints):
        p = index(path, i)
        out.extend(validate_qualified_name(taint.key, child(p, "key")))
        msgs = is_label_value(taint.value)
        if msgs:
            out.append(invalid(child(p, "value"), taint.value, ";".join(msgs)))
        out.extend(validate_taint_effect(taint.effect, child(p, "effect"), allow_empty=False))
        pair = (taint.key, taint.effect)
        if pair in seen:
            out.append(
                FieldViolation(
                    p,
                    f'Duplicate value: "{taint.key}={taint.value}:{taint.effect}": taints must be '
                    "unique by key and effect pair",
                )
            )
        seen.add(pair)
    return out


_POD_CIDR_CHANGE: Final = 'node updates may not change podCIDR except from "" to valid'


def validate_node(node: core_pb2.Node, old: core_pb2.Node | None) -> Errors:
    spec = node.spec
    out: Errors = []
    if spec.pod_cidr:
        out.extend(each_invalid(is_cidr(spec.pod_cidr), "spec.podCIDR", spec.pod_cidr))
    for i, cidr in enumerate(spec.pod_cidrs):
        out.extend(each_invalid(is_cidr(cidr), index("spec.podCIDRs", i), cidr))
    if len(spec.pod_cidrs) > 1:
        families = {not is_ipv4(c.partition("/")[0]) for c in spec.pod_cidrs}
        if len(spec.pod_cidrs) > 2 or len(families) != 2:
            out.append(
                invalid(
                    "spec.podCIDRs",
                    list(spec.pod_cidrs),
                    "may specify no more than one CIDR for each IP family",
                )
            )
    out.extend(_validate_taints(spec.taints, "spec.taints"))
    out.extend(_resource_list(node.status.capacity, "status.capacity"))
    out.extend(_resource_list(node.status.allocatable, "status.allocatable"))
    if old is not None:
        out.extend(_node_update(node, old))
    return out


def _node_update(node: core_pb2.Node, old: core_pb2.Node) -> Errors:
    out: Errors = []
    spec, old_spec = node.spec, old.spec
    if old_spec.pod_cidr and spec.pod_cidr != old_spec.pod_cidr:
        out.append(forbidden("spec.podCIDR", _POD_CIDR_CHANGE))
    if old_spec.pod_cidrs and list(spec.pod_cidrs) != list(old_spec.pod_cidrs):
        out.append(forbidden("spec.podCIDRs", _POD_CIDR_CHANGE))
    if old_spec.provider_id and spec.provider_id != old_spec.provider_id:
        out.append(
            forbidden(
                "spec.providerID", 'node updates may not change providerID except from "" to valid'
            )
        )
    return out


def validate_node_status(node: core_pb2.Node, old: core_pb2.Node) -> Errors:
    status = node.status
    out = _resource_list(status.capacity, "status.capacity")
    out.extend(_resource_list(status.allocatable, "status.allocatable"))
    out.extend(enum(status.phase, NODE_PHASES, "status.phase", allow_empty=True))
    out.extend(validate_conditions(status.conditions, "status.conditions"))
    for i, addr in enumerate(status.addresses):
        p = index("status.addresses", i)
        out.extend(enum(addr.type, NODE_ADDRESS_TYPES, child(p, "type")))
        if addr.type in ("InternalIP", "ExternalIP"):
            out.extend(each_invalid(is_ip(addr.address), child(p, "address"), addr.address))
        elif not addr.address:
            out.append(required(child(p, "address")))
    port = status.daemon_endpoints.kubelet_endpoint.port
    if port:
        out.extend(
            each_invalid(is_port_number(port), "status.daemonEndpoints.kubeletEndpoint.Port", port)
        )
    return out


def _resource_list(resources: Mapping[str, str], path: str) -> Errors:
    out: Errors = []
    for name in sorted(resources):
        p = key(path, name)
        out.extend(each_invalid(is_qualified_name(name), p, name))
        out.extend(validate_quantity_value(resources[name], p))
    return out


# ---------------------------------------------------------------------------------------------
# Event


def validate_event(ev: core_pb2.Event, old: core_pb2.Event | None) -> Errors:
    out: Errors = []
    obj = ev.involved_object
    if not ev.HasField("involved_object"):
        out.append(required("involvedObject"))
    else:
        if not obj.kind:
            out.append(required("involvedObject.kind"))
        if not obj.name:
            out.append(required("involvedObject.name"))
    if obj.namespace:
        if ev.metadata.namespace != obj.namespace:
            out.append(
                invalid("involvedObject.namespace", obj.namespace, "does not match event.namespace")
            )
    elif ev.metadata.namespace not in ("", "default") and not ev.HasField("event_time"):
        out.append(
            invalid("involvedObject.namespace", obj.namespace, "does not match event.namespace")
        )
    out.extend(enum(ev.type, EVENT_TYPES, "type", allow_empty=not ev.HasField("event_time")))
    out.extend(non_negative(ev.count, "count"))
    return out


# ---------------------------------------------------------------------------------------------
# PersistentVolume and PersistentVolumeClaim


def _positive_quantity(value: str, path: str) -> Errors:
    try:
        quantity = parse_quantity(value)
    except QuantityError:
        return validate_quantity_value(value, path)
    if quantity.value <= 0:
        return [invalid(path, str(quantity), "must be greater than zero")]
    return []


def _access_modes(modes: Sequence[str], path: str, empty_detail: str) -> Errors:
    out: Errors = []
    if not modes:
        out.append(required(path, empty_detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            out.append(not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        out.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return out


def validate_persistent_volume(
    pv: core_pb2.PersistentVolume, old: core_pb2.PersistentVolume | None
) -> Errors:
    spec, path = pv.spec, "spec"
    out = _access_modes(spec.access_modes, child(path, "accessModes"), "")
    cap_path = child(path, "capacity")
    if not spec.capacity:
        out.append(required(cap_path))
    if "storage" not in spec.capacity or len(spec.capacity) > 1:
        out.append(
            FieldViolation(
                cap_path,
                f'Unsupported value: {render(spec.capacity)}: supported values: "storage"',
            )
        )
    for name in sorted(spec.capacity):
        out.extend(_positive_quantity(spec.capacity[name], key(cap_path, name)))
    if spec.storage_class_name:
        out.extend(
            each_invalid(
                is_dns1123_subdomain(spec.storage_class_name),
                child(path, "storageClassName"),
                spec.storage_class_name,
            )
        )
    if spec.persistent_volume_reclaim_policy:
        out.extend(
            enum(
                spec.persistent_volume_reclaim_policy,
                RECLAIM_POLICIES,
                child(path, "persistentVolumeReclaimPolicy"),
            )
        )
    if spec.HasField("volume_mode"):
        out.extend(enum(spec.volume_mode, VOLUME_MODES, child(path, "volumeMode")))
    source = spec.WhichOneof("source")
    if source is None:
        out.append(required(path, "must specify a volume type"))
    elif source == "host_path":
        if not spec.host_path.path:
            out.append(required(child(path, "hostPath.path")))
        elif ".." in spec.host_path.path.split("/"):
            out.append(
                invalid(child(path, "hostPath.path"), spec.host_path.path, "must not contain '..'")
            )
    elif source == "nfs":
        out.extend(validate_nfs(spec.nfs, child(path, "nfs")))
    elif source == "local":
        if not spec.local.path:
            out.append(required(child(path, "local.path")))
        if not spec.HasField("node_affinity"):
            out.append(required(child(path, "nodeAffinity"), "Local volume requires node affinity"))
    if spec.HasField("node_affinity"):
        na_path = child(path, "nodeAffinity")
        if not spec.node_affinity.HasField("required"):
            out.append(required(child(na_path, "required")))
        else:
            out.extend(
                validate_node_selector(spec.node_affinity.required, child(na_path, "required"))
            )
    if old is not None:
        old_spec = old.spec
        if spec.WhichOneof("source") != old_spec.WhichOneof("source") or (
            source is not None and getattr(spec, source) != getattr(old_spec, source)
        ):
            out.append(
                forbidden(
                    "spec.persistentvolumesource",
                    "spec.persistentvolumesource is immutable after creation",
                )
            )
        if spec.volume_mode != old_spec.volume_mode:
            out.append(immutable("volumeMode", spec.volume_mode))
        if old_spec.HasField("node_affinity") and spec.node_affinity != old_spec.node_affinity:
            out.append(immutable("spec.nodeAffinity", spec.node_affinity))
    return out


def validate_pvc_spec(spec: core_pb2.PersistentVolumeClaimSpec, path: str) -> Errors:
    out = _access_modes(
        spec.access_modes, child(path, "accessModes"), "at least 1 access mode is required"
    )
    if spec.HasField("selector"):
        out.extend(validate_label_selector(spec.selector, child(path, "selector")))
    storage_path = key(child(path, "resources"), "storage")
    storage = spec.resources.requests.get("storage")
    if storage is None:
        out.append(required(storage_path))
    else:
        out.extend(_positive_quantity(storage, storage_path))
    for name in sorted(spec.resources.limits):
        out.extend(
            validate_quantity_value(
                spec.resources.limits[name], key(child(path, "resources.limits"), name)
            )
        )
    if spec.HasField("storage_class_name") and spec.storage_class_name:
        out.extend(
            each_invalid(
                is_dns1123_subdomain(spec.storage_class_name),
                child(path, "storageClassName"),
                spec.storage_class_name,
            )
        )
    if spec.HasField("volume_mode"):
        out.extend(enum(spec.volume_mode, VOLUME_MODES, child(path, "volumeMode")))
    return out


def validate_persistent_volume_claim(
    pvc: core_pb2.PersistentVolumeClaim, old: core_pb2.PersistentVolumeClaim | None
) -> Errors:
    out = validate_pvc_spec(pvc.spec, "spec")
    if old is not None:
        out.extend(_pvc_update(pvc, old))
    return out


def _pvc_update(pvc: core_pb2.PersistentVolumeClaim, old: core_pb2.PersistentVolumeClaim) -> Errors:
    out: Errors = []
    new_spec = core_pb2.PersistentVolumeClaimSpec()
    new_spec.CopyFrom(pvc.spec)
    old_spec = core_pb2.PersistentVolumeClaimSpec()
    old_spec.CopyFrom(old.spec)
    if not old_spec.volume_name:
        old_spec.volume_name = new_spec.volume_name  # the binder sets it once
    bound = pvc.status.phase == "Bound"
    if bound and "storage" in new_spec.resources.requests:
        if "storage" in old_spec.resources.requests:
            new_spec.resources.requests["storage"] = old_spec.resources.requests["storage"]
        else:
            del new_spec.resources.requests["storage"]
    if new_spec != old_spec:
        out.append(
            forbidden(
                "spec",
                "spec is immutable after creation except resources.requests for bound claims",
            )
        )
    new_size = pvc.spec.resources.requests.get("storage")
    old_size = old.spec.resources.requests.get("storage")
    if bound and new_size is not None and old_size is not None:
        try:
            shrunk = parse_quantity(new_size) < parse_quantity(old_size)
        except QuantityError:
            shrunk = False
        if shrunk:
            out.append(
                forbidden(
                    "spec.resources.requests.storage", "field can not be less than previous value"
                )
            )
    return out


def validate_pv_status(pv: core_pb2.PersistentVolume, old: core_pb2.PersistentVolume) -> Errors:
    return enum(pv.status.phase, PV_PHASES, "status.phase", allow_empty=True)


def validate_pvc_status(
    pvc: core_pb2.PersistentVolumeClaim, old: core_pb2.PersistentVolumeClaim
) -> Errors:
    status = pvc.status
    out = enum(status.phase, PVC_PHASES, "status.phase", allow_empty=True)
    out.extend(_resource_list(status.capacity, "status.capacity"))
    for mode in status.access_modes:
        if mode not in ACCESS_MODES:
            out.append(not_supported("status.accessModes", mode, ACCESS_MODES))
    out.extend(validate_conditions(status.conditions, "status.conditions"))
    return out


# ---------------------------------------------------------------------------------------------
# ResourceQuota and LimitRange


def _quota_resource_name(name: str, path: str) -> Errors:
    out = each_invalid(is_qualified_name(name), path, name)
    if (
        "/" not in name
        and name not in STANDARD_QUOTA_RESOURCES
        and not name.startswith(("hugepages-", "requests.hugepages-"))
    ):
        out.append(invalid(path, name, "must be a standard resource for quota"))
    return out


def _quota_list(resources: Mapping[str, str], path: str) -> Errors:
    out: Errors = []
    for name in sorted(resources):
        p = key(path, name)
        out.extend(_quota_resource_name(name, p))
        out.extend(validate_quantity_value(resources[name], p))
    return out


def validate_resource_quota(
    rq: core_pb2.ResourceQuota, old: core_pb2.ResourceQuota | None
) -> Errors:
    out = _quota_list(rq.spec.hard, "spec.hard")
    for scope in rq.spec.scopes:
        if scope not in QUOTA_SCOPES:
            out.append(not_supported("spec.scopes", scope, QUOTA_SCOPES))
    for i, expr in enumerate(rq.spec.scope_selector.match_expressions):
        p = index("spec.scopeSelector.matchExpressions", i)
        if expr.scope_name not in QUOTA_SCOPES:
            out.append(not_supported(child(p, "scopeName"), expr.scope_name, QUOTA_SCOPES))
        out.extend(
            enum(expr.operator, ("In", "NotIn", "Exists", "DoesNotExist"), child(p, "operator"))
        )
    return out


def validate_resource_quota_status(
    rq: core_pb2.ResourceQuota, old: core_pb2.ResourceQuota
) -> Errors:
    out = _quota_list(rq.status.hard, "status.hard")
    out.extend(_quota_list(rq.status.used, "status.used"))
    return out


def _limit_item(item: core_pb2.LimitRangeItem, path: str) -> Errors:
    out: Errors = []
    lists: dict[str, Mapping[str, str]] = {
        "max": item.max,
        "min": item.min,
        "default": item.default,
        "defaultRequest": item.default_request,
        "maxLimitRequestRatio": item.max_limit_request_ratio,
    }
    if item.type == "Pod":
        for camel in ("default", "defaultRequest"):
            if lists[camel]:
                out.append(
                    forbidden(child(path, camel), "may not be specified when `type` is 'Pod'")
                )
    if (
        item.type == "PersistentVolumeClaim"
        and "storage" not in item.min
        and "storage" not in item.max
    ):
        out.append(
            required(
                child(path, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            )
        )
    parsed: dict[str, dict[str, Quantity]] = {}
    for camel, resources in lists.items():
        for name in sorted(resources):
            p = key(child(path, camel), name)
            out.extend(each_invalid(is_qualified_name(name), p, name))
            errs = validate_quantity_value(resources[name], p)
            out.extend(errs)
            if not errs:
                parsed.setdefault(name, {})[camel] = parse_quantity(resources[name])
    for name in sorted(parsed):
        q = parsed[name]
        lo, hi, dflt, dreq, ratio = (
            q.get(k) for k in ("min", "max", "default", "defaultRequest", "maxLimitRequestRatio")
        )
        checks = (
            (lo, hi, "min", f"min value {lo} is greater than max value {hi}", lo),
            (
                lo,
                dreq,
                "defaultRequest",
                f"min value {lo} is greater than default request value {dreq}",
                dreq,
            ),
            (
                dreq,
                hi,
                "defaultRequest",
                f"default request value {dreq} is greater than max value {hi}",
                dreq,
            ),
            (
                dreq,
                dflt,
                "defaultRequest",
                f"default request value {dreq} is greater than default limit value {dflt}",
                dreq,
            ),
            (lo, dflt, "default", f"min value {lo} is greater than default value {dflt}", lo),
            (dflt, hi, "default", f"default value {dflt} is greater than max value {hi}", hi),
        )
        for a, b, camel, message, shown in checks:
            if a is not None and b is not None and a > b:
                out.append(invalid(key(child(path, camel), name), str(shown), message))
        if ratio is not None and ratio < parse_quantity("1"):
            out.append(
                invalid(
                    key(child(path, "maxLimitRequestRatio"), name),
                    str(ratio),
                    f"ratio {ratio} is less than 1",
                )
            )
    return out


def validate_limit_range(lr: core_pb2.LimitRange, old: core_pb2.LimitRange | None) -> Errors:
    out: Errors = []
    seen: set[str] = set()
    for i, item in enumerate(lr.spec.limits):
        p = index("spec.limits", i)
        type_path = child(p, "type")
        if "/" in item.type:
            out.extend(each_invalid(is_qualified_name(item.type), type_path, item.type))
        elif item.type not in LIMIT_TYPES:
            out.append(
                invalid(type_path, item.type, "must be a standard limit type or fully qualified")
            )
        if item.type in seen:
            out.append(duplicate(type_path, item.type))
        seen.add(item.type)
        out.extend(_limit_item(item, p))
    return out
