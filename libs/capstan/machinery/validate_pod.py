"""Pod, PodSpec and PodTemplateSpec validation (k8s.io/kubernetes/pkg/apis/core/validation).

Every workload kind embeds a PodSpec, so this module is the shared core of Pod, ReplicaSet,
Deployment, DaemonSet, StatefulSet, Job and CronJob validation. Messages and paths follow
Kubernetes; the few extra rules (mountPath must be absolute, probe thresholds at least 1)
exist because capstan also accepts objects that skipped defaulting.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Final, Generic, TypeVar

from capstan.api.core.v1 import core_pb2
from capstan.machinery.intstr import port_ok, validate_int_or_str_port
from capstan.machinery.quantity import (
    QUANTITY_ERR_MSG,
    QuantityError,
    compare_quantity_text,
    parse_quantity,
    plain_non_negative_quantity,
)
from capstan.machinery.validate_meta import (
    Errors,
    at_least,
    each_invalid,
    enum,
    has,
    invalid_raw,
    key,
    non_negative,
    render,
    validate_namespace_name,
)
from capstan.machinery.validation import (
    SUPPORTED_PROTOCOLS,
    child,
    config_map_key_ok,
    dns1123_label_ok,
    dns1123_subdomain_ok,
    duplicate,
    env_var_name_ok,
    forbidden,
    index,
    invalid,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_ip,
    is_label_value,
    is_port_name,
    is_port_number,
    is_qualified_name,
    labels_ok,
    not_supported,
    port_name_ok,
    regex_error,
    required,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_qualified_name,
)
from capstan.machinery.violations import FieldViolation

RESTART_POLICIES: Final = ("Always", "OnFailure", "Never")
DNS_POLICIES: Final = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES: Final = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS: Final = ("Equal", "Exists")
HTTP_SCHEMES: Final = ("HTTP", "HTTPS")
MOUNT_PROPAGATIONS: Final = ("None", "HostToContainer", "Bidirectional")
HOST_PATH_TYPES: Final = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
UNSATISFIABLE_ACTIONS: Final = ("DoNotSchedule", "ScheduleAnyway")
POD_PHASES: Final = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_STATUSES: Final = ("True", "False", "Unknown")
STANDARD_CONTAINER_RESOURCES: Final = frozenset({"cpu", "memory", "ephemeral-storage"})
_ENV_FIELD_PATHS: Final = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
_VOLUME_FIELD_PATHS: Final = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
_RESOURCE_FIELD_REFS: Final = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
_CPU_DIVISORS: Final = ("1m", "1")
_MEMORY_DIVISORS: Final = tuple(["1"] + [f"1{s}" for s in "kMGTPE"] + [f"1{s}i" for s in "KMGTPE"])
_SUBSCRIPTED_FIELD_RE: Final = re.compile(r"(metadata\.(?:labels|annotations))\['(.*)'\]\Z")
_HTTP_HEADER_FMT: Final = "[-A-Za-z0-9]+"
_HTTP_HEADER_RE: Final = re.compile(_HTTP_HEADER_FMT + r"\Z")
FILE_MODE_ERROR: Final = "must be a number between 0 and 0777 (octal), both inclusive"
MAX_INT32: Final = 2**31 - 1
POD_UPDATE_FORBIDDEN: Final = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


# ---------------------------------------------------------------------------------------------
# Small shared checks


def validate_subdomain_ref(name: str, path: str) -> Errors:
    """A reference to a ConfigMap/Secret/ServiceAccount name: required, a DNS subdomain."""
    if not name:
        return [required(path)]
    return each_invalid(is_dns1123_subdomain(name), path, name)


def _no_backsteps(value: str, path: str) -> Errors:
    if ".." in value.split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def _local_descending_path(value: str, path: str) -> Errors:
    out: Errors = []
    if value.startswith("/"):
        out.append(invalid(path, value, "must be a relative path"))
    out.extend(_no_backsteps(value, path))
    return out


def _file_mode(mode: int, path: str) -> Errors:
    return [invalid(path, mode, FILE_MODE_ERROR)] if not 0 <= mode <= 0o777 else []


def validate_quantity_value(value: str, path: str) -> Errors:
    """Parseable (Kubernetes rejects a bad quantity while decoding) and not negative."""
    if plain_non_negative_quantity(value):
        return []
    try:
        quantity = parse_quantity(value)
    except QuantityError:
        return [invalid(path, value, QUANTITY_ERR_MSG)]
    if quantity.value < 0:
        return [invalid(path, str(quantity), "must be greater than or equal to 0")]
    return []


def _is_native(name: str) -> bool:
    prefix, sep, _ = name.partition("/")
    return not sep or prefix.endswith("kubernetes.io")


def _container_resource_name(name: str, path: str) -> Errors:
    out = each_invalid(is_qualified_name(name), path, name)
    if (
        "/" not in name
        and name not in STANDARD_CONTAINER_RESOURCES
        and not name.startswith("hugepages-")
    ):
        out.append(invalid(path, name, "must be a standard resource for containers"))
    return out


def validate_resource_requirements(res: core_pb2.ResourceRequirements, path: str) -> Errors:
    out: Errors = []
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    limits = res.limits
    for name in sorted(limits):
        p = key(lim_path, name)
        out.extend(_container_resource_name(name, p))
        out.extend(validate_quantity_value(limits[name], p))
    requests = res.requests
    for name in sorted(requests):
        p = key(req_path, name)
        out.extend(_container_resource_name(name, p))
        errs = validate_quantity_value(requests[name], p)
        out.extend(errs)
        if errs or name not in limits:
            continue
        try:
            request, limit = parse_quantity(requests[name]), parse_quantity(limits[name])
        except QuantityError:
            continue
        overcommit = _is_native(name) and not name.startswith("hugepages-")
        if not overcommit and request != limit:
            out.append(invalid(req_path, str(request), f"must be equal to {name} limit of {limit}"))
        elif request > limit:
            out.append(
                invalid(
                    req_path,
                    str(request),
                    f"must be less than or equal to {name} limit of {limit}",
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# Env, envFrom, downward API selectors


def _object_field_selector(
    ref: core_pb2.ObjectFieldSelector, allowed: Sequence[str], path: str
) -> Errors:
    out: Errors = []
    if not ref.api_version:
        out.append(required(child(path, "apiVersion")))
    fp_path = child(path, "fieldPath")
    if not ref.field_path:
        out.append(required(fp_path))
        return out
    match = _SUBSCRIPTED_FIELD_RE.match(ref.field_path)
    if match is not None:
        subscript = match[2]
        if match[1] == "metadata.annotations":
            subscript = subscript.lower()
        out.extend(validate_qualified_name(subscript, fp_path))
    elif ref.field_path not in allowed:
        out.append(not_supported(fp_path, ref.field_path, allowed))
    return out


def _resource_field_selector(
    ref: core_pb2.ResourceFieldSelector, path: str, *, volume: bool
) -> Errors:
    out: Errors = []
    if volume and not ref.container_name:
        out.append(required(child(path, "containerName")))
    elif not ref.resource:
        out.append(required(child(path, "resource")))
    elif ref.resource not in _RESOURCE_FIELD_REFS:
        out.append(not_supported(child(path, "resource"), ref.resource, _RESOURCE_FIELD_REFS))
    if ref.divisor:
        div_path = child(path, "divisor")
        try:
            divisor = parse_quantity(ref.divisor)
        except QuantityError:
            return [*out, invalid(div_path, ref.divisor, QUANTITY_ERR_MSG)]
        for suffix, allowed, label in (
            ("cpu", _CPU_DIVISORS, "cpu"),
            ("memory", _MEMORY_DIVISORS, "memory"),
        ):
            if ref.resource.endswith(suffix) and divisor not in {
                parse_quantity(a) for a in allowed
            }:
                out.append(
                    invalid(
                        div_path,
                        ref.divisor,
                        f"only divisor's values {', '.join(allowed)} are supported with the "
                        f"{label} resource",
                    )
                )
    return out


def _key_selector(name: str, key_value: str, path: str) -> Errors:
    out = each_invalid(is_dns1123_subdomain(name), child(path, "name"), name)
    key_path = child(path, "key")
    if not key_value:
        out.append(required(key_path))
    else:
        out.extend(each_invalid(is_config_map_key(key_value), key_path, key_value))
    return out


def _validate_env(env: Sequence[core_pb2.EnvVar], path: str) -> Errors:
    out: Errors = []
    for i, var in enumerate(env):
        p = index(path, i)
        if not var.name:
            out.append(required(child(p, "name")))
        else:
            out.extend(each_invalid(is_env_var_name(var.name), child(p, "name"), var.name))
        if not var.HasField("value_from"):
            continue
        vf, vf_path = var.value_from, child(p, "valueFrom")
        sources = 0
        if vf.HasField("field_ref"):
            sources += 1
            out.extend(
                _object_field_selector(vf.field_ref, _ENV_FIELD_PATHS, child(vf_path, "fieldRef"))
            )
        if vf.HasField("resource_field_ref"):
            sources += 1
            out.extend(
                _resource_field_selector(
                    vf.resource_field_ref, child(vf_path, "resourceFieldRef"), volume=False
                )
            )
        if vf.HasField("config_map_key_ref"):
            sources += 1
            ref = vf.config_map_key_ref
            out.extend(_key_selector(ref.name, ref.key, child(vf_path, "configMapKeyRef")))
        if vf.HasField("secret_key_ref"):
            sources += 1
            sref = vf.secret_key_ref
            out.extend(_key_selector(sref.name, sref.key, child(vf_path, "secretKeyRef")))
        if sources == 0:
            out.append(
                invalid(
                    vf_path,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                    "`secretKeyRef`",
                )
            )
        elif var.value:
            out.append(invalid(vf_path, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            out.append(invalid(vf_path, "", "may not have more than one field specified at a time"))
    return out


def _validate_env_from(sources: Sequence[core_pb2.EnvFromSource], path: str) -> Errors:
    out: Errors = []
    for i, src in enumerate(sources):
        p = index(path, i)
        if src.prefix:
            out.extend(each_invalid(is_env_var_name(src.prefix), child(p, "prefix"), src.prefix))
        count = 0
        if src.HasField("config_map_ref"):
            count += 1
            out.extend(
                validate_subdomain_ref(src.config_map_ref.name, child(p, "configMapRef.name"))
            )
        if src.HasField("secret_ref"):
            count += 1
            out.extend(validate_subdomain_ref(src.secret_ref.name, child(p, "secretRef.name")))
        if count == 0:
            out.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            out.append(invalid(path, "", "may not have more than one field specified at a time"))
    return out


# ---------------------------------------------------------------------------------------------
# Volumes


def _key_to_paths(items: Sequence[core_pb2.KeyToPath], path: str) -> Errors:
    out: Errors = []
    for i, item in enumerate(items):
        p = index(path, i)
        if not item.key:
            out.append(required(child(p, "key")))
        item_path = child(p, "path")
        if not item.path:
            out.append(required(item_path))
        else:
            out.extend(_local_descending_path(item.path, item_path))
            if item.path.startswith(".."):
                out.append(invalid(item_path, item.path, "must not start with '..'"))
        if item.HasField("mode"):
            out.extend(_file_mode(item.mode, child(p, "mode")))
    return out


def _downward_files(items: Sequence[core_pb2.DownwardAPIVolumeFile], path: str) -> Errors:
    out: Errors = []
    for i, item in enumerate(items):
        p = index(path, i)
        item_path = child(p, "path")
        if not item.path:
            out.append(required(item_path))
        else:
            out.extend(_local_descending_path(item.path, item_path))
            if item.path.startswith(".."):
                out.append(invalid(item_path, item.path, "must not start with '..'"))
        has_field, has_resource = item.HasField("field_ref"), item.HasField("resource_field_ref")
        if has_field and has_resource:
            out.append(
                invalid(
                    p,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                )
            )
        elif has_field:
            out.extend(
                _object_field_selector(item.field_ref, _VOLUME_FIELD_PATHS, child(p, "fieldRef"))
            )
        elif has_resource:
            out.extend(
                _resource_field_selector(
                    item.resource_field_ref, child(p, "resourceFieldRef"), volume=True
                )
            )
        else:
            out.append(required(p, "one of fieldRef and resourceFieldRef is required"))
        if item.HasField("mode"):
            out.extend(_file_mode(item.mode, child(p, "mode")))
    return out


def _validate_volume_source(vol: core_pb2.Volume, path: str) -> Errors:
    source = vol.WhichOneof("source")
    if source is None:
        return [required(path, "must specify a volume type")]
    out: Errors = []
    if source == "empty_dir":
        if vol.empty_dir.size_limit:
            out.extend(
                validate_quantity_value(vol.empty_dir.size_limit, child(path, "emptyDir.sizeLimit"))
            )
    elif source == "host_path":
        hp, p = vol.host_path, child(path, "hostPath")
        if not hp.path:
            out.append(required(child(p, "path")))
        else:
            out.extend(_no_backsteps(hp.path, child(p, "path")))
        if hp.HasField("type") and hp.type not in HOST_PATH_TYPES:
            out.append(not_supported(child(p, "type"), hp.type, HOST_PATH_TYPES))
    elif source == "config_map":
        cm, p = vol.config_map, child(path, "configMap")
        out.extend(validate_subdomain_ref(cm.name, child(p, "name")))
        out.extend(_key_to_paths(cm.items, child(p, "items")))
        if cm.HasField("default_mode"):
            out.extend(_file_mode(cm.default_mode, child(p, "defaultMode")))
    elif source == "secret":
        sec, p = vol.secret, child(path, "secret")
        if not sec.secret_name:
            out.append(required(child(p, "secretName")))
        out.extend(_key_to_paths(sec.items, child(p, "items")))
        if sec.HasField("default_mode"):
            out.extend(_file_mode(sec.default_mode, child(p, "defaultMode")))
    elif source == "persistent_volume_claim":
        if not vol.persistent_volume_claim.claim_name:
            out.append(required(child(path, "persistentVolumeClaim.claimName")))
    elif source == "downward_api":
        dapi, p = vol.downward_api, child(path, "downwardAPI")
        out.extend(_downward_files(dapi.items, child(p, "items")))
        if dapi.HasField("default_mode"):
            out.extend(_file_mode(dapi.default_mode, child(p, "defaultMode")))
    elif source == "projected":
        out.extend(_validate_projected(vol.projected, child(path, "projected")))
    elif source == "nfs":
        out.extend(validate_nfs(vol.nfs, child(path, "nfs")))
    return out


def validate_nfs(nfs: core_pb2.NFSVolumeSource, path: str) -> Errors:
    out: Errors = []
    if not nfs.server:
        out.append(required(child(path, "server")))
    p = child(path, "path")
    if not nfs.path:
        out.append(required(p))
    elif not nfs.path.startswith("/"):
        out.append(invalid(p, nfs.path, "must be an absolute path"))
    return out


def _validate_projected(proj: core_pb2.ProjectedVolumeSource, path: str) -> Errors:
    out: Errors = []
    sources_path = child(path, "sources")
    for i, src in enumerate(proj.sources):
        p = index(sources_path, i)
        kind = src.WhichOneof("source")
        if kind is None:
            out.append(required(p, "must specify exactly one projection"))
        elif kind == "secret":
            out.extend(validate_subdomain_ref(src.secret.name, child(p, "secret.name")))
            out.extend(_key_to_paths(src.secret.items, child(p, "secret.items")))
        elif kind == "config_map":
            out.extend(validate_subdomain_ref(src.config_map.name, child(p, "configMap.name")))
            out.extend(_key_to_paths(src.config_map.items, child(p, "configMap.items")))
        elif kind == "downward_api":
            out.extend(_downward_files(src.downward_api.items, child(p, "downwardAPI.items")))
        elif kind == "service_account_token":
            tok, tp = src.service_account_token, child(p, "serviceAccountToken")
            if tok.HasField("expiration_seconds") and tok.expiration_seconds < 600:
                out.append(
                    invalid(
                        child(tp, "expirationSeconds"),
                        tok.expiration_seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            if not tok.path:
                out.append(required(child(tp, "path")))
            else:
                out.extend(_local_descending_path(tok.path, child(tp, "path")))
    if proj.HasField("default_mode"):
        out.extend(_file_mode(proj.default_mode, child(path, "defaultMode")))
    return out


def validate_volumes(volumes: Sequence[core_pb2.Volume], path: str) -> tuple[Errors, set[str]]:
    out: Errors = []
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        p = index(path, i)
        name_path = child(p, "name")
        out.extend(_validate_volume_source(vol, p))
        if not vol.name:
            out.append(required(name_path))
        else:
            out.extend(each_invalid(is_dns1123_label(vol.name), name_path, vol.name))
        if vol.name in names:
            out.append(duplicate(name_path, vol.name))
        names.add(vol.name)
    return out, names


def _validate_volume_mounts(
    mounts: Sequence[core_pb2.VolumeMount], volumes: Collection[str], path: str
) -> Errors:
    out: Errors = []
    seen: set[str] = set()
    for i, mount in enumerate(mounts):
        p = index(path, i)
        if not mount.name:
            out.append(required(child(p, "name")))
        elif mount.name not in volumes:
            out.append(FieldViolation(child(p, "name"), f'Not found: "{mount.name}"'))
        mp_path = child(p, "mountPath")
        if not mount.mount_path:
            out.append(required(mp_path))
        elif not mount.mount_path.startswith("/"):
            out.append(invalid(mp_path, mount.mount_path, "must be an absolute path"))
        if mount.mount_path in seen:
            out.append(invalid(mp_path, mount.mount_path, "must be unique"))
        seen.add(mount.mount_path)
        if mount.sub_path:
            out.extend(_local_descending_path(mount.sub_path, child(p, "subPath")))
        if mount.sub_path and mount.sub_path_expr:
            out.append(
                invalid(
                    child(p, "subPathExpr"),
                    mount.sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                )
            )
        if mount.HasField("mount_propagation"):
            out.extend(
                enum(mount.mount_propagation, MOUNT_PROPAGATIONS, child(p, "mountPropagation"))
            )
    return out


# ---------------------------------------------------------------------------------------------
# Probes and lifecycle handlers


def _validate_http_get(action: core_pb2.HTTPGetAction, path: str) -> Errors:
    out: Errors = []
    if not action.path:
        out.append(required(child(path, "path")))
    out.extend(validate_int_or_str_port(action.port, child(path, "port")))
    if action.scheme not in HTTP_SCHEMES:
        out.append(not_supported(child(path, "scheme"), action.scheme, HTTP_SCHEMES))
    for i, header in enumerate(action.http_headers):
        if not _HTTP_HEADER_RE.match(header.name):
            out.append(
                invalid(
                    child(index(child(path, "httpHeaders"), i), "name"),
                    header.name,
                    regex_error(
                        "a valid HTTP header must consist of alphanumeric characters or '-'",
                        _HTTP_HEADER_FMT,
                        "X-Header-Name",
                    ),
                )
            )
    return out


def _validate_handler(handler: core_pb2.Probe | core_pb2.LifecycleHandler, path: str) -> Errors:
    kind = handler.WhichOneof("handler")
    if kind is None:
        return [required(path, "must specify a handler type")]
    if kind == "exec":
        if not handler.exec.command:
            return [required(child(path, "exec.command"))]
        return []
    if kind == "http_get":
        return _validate_http_get(handler.http_get, child(path, "httpGet"))
    if kind == "tcp_socket":
        return validate_int_or_str_port(handler.tcp_socket.port, child(path, "tcpSocket.port"))
    if kind == "grpc" and isinstance(handler, core_pb2.Probe):
        port = handler.grpc.port
        return each_invalid(is_port_number(port), child(path, "grpc.port"), port)
    if kind == "sleep" and isinstance(handler, core_pb2.LifecycleHandler):
        return non_negative(handler.sleep.seconds, child(path, "sleep.seconds"))
    return []


def _validate_probe(probe: core_pb2.Probe, path: str, *, success_must_be_one: bool) -> Errors:
    out = _validate_handler(probe, path)
    if probe.HasField("initial_delay_seconds"):
        out.extend(non_negative(probe.initial_delay_seconds, child(path, "initialDelaySeconds")))
    for field, camel in (
        ("timeout_seconds", "timeoutSeconds"),
        ("period_seconds", "periodSeconds"),
        ("success_threshold", "successThreshold"),
        ("failure_threshold", "failureThreshold"),
    ):
        value = getattr(probe, field)
        if has(probe, field) or value:
            out.extend(at_least(value, 1, child(path, camel)))
    if success_must_be_one and probe.HasField("success_threshold") and probe.success_threshold != 1:
        out.append(invalid(child(path, "successThreshold"), probe.success_threshold, "must be 1"))
    if (
        probe.HasField("termination_grace_period_seconds")
        and probe.termination_grace_period_seconds <= 0
    ):
        out.append(
            invalid(
                child(path, "terminationGracePeriodSeconds"),
                probe.termination_grace_period_seconds,
                "must be greater than 0",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Containers


def _validate_ports(ports: Sequence[core_pb2.ContainerPort], path: str) -> Errors:
    out: Errors = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = index(path, i)
        if port.name:
            msgs = is_port_name(port.name)
            if msgs:
                out.extend(each_invalid(msgs, child(p, "name"), port.name))
            elif port.name in names:
                out.append(duplicate(child(p, "name"), port.name))
            else:
                names.add(port.name)
        if port.container_port == 0:
            out.append(required(child(p, "containerPort")))
        else:
            out.extend(
                each_invalid(
                    is_port_number(port.container_port),
                    child(p, "containerPort"),
                    port.container_port,
                )
            )
        if port.host_port != 0:
            out.extend(
                each_invalid(is_port_number(port.host_port), child(p, "hostPort"), port.host_port)
            )
        out.extend(enum(port.protocol, SUPPORTED_PROTOCOLS, child(p, "protocol")))
        if port.host_ip:
            out.extend(each_invalid(is_ip(port.host_ip), child(p, "hostIP"), port.host_ip))
    return out


def _validate_container(
    ctr: core_pb2.Container, volumes: Collection[str], path: str, *, init: bool
) -> Errors:
    out: Errors = []
    image_path = child(path, "image")
    if not ctr.image:
        out.append(required(image_path))
    elif ctr.image != ctr.image.strip():
        out.append(invalid(image_path, ctr.image, "must not have leading or trailing whitespace"))
    out.extend(_validate_ports(ctr.ports, child(path, "ports")))
    out.extend(_validate_env(ctr.env, child(path, "env")))
    out.extend(_validate_env_from(ctr.env_from, child(path, "envFrom")))
    out.extend(_validate_volume_mounts(ctr.volume_mounts, volumes, child(path, "volumeMounts")))
    out.extend(validate_resource_requirements(ctr.resources, child(path, "resources")))
    out.extend(enum(ctr.image_pull_policy, PULL_POLICIES, child(path, "imagePullPolicy")))
    if ctr.termination_message_policy not in TERMINATION_MESSAGE_POLICIES:
        tmp = child(path, "terminationMessagePolicy")
        detail = "must be 'File' or 'FallbackToLogsOnError'"
        out.append(
            required(tmp, detail)
            if not ctr.termination_message_policy
            else invalid(tmp, ctr.termination_message_policy, detail)
        )
    sidecar = init and ctr.HasField("restart_policy") and ctr.restart_policy == "Always"
    if ctr.HasField("restart_policy"):
        rp_path = child(path, "restartPolicy")
        if not init:
            out.append(forbidden(rp_path, "may not be set for non-init containers"))
        elif ctr.restart_policy != "Always":
            out.append(not_supported(rp_path, ctr.restart_policy, ("Always",)))
    for field, camel in (
        ("liveness_probe", "livenessProbe"),
        ("readiness_probe", "readinessProbe"),
        ("startup_probe", "startupProbe"),
    ):
        if not has(ctr, field):
            continue
        probe_path = child(path, camel)
        if init and not sidecar:
            out.append(
                forbidden(
                    probe_path, "may not be set for init containers without restartPolicy=Always"
                )
            )
            continue
        out.extend(
            _validate_probe(
                getattr(ctr, field), probe_path, success_must_be_one=field != "readiness_probe"
            )
        )
    if ctr.HasField("lifecycle"):
        lc = ctr.lifecycle
        if lc.HasField("post_start"):
            out.extend(_validate_handler(lc.post_start, child(path, "lifecycle.postStart")))
        if lc.HasField("pre_stop"):
            out.extend(_validate_handler(lc.pre_stop, child(path, "lifecycle.preStop")))
    if ctr.HasField("security_context"):
        sc, scp = ctr.security_context, child(path, "securityContext")
        out.extend(_id_range(sc, ("run_as_user", "run_as_group"), scp))
        if (
            sc.HasField("privileged")
            and sc.privileged
            and sc.HasField("allow_privilege_escalation")
            and not sc.allow_privilege_escalation
        ):
            out.append(
                invalid(
                    scp,
                    "",
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
    return out


def _id_range(
    sc: core_pb2.SecurityContext | core_pb2.PodSecurityContext,
    fields: Sequence[str],
    path: str,
) -> Errors:
    out: Errors = []
    for field in fields:
        if has(sc, field):
            value = getattr(sc, field)
            if not 0 <= value <= MAX_INT32:
                camel = "runAsUser" if field == "run_as_user" else "runAsGroup"
                if field == "fs_group":
                    camel = "fsGroup"
                out.append(
                    invalid(
                        child(path, camel), value, f"must be between 0 and {MAX_INT32}, inclusive"
                    )
                )
    return out


def _validate_containers(spec: core_pb2.PodSpec, volumes: Collection[str], path: str) -> Errors:
    out: Errors = []
    names: set[str] = set()
    host_ports: set[str] = set()
    for field, camel, init in (
        ("init_containers", "initContainers", True),
        ("containers", "containers", False),
    ):
        containers: Sequence[core_pb2.Container] = getattr(spec, field)
        if not containers:
            if not init:
                out.append(required(child(path, camel)))
            continue
        list_path = child(path, camel)
        for i, ctr in enumerate(containers):
            name = ctr.name
            if name and dns1123_label_ok(name) and name not in names:
                names.add(name)
            else:
                name_path = child(index(list_path, i), "name")
                if not name:
                    out.append(required(name_path))
                else:
                    out.extend(each_invalid(is_dns1123_label(name), name_path, name))
                    if name in names:
                        out.append(duplicate(name_path, name))
                    names.add(name)
            if not init and _container_ok_memoised(ctr, volumes):
                continue  # nothing to report, and no host ports (see _ports_ok)
            p = index(list_path, i)
            out.extend(_validate_container(ctr, volumes, p, init=init))
            for j, port in enumerate(ctr.ports):
                if port.host_port == 0:
                    continue
                if spec.host_network and port.container_port != port.host_port:
                    out.append(
                        invalid(
                            child(index(child(p, "ports"), j), "containerPort"),
                            port.container_port,
                            "must match `hostPort` when `hostNetwork` is true",
                        )
                    )
                if init:
                    continue
                token = f"{port.protocol}/{port.host_ip}/{port.host_port}"
                if token in host_ports:
                    out.append(duplicate(child(index(child(p, "ports"), j), "hostPort"), token))
                host_ports.add(token)
    return out


# ---------------------------------------------------------------------------------------------
# Fast paths for valid pods
#
# Validation runs on every write, and nearly every object written is valid. Reading one
# protobuf field from Python costs 0.1-0.3 us, so the validators above (which build a path and
# a list for every check) cost far more than the checks themselves. Each `_x_ok` predicate
# below reads a structure once and answers True only when its validator would report nothing;
# anything unusual answers False and the validator decides. Violations therefore always come
# from the validators; tests/unit/machinery/test_validation_fast_paths.py holds every
# predicate against its validator on fuzzed objects.
#
# Serialising a message is C and costs a tenth of reading it field by field, and the apiserver
# sees the same pod specs and containers over and over (every pod of a workload carries its
# template), so verdicts on valid ones are also remembered by their serialised form. Validity
# is a pure function of a message's content and equal bytes mean equal content, so a hit can
# never be wrong; invalid messages are never remembered (their violations name paths).

_V = TypeVar("_V")


class _VerdictMemo(Generic[_V]):
    """Verdicts on valid messages by their deterministic serialisation, bounded in entries and
    in the size of what is kept, whatever clients send."""

    __slots__ = ("_entries", "_max_key_bytes", "_verdicts")

    def __init__(self, entries: int, max_key_bytes: int) -> None:
        self._entries = entries
        self._max_key_bytes = max_key_bytes
        self._verdicts: dict[bytes, _V] = {}

    def get(self, key: bytes) -> _V | None:
        return self._verdicts.get(key)

    def remember(self, key: bytes, verdict: _V) -> None:
        if len(key) > self._max_key_bytes:
            return
        if len(self._verdicts) >= self._entries:
            self._verdicts.clear()  # crude but thread-safe; the working set comes right back
        self._verdicts[key] = verdict

    def clear(self) -> None:
        self._verdicts.clear()


_valid_specs: _VerdictMemo[bool] = _VerdictMemo(512, 16 * 1024)
# A container's verdict holds for any pod that has the volumes it mounts: those are kept.
_valid_containers: _VerdictMemo[frozenset[str]] = _VerdictMemo(1024, 8 * 1024)


def _key_to_paths_free(
    source: core_pb2.ConfigMapVolumeSource | core_pb2.SecretVolumeSource,
) -> bool:
    return not source.items and (
        not source.HasField("default_mode") or 0 <= source.default_mode <= 0o777
    )


def _volume_source_ok(vol: core_pb2.Volume) -> bool:
    source = vol.WhichOneof("source")
    if source == "empty_dir":
        limit = vol.empty_dir.size_limit
        return not limit or plain_non_negative_quantity(limit)
    if source == "config_map":
        cm = vol.config_map
        return dns1123_subdomain_ok(cm.name) and _key_to_paths_free(cm)
    if source == "secret":
        secret = vol.secret
        return bool(secret.secret_name) and _key_to_paths_free(secret)
    if source == "persistent_volume_claim":
        return bool(vol.persistent_volume_claim.claim_name)
    return False


def _volume_names_if_ok(volumes: Sequence[core_pb2.Volume]) -> set[str] | None:
    """validate_volumes' name set when it would report nothing, else None."""
    names: set[str] = set()
    for vol in volumes:
        name = vol.name
        if not dns1123_label_ok(name) or name in names or not _volume_source_ok(vol):
            return None
        names.add(name)
    return names


def _ports_ok(ports: Sequence[core_pb2.ContainerPort]) -> bool:
    """Also False for any hostPort, so that a container passing needs no host-port checks."""
    names: set[str] = set()
    for port in ports:
        name = port.name
        if name:
            if not port_name_ok(name) or name in names:
                return False
            names.add(name)
        if (
            not 1 <= port.container_port <= 65535
            or port.host_port
            or port.protocol not in SUPPORTED_PROTOCOLS
            or port.host_ip
        ):
            return False
    return True


def _env_ok(env: Sequence[core_pb2.EnvVar]) -> bool:
    for var in env:
        if not env_var_name_ok(var.name):
            return False
        if not var.HasField("value_from"):
            continue
        source = var.value_from
        if var.value or source.HasField("resource_field_ref"):
            return False
        has_field, has_config_map, has_secret = (
            source.HasField("field_ref"),
            source.HasField("config_map_key_ref"),
            source.HasField("secret_key_ref"),
        )
        if has_field + has_config_map + has_secret != 1:
            return False
        if has_field:
            ref = source.field_ref
            if not ref.api_version or ref.field_path not in _ENV_FIELD_PATHS:
                return False
        else:
            key_ref = source.config_map_key_ref if has_config_map else source.secret_key_ref
            if not (dns1123_subdomain_ok(key_ref.name) and config_map_key_ok(key_ref.key)):
                return False
    return True


def _env_from_ok(sources: Sequence[core_pb2.EnvFromSource]) -> bool:
    for src in sources:
        if src.prefix and not env_var_name_ok(src.prefix):
            return False
        has_config_map, has_secret = src.HasField("config_map_ref"), src.HasField("secret_ref")
        if has_config_map == has_secret:
            return False
        ref = src.config_map_ref if has_config_map else src.secret_ref
        if not dns1123_subdomain_ok(ref.name):
            return False
    return True


def _mount_names_if_ok(mounts: Sequence[core_pb2.VolumeMount]) -> frozenset[str] | None:
    """The volumes the mounts need when nothing else about them is wrong, else None."""
    names: set[str] = set()
    seen: set[str] = set()
    for mount in mounts:
        name, mount_path, sub_path = mount.name, mount.mount_path, mount.sub_path
        if not name or not mount_path.startswith("/") or mount_path in seen:
            return None
        names.add(name)
        seen.add(mount_path)
        if sub_path and (
            mount.sub_path_expr or sub_path.startswith("/") or ".." in sub_path.split("/")
        ):
            return None
        if mount.HasField("mount_propagation") and mount.mount_propagation not in (
            MOUNT_PROPAGATIONS
        ):
            return None
    return frozenset(names)


def _mounts_ok(mounts: Sequence[core_pb2.VolumeMount], volumes: Collection[str]) -> bool:
    names = _mount_names_if_ok(mounts)
    return names is not None and names.issubset(volumes)


def _resources_ok(res: core_pb2.ResourceRequirements) -> bool:
    """Standard resources with plain quantities, each request at most its limit."""
    limits, requests = res.limits, res.requests
    for name in limits:
        if name not in STANDARD_CONTAINER_RESOURCES or not plain_non_negative_quantity(
            limits[name]
        ):
            return False
    for name in requests:
        value = requests[name]
        if name not in STANDARD_CONTAINER_RESOURCES or not plain_non_negative_quantity(value):
            return False
        # Standard resources may be overcommitted: a request only has to stay within its limit.
        if name in limits and compare_quantity_text(value, limits[name]) > 0:
            return False
    return True


def _http_get_ok(action: core_pb2.HTTPGetAction) -> bool:
    if not action.path or action.scheme not in HTTP_SCHEMES or not port_ok(action.port):
        return False
    headers = action.http_headers
    if headers:
        for header in headers:
            if not _HTTP_HEADER_RE.match(header.name):
                return False
    return True


def _handler_ok(handler: core_pb2.Probe | core_pb2.LifecycleHandler) -> bool:
    kind = handler.WhichOneof("handler")
    if kind == "http_get":
        return _http_get_ok(handler.http_get)
    if kind == "tcp_socket":
        return port_ok(handler.tcp_socket.port)
    if kind == "exec":
        return bool(handler.exec.command)
    return False


def _probe_ok(probe: core_pb2.Probe, success_must_be_one: bool) -> bool:
    kind = probe.WhichOneof("handler")
    if kind == "tcp_socket":
        if not port_ok(probe.tcp_socket.port):
            return False
    elif not (_http_get_ok(probe.http_get) if kind == "http_get" else _handler_ok(probe)):
        return False
    if probe.initial_delay_seconds < 0:
        return False
    success = probe.success_threshold
    # Values under 1 are fine only while unset; let the validator tell.
    if min(probe.timeout_seconds, probe.period_seconds, success, probe.failure_threshold) < 1:
        return False
    if success_must_be_one and success != 1:
        return False
    return probe.termination_grace_period_seconds > 0 or not probe.HasField(
        "termination_grace_period_seconds"
    )


def _container_ok(ctr: core_pb2.Container, volumes: Collection[str]) -> bool:
    """An app container (not an init container) that _validate_container passes."""
    needed = _container_mounts_if_ok(ctr)
    return needed is not None and needed.issubset(volumes)


_NO_MOUNTS: Final[frozenset[str]] = frozenset()


def _container_mounts_if_ok(ctr: core_pb2.Container) -> frozenset[str] | None:
    """The volumes an app container mounts, if _validate_container passes it whenever the pod
    has them; None if it might not."""
    image = ctr.image
    if (
        not image
        or image != image.strip()
        or ctr.image_pull_policy not in PULL_POLICIES
        or ctr.termination_message_policy not in TERMINATION_MESSAGE_POLICIES
        or ctr.HasField("restart_policy")
    ):
        return None
    ports, env, env_from, mounts = ctr.ports, ctr.env, ctr.env_from, ctr.volume_mounts
    if (
        (ports and not _ports_ok(ports))
        or (env and not _env_ok(env))
        or (env_from and not _env_from_ok(env_from))
        or not _resources_ok(ctr.resources)
    ):
        return None
    needed = _mount_names_if_ok(mounts) if mounts else _NO_MOUNTS
    if needed is None:
        return None
    if (
        (ctr.HasField("liveness_probe") and not _probe_ok(ctr.liveness_probe, True))
        or (ctr.HasField("readiness_probe") and not _probe_ok(ctr.readiness_probe, False))
        or (ctr.HasField("startup_probe") and not _probe_ok(ctr.startup_probe, True))
    ):
        return None
    if ctr.HasField("lifecycle"):
        lifecycle = ctr.lifecycle
        if (lifecycle.HasField("post_start") and not _handler_ok(lifecycle.post_start)) or (
            lifecycle.HasField("pre_stop") and not _handler_ok(lifecycle.pre_stop)
        ):
            return None
    if ctr.HasField("security_context"):
        sc = ctr.security_context
        if not (0 <= sc.run_as_user <= MAX_INT32 and 0 <= sc.run_as_group <= MAX_INT32):
            return None
        if (
            sc.privileged
            and sc.HasField("allow_privilege_escalation")
            and not sc.allow_privilege_escalation
        ):
            return None
    return needed


def _container_ok_memoised(ctr: core_pb2.Container, volumes: Collection[str]) -> bool:
    """_container_ok, answered from the container's serialised form when it was seen before:
    a workload's pods share their containers even where their specs differ (a StatefulSet's
    pods each have their own hostname, for one)."""
    key = ctr.SerializeToString(deterministic=True)
    needed = _valid_containers.get(key)
    if needed is None:
        needed = _container_mounts_if_ok(ctr)
        if needed is None:
            return False
        _valid_containers.remember(key, needed)
    return needed.issubset(volumes)


# ---------------------------------------------------------------------------------------------
# Scheduling: tolerations, affinity, topology spread


def validate_taint_effect(effect: str, path: str, *, allow_empty: bool) -> Errors:
    if not effect and allow_empty:
        return []
    return enum(effect, TAINT_EFFECTS, path)


def validate_tolerations(tolerations: Sequence[core_pb2.Toleration], path: str) -> Errors:
    out: Errors = []
    for i, tol in enumerate(tolerations):
        p = index(path, i)
        if tol.key:
            out.extend(validate_qualified_name(tol.key, child(p, "key")))
        op_path = child(p, "operator")
        if not tol.key and tol.operator != "Exists":
            out.append(
                invalid(
                    op_path,
                    tol.operator,
                    'operator must be Exists when `key` is empty, which means "match all values '
                    'and all keys"',
                )
            )
        if tol.HasField("toleration_seconds") and tol.effect != "NoExecute":
            out.append(
                invalid(
                    child(p, "effect"),
                    tol.effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if tol.operator in ("Equal", ""):
            msgs = is_label_value(tol.value)
            if msgs:
                out.append(invalid(op_path, tol.value, ";".join(msgs)))
        elif tol.operator == "Exists":
            if tol.value:
                out.append(
                    invalid(op_path, tol.value, "value must be empty when `operator` is 'Exists'")
                )
        else:
            out.append(not_supported(op_path, tol.operator, TOLERATION_OPERATORS))
        out.extend(validate_taint_effect(tol.effect, child(p, "effect"), allow_empty=True))
    return out


def _node_selector_requirement(req: core_pb2.NodeSelectorRequirement, path: str) -> Errors:
    out: Errors = []
    values_path = child(path, "values")
    if req.operator in ("In", "NotIn"):
        if not req.values:
            out.append(
                required(values_path, "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif req.operator in ("Exists", "DoesNotExist"):
        if req.values:
            out.append(
                forbidden(
                    values_path,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif req.operator in ("Gt", "Lt"):
        if len(req.values) != 1:
            out.append(
                required(
                    values_path, "must be specified single value when `operator` is 'Lt' or 'Gt'"
                )
            )
    else:
        out.append(invalid(child(path, "operator"), req.operator, "not a valid selector operator"))
    out.extend(validate_qualified_name(req.key, child(path, "key")))
    return out


def _node_field_requirement(req: core_pb2.NodeSelectorRequirement, path: str) -> Errors:
    out: Errors = []
    if req.operator in ("In", "NotIn"):
        if len(req.values) != 1:
            out.append(
                required(
                    child(path, "values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field "
                    "selector",
                )
            )
    else:
        out.append(invalid(child(path, "operator"), req.operator, "not a valid selector operator"))
    if req.key != "metadata.name":
        out.append(invalid(child(path, "key"), req.key, "not a valid field selector key"))
    else:
        for i, value in enumerate(req.values):
            out.extend(
                each_invalid(is_dns1123_subdomain(value), index(child(path, "values"), i), value)
            )
    return out


def validate_node_selector_term(term: core_pb2.NodeSelectorTerm, path: str) -> Errors:
    out: Errors = []
    for j, req in enumerate(term.match_expressions):
        out.extend(_node_selector_requirement(req, index(child(path, "matchExpressions"), j)))
    for j, req in enumerate(term.match_fields):
        out.extend(_node_field_requirement(req, index(child(path, "matchFields"), j)))
    return out


def validate_node_selector(selector: core_pb2.NodeSelector, path: str) -> Errors:
    terms_path = child(path, "nodeSelectorTerms")
    if not selector.node_selector_terms:
        return [required(terms_path, "must have at least one node selector term")]
    out: Errors = []
    for i, term in enumerate(selector.node_selector_terms):
        out.extend(validate_node_selector_term(term, index(terms_path, i)))
    return out


def _weight(weight: int, path: str) -> Errors:
    return [invalid(path, weight, "must be in the range 1-100")] if not 1 <= weight <= 100 else []


def _pod_affinity_term(term: core_pb2.PodAffinityTerm, path: str) -> Errors:
    out: Errors = []
    if term.HasField("label_selector"):
        out.extend(validate_label_selector(term.label_selector, child(path, "labelSelector")))
    if term.HasField("namespace_selector"):
        out.extend(
            validate_label_selector(term.namespace_selector, child(path, "namespaceSelector"))
        )
    for ns in term.namespaces:
        out.extend(validate_namespace_name(ns, child(path, "namespace")))
    topo_path = child(path, "topologyKey")
    if not term.topology_key:
        out.append(required(topo_path, "can not be empty"))
    out.extend(validate_qualified_name(term.topology_key, topo_path))
    return out


def _pod_affinity(aff: core_pb2.PodAffinity | core_pb2.PodAntiAffinity, path: str) -> Errors:
    out: Errors = []
    req_path = child(path, "requiredDuringSchedulingIgnoredDuringExecution")
    for i, term in enumerate(aff.required_during_scheduling_ignored_during_execution):
        out.extend(_pod_affinity_term(term, index(req_path, i)))
    pref_path = child(path, "preferredDuringSchedulingIgnoredDuringExecution")
    for i, weighted in enumerate(aff.preferred_during_scheduling_ignored_during_execution):
        p = index(pref_path, i)
        out.extend(_weight(weighted.weight, child(p, "weight")))
        out.extend(_pod_affinity_term(weighted.pod_affinity_term, child(p, "podAffinityTerm")))
    return out


def validate_affinity(aff: core_pb2.Affinity, path: str) -> Errors:
    out: Errors = []
    if aff.HasField("node_affinity"):
        na, nap = aff.node_affinity, child(path, "nodeAffinity")
        if na.HasField("required_during_scheduling_ignored_during_execution"):
            out.extend(
                validate_node_selector(
                    na.required_during_scheduling_ignored_during_execution,
                    child(nap, "requiredDuringSchedulingIgnoredDuringExecution"),
                )
            )
        pref_path = child(nap, "preferredDuringSchedulingIgnoredDuringExecution")
        for i, term in enumerate(na.preferred_during_scheduling_ignored_during_execution):
            p = index(pref_path, i)
            out.extend(_weight(term.weight, child(p, "weight")))
            out.extend(validate_node_selector_term(term.preference, child(p, "preference")))
    if aff.HasField("pod_affinity"):
        out.extend(_pod_affinity(aff.pod_affinity, child(path, "podAffinity")))
    if aff.HasField("pod_anti_affinity"):
        out.extend(_pod_affinity(aff.pod_anti_affinity, child(path, "podAntiAffinity")))
    return out


def _topology_spread(constraints: Sequence[core_pb2.TopologySpreadConstraint], path: str) -> Errors:
    out: Errors = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints):
        p = index(path, i)
        if c.max_skew <= 0:
            out.append(invalid(child(p, "maxSkew"), c.max_skew, "must be greater than zero"))
        topo_path = child(p, "topologyKey")
        if not c.topology_key:
            out.append(required(topo_path, "can not be empty"))
        else:
            out.extend(validate_qualified_name(c.topology_key, topo_path))
        out.extend(enum(c.when_unsatisfiable, UNSATISFIABLE_ACTIONS, child(p, "whenUnsatisfiable")))
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            out.append(duplicate(p, f"{{{c.topology_key}, {c.when_unsatisfiable}}}"))
        seen.add(pair)
        if c.HasField("min_domains") and c.min_domains <= 0:
            out.append(invalid(child(p, "minDomains"), c.min_domains, "must be greater than zero"))
        if c.HasField("label_selector"):
            out.extend(validate_label_selector(c.label_selector, child(p, "labelSelector")))
    return out


# ---------------------------------------------------------------------------------------------
# PodSpec


def _validate_dns(spec: core_pb2.PodSpec, path: str) -> Errors:
    out = enum(spec.dns_policy, DNS_POLICIES, child(path, "dnsPolicy"))
    cfg_path = child(path, "dnsConfig")
    if spec.dns_policy == "None" and not spec.HasField("dns_config"):
        out.append(required(cfg_path, "must provide `dnsConfig` when `dnsPolicy` is None"))
    if spec.HasField("dns_config"):
        cfg = spec.dns_config
        ns_path = child(cfg_path, "nameservers")
        if spec.dns_policy == "None" and not cfg.nameservers:
            out.append(
                required(
                    ns_path, "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            )
        if len(cfg.nameservers) > 3:
            out.append(
                invalid(ns_path, list(cfg.nameservers), "must not have more than 3 nameservers")
            )
        for i, ns in enumerate(cfg.nameservers):
            out.extend(each_invalid(is_ip(ns), index(ns_path, i), ns))
        search_path = child(cfg_path, "searches")
        if len(cfg.searches) > 32:
            out.append(
                invalid(search_path, list(cfg.searches), "must not have more than 32 search paths")
            )
        for i, search in enumerate(cfg.searches):
            out.extend(
                each_invalid(
                    is_dns1123_subdomain(search.removesuffix(".")), index(search_path, i), search
                )
            )
        for i, option in enumerate(cfg.options):
            if not option.name:
                out.append(
                    required(
                        child(index(child(cfg_path, "options"), i), "name"),
                        "Option.Name must not be empty",
                    )
                )
    return out


def validate_pod_spec(spec: core_pb2.PodSpec, path: str) -> Errors:
    key = spec.SerializeToString(deterministic=True)
    if _valid_specs.get(key):
        return []
    out = _validate_pod_spec(spec, path)
    if not out:
        _valid_specs.remember(key, True)
    return out


def _validate_pod_spec(spec: core_pb2.PodSpec, path: str) -> Errors:
    # Every check looks at the value first: paths are built only for what gets reported.
    volumes = _volume_names_if_ok(spec.volumes)
    if volumes is None:
        out, volumes = validate_volumes(spec.volumes, child(path, "volumes"))
    else:
        out = []
    out.extend(_validate_containers(spec, volumes, path))
    if spec.restart_policy not in RESTART_POLICIES:
        out.extend(enum(spec.restart_policy, RESTART_POLICIES, child(path, "restartPolicy")))
    dns_policy = spec.dns_policy
    if dns_policy not in DNS_POLICIES or dns_policy == "None" or spec.HasField("dns_config"):
        out.extend(_validate_dns(spec, path))
    if spec.node_selector and not labels_ok(spec.node_selector):
        out.extend(validate_labels(spec.node_selector, child(path, "nodeSelector")))
    if (
        spec.HasField("termination_grace_period_seconds")
        and spec.termination_grace_period_seconds < 0
    ):
        out.extend(
            non_negative(
                spec.termination_grace_period_seconds, child(path, "terminationGracePeriodSeconds")
            )
        )
    if spec.HasField("active_deadline_seconds"):
        ads = spec.active_deadline_seconds
        if not 1 <= ads <= MAX_INT32:
            out.append(
                invalid(
                    child(path, "activeDeadlineSeconds"),
                    ads,
                    f"must be between 1 and {MAX_INT32}, inclusive",
                )
            )
    for camel, value in (
        ("serviceAccountName", spec.service_account_name),
        ("nodeName", spec.node_name),
    ):
        if value and not dns1123_subdomain_ok(value):
            out.extend(each_invalid(is_dns1123_subdomain(value), child(path, camel), value))
    for camel, value in (("hostname", spec.hostname), ("subdomain", spec.subdomain)):
        if value and not dns1123_label_ok(value):
            out.extend(each_invalid(is_dns1123_label(value), child(path, camel), value))
    if spec.tolerations:
        out.extend(validate_tolerations(spec.tolerations, child(path, "tolerations")))
    if spec.HasField("affinity"):
        out.extend(validate_affinity(spec.affinity, child(path, "affinity")))
    if spec.topology_spread_constraints:
        out.extend(
            _topology_spread(
                spec.topology_spread_constraints, child(path, "topologySpreadConstraints")
            )
        )
    for i, alias in enumerate(spec.host_aliases):
        p = index(child(path, "hostAliases"), i)
        out.extend(each_invalid(is_ip(alias.ip), child(p, "ip"), alias.ip))
        for j, hostname in enumerate(alias.hostnames):
            out.extend(
                each_invalid(
                    is_dns1123_subdomain(hostname), index(child(p, "hostnames"), j), hostname
                )
            )
    if spec.HasField("security_context"):
        sc = spec.security_context
        # An unset id reads 0, which is in range: only an out-of-range value needs a look.
        if not (
            0 <= sc.run_as_user <= MAX_INT32
            and 0 <= sc.run_as_group <= MAX_INT32
            and 0 <= sc.fs_group <= MAX_INT32
        ):
            out.extend(
                _id_range(
                    sc, ("run_as_user", "run_as_group", "fs_group"), child(path, "securityContext")
                )
            )
    for i, secret in enumerate(spec.image_pull_secrets):
        if not secret.name:
            out.append(required(child(index(child(path, "imagePullSecrets"), i), "name")))
    if spec.HasField("preemption_policy"):
        out.extend(
            enum(
                spec.preemption_policy,
                ("Never", "PreemptLowerPriority"),
                child(path, "preemptionPolicy"),
            )
        )
    return out


def validate_pod_template_spec(template: core_pb2.PodTemplateSpec, path: str) -> Errors:
    meta = template.metadata
    out: Errors = []
    if meta.labels and not labels_ok(meta.labels):
        out.extend(validate_labels(meta.labels, child(path, "metadata.labels")))
    if meta.annotations:
        out.extend(validate_annotations(meta.annotations, child(path, "metadata.annotations")))
    out.extend(validate_pod_spec(template.spec, child(path, "spec")))
    return out


# ---------------------------------------------------------------------------------------------
# Pod create / update / status


def validate_pod(pod: core_pb2.Pod, old: core_pb2.Pod | None) -> Errors:
    out = validate_pod_spec(pod.spec, "spec")
    if old is not None:
        out.extend(_validate_pod_update(pod, old))
    return out


def _copy_optional(dst: core_pb2.PodSpec, src: core_pb2.PodSpec, field: str) -> None:
    if has(src, field):
        setattr(dst, field, getattr(src, field))
    else:
        dst.ClearField(field)  # type: ignore[arg-type]


def _tolerations_only_added(
    new: Sequence[core_pb2.Toleration], old: Sequence[core_pb2.Toleration]
) -> bool:
    for old_tol in old:
        found = False
        for new_tol in new:
            probe = core_pb2.Toleration()
            probe.CopyFrom(old_tol)
            _copy_toleration_seconds(probe, new_tol)
            if probe == new_tol:
                found = True
                break
        if not found:
            return False
    return True


def _copy_toleration_seconds(dst: core_pb2.Toleration, src: core_pb2.Toleration) -> None:
    if src.HasField("toleration_seconds"):
        dst.toleration_seconds = src.toleration_seconds
    else:
        dst.ClearField("toleration_seconds")


def _validate_pod_update(pod: core_pb2.Pod, old: core_pb2.Pod) -> Errors:
    out: Errors = []
    spec, old_spec = pod.spec, old.spec
    for field, camel in (("containers", "containers"), ("init_containers", "initContainers")):
        new_ctrs, old_ctrs = getattr(spec, field), getattr(old_spec, field)
        if len(new_ctrs) != len(old_ctrs):
            return [forbidden(child("spec", camel), "pod updates may not add or remove containers")]
    ads_path = "spec.activeDeadlineSeconds"
    if spec.HasField("active_deadline_seconds"):
        ads = spec.active_deadline_seconds
        if not 0 <= ads <= MAX_INT32:
            return [*out, invalid(ads_path, ads, f"must be between 0 and {MAX_INT32}, inclusive")]
        if old_spec.HasField("active_deadline_seconds") and old_spec.active_deadline_seconds < ads:
            return [*out, invalid(ads_path, ads, "must be less than or equal to previous value")]
    elif old_spec.HasField("active_deadline_seconds"):
        out.append(
            FieldViolation(
                ads_path,
                "Invalid value: null: must not update from a positive integer to nil value",
            )
        )
    if not _tolerations_only_added(spec.tolerations, old_spec.tolerations):
        out.append(
            forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )
        )
        return out
    munged = core_pb2.PodSpec()
    munged.CopyFrom(spec)
    for field in ("containers", "init_containers"):
        for ctr, old_ctr in zip(getattr(munged, field), getattr(old_spec, field), strict=True):
            ctr.image = old_ctr.image
    _copy_optional(munged, old_spec, "active_deadline_seconds")
    del munged.tolerations[:]
    munged.tolerations.extend(old_spec.tolerations)
    if (
        old_spec.HasField("termination_grace_period_seconds")
        and old_spec.termination_grace_period_seconds < 0
        and spec.HasField("termination_grace_period_seconds")
        and spec.termination_grace_period_seconds == 1
    ):
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds
    if not old_spec.node_name:
        # Binding sets nodeName on an unscheduled pod; once set it never changes.
        munged.node_name = ""
    if munged != old_spec:
        out.append(forbidden("spec", POD_UPDATE_FORBIDDEN))
    return out


def validate_conditions(conditions: Sequence[object], path: str) -> Errors:
    """Every status condition: a type and a True/False/Unknown status."""
    out: Errors = []
    for i, cond in enumerate(conditions):
        p = index(path, i)
        ctype: str = getattr(cond, "type")  # noqa: B009 - meta.v1.Condition and friends
        status: str = getattr(cond, "status")  # noqa: B009
        if not ctype:
            out.append(required(child(p, "type")))
        out.extend(enum(status, CONDITION_STATUSES, child(p, "status")))
    return out


_TERMINAL_PHASES: Final = ("Succeeded", "Failed")


def validate_pod_status(pod: core_pb2.Pod, old: core_pb2.Pod) -> Errors:
    status, path = pod.status, "status"
    out = enum(status.phase, POD_PHASES, child(path, "phase"), allow_empty=True)
    if old.status.phase in _TERMINAL_PHASES and status.phase not in _TERMINAL_PHASES:
        out.append(
            forbidden(
                child(path, "phase"),
                f"cannot transition from terminal phase {old.status.phase!r} to non-terminal "
                f"phase {status.phase!r}".replace("'", '"'),
            )
        )
    out.extend(validate_conditions(status.conditions, child(path, "conditions")))
    if status.nominated_node_name:
        out.extend(
            each_invalid(
                is_dns1123_subdomain(status.nominated_node_name),
                child(path, "nominatedNodeName"),
                status.nominated_node_name,
            )
        )
    for camel, value in (("podIP", status.pod_ip), ("hostIP", status.host_ip)):
        if value:
            out.extend(each_invalid(is_ip(value), child(path, camel), value))
    for i, pod_ip in enumerate(status.pod_ips):
        out.extend(
            each_invalid(is_ip(pod_ip.ip), child(index(child(path, "podIPs"), i), "ip"), pod_ip.ip)
        )
    for i, host_ip in enumerate(status.host_ips):
        out.extend(
            each_invalid(
                is_ip(host_ip.ip), child(index(child(path, "hostIPs"), i), "ip"), host_ip.ip
            )
        )
    if status.pod_ips and status.pod_ip and status.pod_ips[0].ip != status.pod_ip:
        out.append(invalid(child(path, "podIPs"), status.pod_ips[0].ip, "must match `podIP`"))
    for field, camel in (
        ("container_statuses", "containerStatuses"),
        ("init_container_statuses", "initContainerStatuses"),
    ):
        for i, cs in enumerate(getattr(status, field)):
            p = index(child(path, camel), i)
            out.extend(non_negative(cs.restart_count, child(p, "restartCount")))
            set_states = [s for s in ("waiting", "running", "terminated") if cs.state.HasField(s)]
            if len(set_states) > 1:
                out.append(forbidden(child(p, "state"), "may not specify more than 1 state type"))
    return out


def selector_matches_labels_error(path: str, labels: Mapping[str, str]) -> FieldViolation:
    return invalid_raw(path, render(labels), "`selector` does not match template `labels`")
