"""Output: kubectl's tables (one column list per kind, a NAME/AGE fallback for the rest),
ages like 5s/3m/2h/4d, pod STATUS the way kubectl derives it, and the -o formats
(yaml, json, name, wide, jsonpath)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from capstan.cli.common import qualified_name
from capstan.machinery.intstr import int_or_str
from capstan.machinery.kinds import Kind
from capstan.machinery.labels import selector_from_proto
from capstan.machinery.manifests import dump_json, dump_yaml, list_dict, to_dict

NONE = "<none>"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def human_duration(seconds: float) -> str:
    """kubectl's duration.HumanDuration: precise when young, coarse when old."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def ts_set(ts: Timestamp) -> bool:
    return bool(ts.seconds or ts.nanos)


def age(ts: Timestamp, at: dt.datetime | None = None) -> str:
    if not ts_set(ts):
        return "<unknown>"
    when = ts.ToDatetime(tzinfo=dt.UTC)
    return human_duration(((at or now()) - when).total_seconds())


def format_time(ts: Timestamp) -> str:
    if not ts_set(ts):
        return NONE
    return ts.ToDatetime(tzinfo=dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, no_headers: bool = False
) -> str:
    """Left-aligned columns separated by three spaces, like kubectl's tabwriter."""
    all_rows = [list(headers)] if not no_headers else []
    all_rows += [list(r) for r in rows]
    if not all_rows:
        return ""
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for r in all_rows:
        cells = [c.ljust(widths[i]) for i, c in enumerate(r[:-1])] + [r[-1]]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


# --- per-kind columns -------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], str]
    wide: bool = False


def _count(n: int) -> str:
    return str(n)


def _or_none(text: str) -> str:
    return text or NONE


def _age(o: Any) -> str:
    return age(o.metadata.creation_timestamp)


def pod_ready(pod: Any) -> str:
    total = len(pod.spec.containers)
    ready = sum(1 for c in pod.status.container_statuses if c.ready)
    return f"{ready}/{total}"


def pod_status(pod: Any) -> str:
    """The STATUS column: the most telling container reason, else the phase."""
    reason = pod.status.reason or pod.status.phase or "Pending"
    inits = len(pod.spec.init_containers)
    for i, c in enumerate(pod.status.init_container_statuses):
        term = c.state.terminated if c.state.HasField("terminated") else None
        if term is not None and term.exit_code == 0:
            continue
        if term is not None:
            reason = "Init:" + (term.reason or f"ExitCode:{term.exit_code}")
        elif c.state.HasField("waiting") and c.state.waiting.reason not in ("", "PodInitializing"):
            reason = "Init:" + c.state.waiting.reason
        else:
            reason = f"Init:{i}/{inits}"
        break
    else:
        has_running = False
        for c in reversed(pod.status.container_statuses):
            st = c.state
            if st.HasField("waiting") and st.waiting.reason:
                reason = st.waiting.reason
            elif st.HasField("terminated") and st.terminated.reason:
                reason = st.terminated.reason
            elif st.HasField("terminated"):
                t = st.terminated
                reason = f"Signal:{t.signal}" if t.signal else f"ExitCode:{t.exit_code}"
            elif st.HasField("running") and c.ready:
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(
                cond.type == "Ready" and cond.status == "True" for cond in pod.status.conditions
            )
            reason = "Running" if ready else "NotReady"
    if ts_set(pod.metadata.deletion_timestamp):
        reason = "Unknown" if pod.status.reason == "NodeLost" else "Terminating"
    return reason


def pod_restarts(pod: Any) -> str:
    restarts = sum(c.restart_count for c in pod.status.container_statuses)
    last = None
    for c in pod.status.container_statuses:
        if c.last_state.HasField("terminated") and ts_set(c.last_state.terminated.finished_at):
            t = c.last_state.terminated.finished_at.ToDatetime(tzinfo=dt.UTC)
            last = t if last is None or t > last else last
    if restarts and last is not None:
        return f"{restarts} ({human_duration((now() - last).total_seconds())} ago)"
    return str(restarts)


def _containers(spec: Any) -> str:
    return ",".join(c.name for c in spec.containers) or NONE


def _images(spec: Any) -> str:
    return ",".join(c.image for c in spec.containers) or NONE


def _selector(sel: Any) -> str:
    text = str(selector_from_proto(sel))
    return text or NONE


def service_ports(svc: Any) -> str:
    out = []
    for p in svc.spec.ports:
        proto = p.protocol or "TCP"
        out.append(f"{p.port}:{p.node_port}/{proto}" if p.node_port else f"{p.port}/{proto}")
    return ",".join(out) or NONE


def service_external_ip(svc: Any) -> str:
    ips = [i.ip or i.hostname for i in svc.status.load_balancer.ingress]
    ips += list(svc.spec.external_ips)
    if svc.spec.type == "ExternalName":
        return str(svc.spec.external_name)
    if svc.spec.type == "LoadBalancer" and not ips:
        return "<pending>"
    return ",".join(ips) or NONE


def node_status(node: Any) -> str:
    ready = next((c for c in node.status.conditions if c.type == "Ready"), None)
    state = "Unknown"
    if ready is not None:
        state = "Ready" if ready.status == "True" else "NotReady"
        if ready.status == "Unknown":
            state = "NotReady"
    if node.spec.unschedulable:
        state += ",SchedulingDisabled"
    return state


def node_roles(node: Any) -> str:
    roles = sorted(
        k.removeprefix("node-role.kubernetes.io/") or ""
        for k in node.metadata.labels
        if k.startswith("node-role.kubernetes.io/")
    )
    if node.metadata.labels.get("kubernetes.io/role"):
        roles.append(node.metadata.labels["kubernetes.io/role"])
    return ",".join(r for r in roles if r) or NONE


def _node_address(node: Any, kind: str) -> str:
    return next((a.address for a in node.status.addresses if a.type == kind), NONE)


def endpoints_text(ep: Any, limit: int = 3) -> str:
    items = []
    for subset in ep.subsets:
        ports = list(subset.ports) or [None]
        for addr in subset.addresses:
            for p in ports:
                items.append(f"{addr.ip}:{p.port}" if p is not None else addr.ip)
    if not items:
        return NONE
    shown = ",".join(items[:limit])
    if len(items) > limit:
        shown += f" + {len(items) - limit} more..."
    return shown


def _access_modes(modes: Iterable[str]) -> str:
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return ",".join(short.get(m, m) for m in modes)


def _job_duration(job: Any) -> str:
    start = job.status.start_time
    if not ts_set(start):
        return ""
    end = job.status.completion_time
    until = end.ToDatetime(tzinfo=dt.UTC) if ts_set(end) else now()
    return human_duration((until - start.ToDatetime(tzinfo=dt.UTC)).total_seconds())


def _completions(job: Any) -> str:
    if job.spec.HasField("completions"):
        return f"{job.status.succeeded}/{job.spec.completions}"
    parallelism = job.spec.parallelism if job.spec.HasField("parallelism") else 1
    return (
        f"{job.status.succeeded}/1 of {parallelism}"
        if parallelism > 1
        else (f"{job.status.succeeded}/1")
    )


def _hpa_targets(hpa: Any) -> str:
    current = (
        f"{hpa.status.current_cpu_utilization_percentage}%"
        if hpa.status.HasField("current_cpu_utilization_percentage")
        else "<unknown>"
    )
    target = (
        hpa.spec.target_cpu_utilization_percentage
        if hpa.spec.HasField("target_cpu_utilization_percentage")
        else 80
    )
    return f"{current}/{target}%"


def _event_object(ev: Any) -> str:
    return f"{ev.involved_object.kind.lower()}/{ev.involved_object.name}"


def event_age(ev: Any) -> str:
    for ts in (
        ev.last_timestamp,
        ev.event_time,
        ev.first_timestamp,
        ev.metadata.creation_timestamp,
    ):
        if ts_set(ts):
            return age(ts)
    return "<unknown>"


def _replicas(spec: Any) -> int:
    return int(spec.replicas) if spec.HasField("replicas") else 1


def _optional(o: Any, name: str, default: str = "") -> str:
    return str(getattr(o, name)) if o.HasField(name) else default


NAME = Column("NAME", lambda o: o.metadata.name)
AGE = Column("AGE", _age)

TABLES: dict[str, list[Column]] = {
    "Pod": [
        NAME,
        Column("READY", pod_ready),
        Column("STATUS", pod_status),
        Column("RESTARTS", pod_restarts),
        AGE,
        Column("IP", lambda o: _or_none(o.status.pod_ip), wide=True),
        Column("NODE", lambda o: _or_none(o.spec.node_name), wide=True),
        Column("NOMINATED NODE", lambda o: _or_none(o.status.nominated_node_name), wide=True),
    ],
    "Deployment": [
        NAME,
        Column("READY", lambda o: f"{o.status.ready_replicas}/{_replicas(o.spec)}"),
        Column("UP-TO-DATE", lambda o: _count(o.status.updated_replicas)),
        Column("AVAILABLE", lambda o: _count(o.status.available_replicas)),
        AGE,
        Column("CONTAINERS", lambda o: _containers(o.spec.template.spec), wide=True),
        Column("IMAGES", lambda o: _images(o.spec.template.spec), wide=True),
        Column("SELECTOR", lambda o: _selector(o.spec.selector), wide=True),
    ],
    "ReplicaSet": [
        NAME,
        Column("DESIRED", lambda o: _count(_replicas(o.spec))),
        Column("CURRENT", lambda o: _count(o.status.replicas)),
        Column("READY", lambda o: _count(o.status.ready_replicas)),
        AGE,
        Column("CONTAINERS", lambda o: _containers(o.spec.template.spec), wide=True),
        Column("IMAGES", lambda o: _images(o.spec.template.spec), wide=True),
        Column("SELECTOR", lambda o: _selector(o.spec.selector), wide=True),
    ],
    "DaemonSet": [
        NAME,
        Column("DESIRED", lambda o: _count(o.status.desired_number_scheduled)),
        Column("CURRENT", lambda o: _count(o.status.current_number_scheduled)),
        Column("READY", lambda o: _count(o.status.number_ready)),
        Column("UP-TO-DATE", lambda o: _count(o.status.updated_number_scheduled)),
        Column("AVAILABLE", lambda o: _count(o.status.number_available)),
        Column(
            "NODE SELECTOR",
            lambda o: (
                ",".join(f"{k}={v}" for k, v in sorted(o.spec.template.spec.node_selector.items()))
                or NONE
            ),
        ),
        AGE,
        Column("CONTAINERS", lambda o: _containers(o.spec.template.spec), wide=True),
        Column("IMAGES", lambda o: _images(o.spec.template.spec), wide=True),
        Column("SELECTOR", lambda o: _selector(o.spec.selector), wide=True),
    ],
    "StatefulSet": [
        NAME,
        Column("READY", lambda o: f"{o.status.ready_replicas}/{_replicas(o.spec)}"),
        AGE,
        Column("CONTAINERS", lambda o: _containers(o.spec.template.spec), wide=True),
        Column("IMAGES", lambda o: _images(o.spec.template.spec), wide=True),
    ],
    "Job": [
        NAME,
        Column("COMPLETIONS", _completions),
        Column("DURATION", _job_duration),
        AGE,
        Column("CONTAINERS", lambda o: _containers(o.spec.template.spec), wide=True),
        Column("IMAGES", lambda o: _images(o.spec.template.spec), wide=True),
        Column("SELECTOR", lambda o: _selector(o.spec.selector), wide=True),
    ],
    "CronJob": [
        NAME,
        Column("SCHEDULE", lambda o: o.spec.schedule),
        Column("SUSPEND", lambda o: "True" if o.spec.suspend else "False"),
        Column("ACTIVE", lambda o: _count(len(o.status.active))),
        Column(
            "LAST SCHEDULE",
            lambda o: (
                age(o.status.last_schedule_time) if ts_set(o.status.last_schedule_time) else NONE
            ),
        ),
        AGE,
    ],
    "Service": [
        NAME,
        Column("TYPE", lambda o: o.spec.type or "ClusterIP"),
        Column("CLUSTER-IP", lambda o: _or_none(o.spec.cluster_ip)),
        Column("EXTERNAL-IP", service_external_ip),
        Column("PORT(S)", service_ports),
        AGE,
        Column(
            "SELECTOR",
            lambda o: ",".join(f"{k}={v}" for k, v in sorted(o.spec.selector.items())) or NONE,
            wide=True,
        ),
    ],
    "Endpoints": [NAME, Column("ENDPOINTS", endpoints_text), AGE],
    "Node": [
        NAME,
        Column("STATUS", node_status),
        Column("ROLES", node_roles),
        AGE,
        Column("VERSION", lambda o: o.status.node_info.kubelet_version),
        Column("INTERNAL-IP", lambda o: _node_address(o, "InternalIP"), wide=True),
        Column("EXTERNAL-IP", lambda o: _node_address(o, "ExternalIP"), wide=True),
        Column("OS-IMAGE", lambda o: o.status.node_info.os_image, wide=True),
        Column("KERNEL-VERSION", lambda o: o.status.node_info.kernel_version, wide=True),
        Column(
            "CONTAINER-RUNTIME", lambda o: o.status.node_info.container_runtime_version, wide=True
        ),
    ],
    "Namespace": [NAME, Column("STATUS", lambda o: o.status.phase or "Active"), AGE],
    "ConfigMap": [
        NAME,
        Column("DATA", lambda o: _count(len(o.data) + len(o.binary_data))),
        AGE,
    ],
    "Secret": [
        NAME,
        Column("TYPE", lambda o: o.type or "Opaque"),
        Column("DATA", lambda o: _count(len(o.data))),
        AGE,
    ],
    "ServiceAccount": [NAME, Column("SECRETS", lambda o: _count(len(o.secrets))), AGE],
    "Event": [
        Column("LAST SEEN", event_age),
        Column("TYPE", lambda o: o.type),
        Column("REASON", lambda o: o.reason),
        Column("OBJECT", _event_object),
        Column("MESSAGE", lambda o: o.message.strip()),
    ],
    "PersistentVolume": [
        NAME,
        Column("CAPACITY", lambda o: o.spec.capacity.get("storage", "")),
        Column("ACCESS MODES", lambda o: _access_modes(o.spec.access_modes)),
        Column("RECLAIM POLICY", lambda o: o.spec.persistent_volume_reclaim_policy),
        Column("STATUS", lambda o: o.status.phase),
        Column(
            "CLAIM",
            lambda o: (
                f"{o.spec.claim_ref.namespace}/{o.spec.claim_ref.name}"
                if o.spec.claim_ref.name
                else ""
            ),
        ),
        Column("STORAGECLASS", lambda o: o.spec.storage_class_name),
        Column("REASON", lambda o: o.status.reason),
        AGE,
    ],
    "PersistentVolumeClaim": [
        NAME,
        Column("STATUS", lambda o: o.status.phase),
        Column("VOLUME", lambda o: o.spec.volume_name),
        Column("CAPACITY", lambda o: o.status.capacity.get("storage", "")),
        Column("ACCESS MODES", lambda o: _access_modes(o.status.access_modes)),
        Column("STORAGECLASS", lambda o: _optional(o.spec, "storage_class_name")),
        AGE,
    ],
    "HorizontalPodAutoscaler": [
        NAME,
        Column(
            "REFERENCE", lambda o: f"{o.spec.scale_target_ref.kind}/{o.spec.scale_target_ref.name}"
        ),
        Column("TARGETS", _hpa_targets),
        Column("MINPODS", lambda o: _optional(o.spec, "min_replicas", "1")),
        Column("MAXPODS", lambda o: _count(o.spec.max_replicas)),
        Column("REPLICAS", lambda o: _count(o.status.current_replicas)),
        AGE,
    ],
    "Lease": [NAME, Column("HOLDER", lambda o: _optional(o.spec, "holder_identity")), AGE],
    "StorageClass": [
        NAME,
        Column("PROVISIONER", lambda o: o.provisioner),
        Column("RECLAIMPOLICY", lambda o: _optional(o, "reclaim_policy", "Delete")),
        Column("VOLUMEBINDINGMODE", lambda o: _optional(o, "volume_binding_mode", "Immediate")),
        Column(
            "ALLOWVOLUMEEXPANSION",
            lambda o: (
                "true"
                if o.HasField("allow_volume_expansion") and o.allow_volume_expansion
                else "false"
            ),
        ),
        AGE,
    ],
    "ControllerRevision": [
        NAME,
        Column(
            "CONTROLLER",
            lambda o: next(
                (
                    f"{r.kind.lower()}.apps/{r.name}"
                    for r in o.metadata.owner_references
                    if r.controller
                ),
                NONE,
            ),
        ),
        Column("REVISION", lambda o: str(o.revision)),
        AGE,
    ],
    "ResourceQuota": [NAME, AGE],
    "LimitRange": [NAME, AGE],
}


@dataclass
class TableOptions:
    wide: bool = False
    show_kind: bool = False
    all_namespaces: bool = False
    show_labels: bool = False
    label_columns: Sequence[str] = ()
    no_headers: bool = False


def columns_for(kind: Kind, wide: bool) -> list[Column]:
    cols = TABLES.get(kind.kind, [NAME, AGE])
    return [c for c in cols if wide or not c.wide]


def table_headers(kind: Kind, opts: TableOptions) -> list[str]:
    headers = [c.header for c in columns_for(kind, opts.wide)]
    if opts.all_namespaces and kind.namespaced:
        headers.insert(0, "NAMESPACE")
    headers += [lc.rsplit("/", 1)[-1].upper() for lc in opts.label_columns]
    if opts.show_labels:
        headers.append("LABELS")
    return headers


def table_row(kind: Kind, obj: Message, opts: TableOptions) -> list[str]:
    o: Any = obj
    row = []
    for c in columns_for(kind, opts.wide):
        text = c.value(o)
        if c is NAME and opts.show_kind:
            prefix = kind.singular if not kind.group else f"{kind.singular}.{kind.group}"
            text = f"{prefix}/{text}"
        row.append(text)
    if opts.all_namespaces and kind.namespaced:
        row.insert(0, o.metadata.namespace)
    labels: Mapping[str, str] = o.metadata.labels
    row += [labels.get(lc, "") for lc in opts.label_columns]
    if opts.show_labels:
        row.append(",".join(f"{k}={v}" for k, v in sorted(labels.items())) or NONE)
    return row


def render_objects(kind: Kind, objs: Sequence[Message], opts: TableOptions) -> str:
    return render_table(
        table_headers(kind, opts),
        [table_row(kind, o, opts) for o in objs],
        no_headers=opts.no_headers,
    )


# --- -o formats -------------------------------------------------------------------------

OUTPUT_FORMATS = ("wide", "yaml", "json", "name", "jsonpath=TEMPLATE")


def check_output_format(fmt: str | None) -> None:
    if fmt is None or fmt in ("wide", "yaml", "json", "name"):
        return
    if fmt.startswith(("jsonpath=", "jsonpath-as-json=")):
        return
    raise ValueError(
        f'unable to match a printer suitable for the output format "{fmt}", '
        f"allowed formats are: {', '.join(OUTPUT_FORMATS)}"
    )


def format_objects(kind_objs: Sequence[tuple[Kind, Message]], fmt: str, single: bool) -> str:
    """yaml/json/name/jsonpath output for objects of possibly several kinds."""
    if fmt == "name":
        return "".join(f"{qualified_name(k, o.metadata.name)}\n" for k, o in kind_objs)  # type: ignore[attr-defined]
    dicts = [to_dict(o, k) for k, o in kind_objs]
    doc: Any = dicts[0] if single and len(dicts) == 1 else list_dict(dicts)
    if fmt == "yaml":
        return dump_yaml(doc)
    if fmt == "json":
        return dump_json(doc)
    if fmt.startswith("jsonpath="):
        return jsonpath(fmt.removeprefix("jsonpath="), doc)
    raise ValueError(f"unknown output format {fmt}")


_JP_EXPR = re.compile(r"\{([^{}]*)\}")
_JP_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\*|-?\d+)\]|\[(?:'([^']*)'|\"([^\"]*)\")\]")


def _jp_eval(expr: str, doc: Any) -> list[Any]:
    expr = expr.strip()
    if expr in ("", "@", "$"):
        return [doc]
    expr = expr.removeprefix("$").removeprefix("@")
    current = [doc]
    pos = 0
    while pos < len(expr):
        m = _JP_SEGMENT.match(expr, pos)
        if m is None:
            raise ValueError(f"unsupported jsonpath expression {{{expr}}}")
        pos = m.end()
        key, index = m.group(1), m.group(2)
        quoted = m.group(3) if m.group(3) is not None else m.group(4)
        nxt: list[Any] = []
        for item in current:
            if key is not None or quoted is not None:
                k = key if key is not None else quoted
                if key == "*" and isinstance(item, dict):
                    nxt.extend(item.values())
                elif isinstance(item, dict) and k in item:
                    nxt.append(item[k])
            elif index == "*":
                if isinstance(item, list):
                    nxt.extend(item)
                elif isinstance(item, dict):
                    nxt.extend(item.values())
            elif isinstance(item, list):
                i = int(index)
                if -len(item) <= i < len(item):
                    nxt.append(item[i])
        current = nxt
    return current


def _jp_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def jsonpath(template: str, doc: Any) -> str:
    """kubectl's -o jsonpath subset: {.a.b}, {.items[0].x}, {.items[*].x}, {range}...{end}."""
    template = template.strip()
    if template.startswith(("'", '"')) and template.endswith(template[0]) and len(template) > 1:
        template = template[1:-1]
    return _jp_render(template, doc)


def _jp_render(template: str, doc: Any) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(template):
        m = _JP_EXPR.search(template, pos)
        if m is None:
            out.append(_jp_literal(template[pos:]))
            break
        out.append(_jp_literal(template[pos : m.start()]))
        expr = m.group(1).strip()
        pos = m.end()
        if expr.startswith("range "):
            end = _find_end(template, pos)
            body = template[pos : end.start()]
            for item in _jp_eval(expr.removeprefix("range ").strip(), doc):
                out.append(_jp_render(body, item))
            pos = end.end()
        elif expr == "end":
            raise ValueError("jsonpath: {end} without {range}")
        elif expr.startswith('"') and expr.endswith('"'):
            out.append(_jp_literal(expr[1:-1]))
        else:
            out.append(" ".join(_jp_text(v) for v in _jp_eval(expr, doc)))
    return "".join(out)


def _find_end(template: str, pos: int) -> re.Match[str]:
    depth = 1
    for m in _JP_EXPR.finditer(template, pos):
        expr = m.group(1).strip()
        if expr.startswith("range "):
            depth += 1
        elif expr == "end":
            depth -= 1
            if depth == 0:
                return m
    raise ValueError("jsonpath: {range} without {end}")


def _jp_literal(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def target_port_text(value: Any) -> str:
    v = int_or_str(value)
    return "" if v is None else str(v)
