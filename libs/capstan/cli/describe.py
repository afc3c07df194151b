"""`describe`: a human summary of objects with their related objects (a controller's pods,
a Deployment's ReplicaSets, a Service's endpoints, a Node's pods and allocated resources)
and recent events. Kinds without a dedicated section show their spec and status as YAML."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from capstan.apierrors import ApiError, NotFoundError
from capstan.cli.common import LAST_APPLIED, CliError, Session, parse_targets
from capstan.cli.printers import (
    NONE,
    age,
    endpoints_text,
    event_age,
    format_time,
    node_roles,
    pod_status,
    render_table,
    target_port_text,
    ts_set,
)
from capstan.machinery.kinds import Kind, by_kind
from capstan.machinery.labels import selector_from_proto
from capstan.machinery.manifests import dump_yaml, to_dict
from capstan.machinery.quantity import cpu_millis, format_bytes, format_cpu_millis, to_bytes

REVISION = "deployment.kubernetes.io/revision"


class Out:
    """kubectl describe's layout: `Key:  value` at nested indents, multi-line values
    aligned under their first line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def kv(self, key: str, value: object, indent: int = 0, width: int = 0) -> None:
        text = str(value) if value not in ("", None) else NONE
        label = f"{' ' * indent}{key}:"
        pad = max(width or 20, len(label) + 2)
        first, *rest = text.split("\n") if text else [""]
        self.lines.append(f"{label:<{pad}}{first}".rstrip())
        self.lines.extend(f"{' ' * pad}{line}" for line in rest)

    def head(self, key: str, indent: int = 0) -> None:
        self.lines.append(f"{' ' * indent}{key}:")

    def map(self, key: str, values: Mapping[str, str], indent: int = 0) -> None:
        shown = {k: v for k, v in values.items() if k != LAST_APPLIED}
        self.kv(key, "\n".join(f"{k}={v}" for k, v in sorted(shown.items())), indent)

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def block(self, text: str, indent: int) -> None:
        self.lines.extend(f"{' ' * indent}{line}" for line in text.rstrip("\n").split("\n"))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "describe",
        parents=parents,
        help="show details of objects",
        description="Show a human summary of objects, their related objects and "
        "recent events: `describe pod web-1`, `describe deployments`.",
    )
    p.add_argument("resources", nargs="+", metavar="TYPE [NAME_PREFIX...] | TYPE/NAME")
    p.add_argument("-l", "--selector", default="")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--show-events", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(handler=run_describe)


def _header(out: Out, kind: Kind, o: Any) -> None:
    out.kv("Name", o.metadata.name)
    if kind.namespaced:
        out.kv("Namespace", o.metadata.namespace)
    out.map("Labels", o.metadata.labels)
    out.map("Annotations", o.metadata.annotations)
    out.kv("CreationTimestamp", format_time(o.metadata.creation_timestamp))
    if ts_set(o.metadata.deletion_timestamp):
        out.kv("DeletionTimestamp", format_time(o.metadata.deletion_timestamp))
    owner = next((r for r in o.metadata.owner_references if r.controller), None)
    if owner is not None:
        out.kv("Controlled By", f"{owner.kind}/{owner.name}")


def _resources(out: Out, resources: Any, indent: int) -> None:
    if resources.limits:
        out.head("Limits", indent)
        for k, v in sorted(resources.limits.items()):
            out.kv(k, v, indent + 2)
    if resources.requests:
        out.head("Requests", indent)
        for k, v in sorted(resources.requests.items()):
            out.kv(k, v, indent + 2)


def _probe(p: Any) -> str:
    if p.HasField("http_get"):
        h = p.http_get
        scheme = (h.scheme or "http").lower()
        action = f"http-get {scheme}://{h.host or ''}:{target_port_text(h.port)}{h.path}"
    elif p.HasField("tcp_socket"):
        action = f"tcp-socket :{target_port_text(p.tcp_socket.port)}"
    elif p.HasField("exec"):
        action = f"exec {list(p.exec.command)}"
    elif p.HasField("grpc"):
        action = f"grpc <pod>:{p.grpc.port}"
    else:
        action = "unknown"

    def opt(name: str, default: int) -> int:
        return int(getattr(p, name)) if p.HasField(name) else default

    return (
        f"{action} delay={opt('initial_delay_seconds', 0)}s timeout={opt('timeout_seconds', 1)}s"
        f" period={opt('period_seconds', 10)}s #success={opt('success_threshold', 1)}"
        f" #failure={opt('failure_threshold', 3)}"
    )


def _state(out: Out, key: str, state: Any, indent: int) -> None:
    if state.HasField("running"):
        out.kv(key, "Running", indent)
        out.kv("Started", format_time(state.running.started_at), indent + 2)
    elif state.HasField("terminated"):
        t = state.terminated
        out.kv(key, "Terminated", indent)
        out.kv("Reason", t.reason, indent + 2)
        out.kv("Exit Code", t.exit_code, indent + 2)
        out.kv("Started", format_time(t.started_at), indent + 2)
        out.kv("Finished", format_time(t.finished_at), indent + 2)
    elif state.HasField("waiting"):
        out.kv(key, "Waiting", indent)
        out.kv("Reason", state.waiting.reason, indent + 2)
    else:
        out.kv(key, "Waiting", indent)


def _env_text(e: Any) -> str:
    if e.HasField("value_from"):
        vf = e.value_from
        if vf.HasField("config_map_key_ref"):
            r = vf.config_map_key_ref
            return f"<set to the key '{r.key}' of config map '{r.name}'>"
        if vf.HasField("secret_key_ref"):
            r = vf.secret_key_ref
            return f"<set to the key '{r.key}' in secret '{r.name}'>"
        if vf.HasField("field_ref"):
            return f"({vf.field_ref.api_version or 'v1'}:{vf.field_ref.field_path})"
        if vf.HasField("resource_field_ref"):
            return f"{vf.resource_field_ref.resource}"
    return str(e.value)


def _containers(
    out: Out,
    containers: Iterable[Any],
    statuses: Mapping[str, Any],
    indent: int,
    title: str = "Containers",
) -> None:
    out.head(title, indent)
    for c in containers:
        i = indent + 2
        out.line(f"{' ' * i}{c.name}:")
        i += 2
        st = statuses.get(c.name)
        if st is not None and st.container_id:
            out.kv("Container ID", st.container_id, i)
        out.kv("Image", c.image, i)
        if st is not None and st.image_id:
            out.kv("Image ID", st.image_id, i)
        ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in c.ports)
        out.kv("Port", ports, i)
        if c.command:
            out.kv("Command", "\n".join(c.command), i)
        if c.args:
            out.kv("Args", "\n".join(c.args), i)
        if st is not None:
            _state(out, "State", st.state, i)
            if st.last_state.HasField("terminated"):
                _state(out, "Last State", st.last_state, i)
            out.kv("Ready", "True" if st.ready else "False", i)
            out.kv("Restart Count", st.restart_count, i)
        _resources(out, c.resources, i)
        if c.HasField("liveness_probe"):
            out.kv("Liveness", _probe(c.liveness_probe), i)
        if c.HasField("readiness_probe"):
            out.kv("Readiness", _probe(c.readiness_probe), i)
        if c.HasField("startup_probe"):
            out.kv("Startup", _probe(c.startup_probe), i)
        if c.env:
            out.head("Environment", i)
            for e in c.env:
                out.kv(e.name, _env_text(e), i + 2)
        else:
            out.kv("Environment", NONE, i)
        mounts = [
            f"{m.mount_path} from {m.name} ({'ro' if m.read_only else 'rw'})"
            for m in c.volume_mounts
        ]
        out.kv("Mounts", "\n".join(mounts), i)


def _volumes(out: Out, volumes: Iterable[Any], indent: int) -> None:
    vols = list(volumes)
    if not vols:
        out.kv("Volumes", NONE, indent)
        return
    out.head("Volumes", indent)
    for v in vols:
        out.line(f"{' ' * (indent + 2)}{v.name}:")
        d = to_dict(v)
        d.pop("name", None)
        out.block(dump_yaml(d) if d else "EmptyDir", indent + 4)


def _pod_template(out: Out, template: Any) -> None:
    out.line("Pod Template:")
    out.map("Labels", template.metadata.labels, 2)
    if template.metadata.annotations:
        out.map("Annotations", template.metadata.annotations, 2)
    _containers(out, template.spec.containers, {}, 2)
    _volumes(out, template.spec.volumes, 2)


def _conditions(out: Out, conditions: Iterable[Any]) -> None:
    conds = list(conditions)
    if not conds:
        return
    out.line("Conditions:")
    table = render_table(
        ["Type", "Status", "Reason"], [[c.type, c.status, c.reason] for c in conds]
    )
    out.block(table, 2)


async def _pods_for(session: Session, namespace: str, selector: Any) -> list[Any]:
    sel = str(selector_from_proto(selector))
    items, _ = await session.client.resource("Pod").list_all(namespace, label_selector=sel)
    return list(items)


def _pods_status(pods: list[Any]) -> str:
    counts = {p: 0 for p in ("Running", "Pending", "Succeeded", "Failed")}
    for pod in pods:
        phase = pod.status.phase or "Pending"
        counts[phase] = counts.get(phase, 0) + 1
    return (
        f"{counts['Running']} Running / {counts['Pending']} Waiting / "
        f"{counts['Succeeded']} Succeeded / {counts['Failed']} Failed"
    )


async def describe_pod(session: Session, out: Out, o: Any) -> None:
    out.kv("Priority", o.spec.priority if o.spec.HasField("priority") else 0)
    out.kv("Service Account", o.spec.service_account_name)
    node = o.spec.node_name
    if node and o.status.host_ip:
        node = f"{node}/{o.status.host_ip}"
    out.kv("Node", node)
    out.kv("Start Time", format_time(o.status.start_time))
    out.kv("Status", pod_status(o))
    if o.status.reason:
        out.kv("Reason", o.status.reason)
    if o.status.message:
        out.kv("Message", o.status.message)
    out.kv("IP", o.status.pod_ip)
    out.kv("IPs", "\n".join(f"IP:  {p.ip}" for p in o.status.pod_ips))
    statuses = {s.name: s for s in o.status.container_statuses}
    if o.spec.init_containers:
        inits = {s.name: s for s in o.status.init_container_statuses}
        _containers(out, o.spec.init_containers, inits, 0, "Init Containers")
    _containers(out, o.spec.containers, statuses, 0)
    _conditions(out, o.status.conditions)
    _volumes(out, o.spec.volumes, 0)
    out.kv("QoS Class", o.status.qos_class)
    out.kv("Node-Selectors", "\n".join(f"{k}={v}" for k, v in sorted(o.spec.node_selector.items())))
    tolerations = [
        f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}"
        + (f" for {t.toleration_seconds}s" if t.HasField("toleration_seconds") else "")
        for t in o.spec.tolerations
    ]
    out.kv("Tolerations", "\n".join(tolerations))


async def _describe_controller(session: Session, out: Out, o: Any, replicas_line: str) -> None:
    out.kv("Selector", str(selector_from_proto(o.spec.selector)))
    out.kv("Replicas", replicas_line)
    pods = await _pods_for(session, o.metadata.namespace, o.spec.selector)
    out.kv("Pods Status", _pods_status(pods))
    _pod_template(out, o.spec.template)
    _conditions(out, o.status.conditions)


def _desired(spec: Any) -> int:
    return int(spec.replicas) if spec.HasField("replicas") else 1


async def describe_replicaset(session: Session, out: Out, o: Any) -> None:
    line = f"{o.status.replicas} current / {_desired(o.spec)} desired"
    await _describe_controller(session, out, o, line)


async def describe_statefulset(session: Session, out: Out, o: Any) -> None:
    out.kv("Service Name", o.spec.service_name)
    line = f"{_desired(o.spec)} desired | {o.status.replicas} total"
    await _describe_controller(session, out, o, line)


async def describe_daemonset(session: Session, out: Out, o: Any) -> None:
    s = o.status
    out.kv("Desired Number of Nodes Scheduled", s.desired_number_scheduled, width=40)
    out.kv("Current Number of Nodes Scheduled", s.current_number_scheduled, width=40)
    out.kv("Number of Nodes Scheduled with Up-to-date Pods", s.updated_number_scheduled, width=40)
    out.kv("Number of Nodes Scheduled with Available Pods", s.number_available, width=40)
    out.kv("Number of Nodes Misscheduled", s.number_misscheduled, width=40)
    await _describe_controller(session, out, o, f"{s.desired_number_scheduled} desired")


async def describe_job(session: Session, out: Out, o: Any) -> None:
    out.kv("Parallelism", o.spec.parallelism if o.spec.HasField("parallelism") else 1)
    out.kv("Completions", o.spec.completions if o.spec.HasField("completions") else NONE)
    out.kv("Start Time", format_time(o.status.start_time))
    if ts_set(o.status.completion_time):
        out.kv("Completed At", format_time(o.status.completion_time))
    line = f"{o.status.active} active"
    await _describe_controller(session, out, o, line)


async def describe_deployment(session: Session, out: Out, o: Any) -> None:
    s = o.status
    out.kv("Selector", str(selector_from_proto(o.spec.selector)))
    out.kv(
        "Replicas",
        f"{_desired(o.spec)} desired | {s.updated_replicas} updated | {s.replicas} total | "
        f"{s.available_replicas} available | {s.unavailable_replicas} unavailable",
    )
    out.kv("StrategyType", o.spec.strategy.type or "RollingUpdate")
    out.kv("MinReadySeconds", o.spec.min_ready_seconds)
    ru = o.spec.strategy.rolling_update
    if (o.spec.strategy.type or "RollingUpdate") == "RollingUpdate":
        out.kv(
            "RollingUpdateStrategy",
            f"{target_port_text(ru.max_unavailable) or '25%'} max unavailable, "
            f"{target_port_text(ru.max_surge) or '25%'} max surge",
        )
    _pod_template(out, o.spec.template)
    _conditions(out, s.conditions)
    rs_all, _ = await session.client.resource("ReplicaSet").list_all(o.metadata.namespace)
    owned = [
        rs for rs in rs_all if any(r.uid == o.metadata.uid for r in rs.metadata.owner_references)
    ]
    owned.sort(key=lambda rs: int(rs.metadata.annotations.get(REVISION, "0") or 0))
    new = owned[-1] if owned else None
    old = [rs for rs in owned[:-1] if rs.status.replicas > 0]

    def describe_rs(rs: Any) -> str:
        return f"{rs.metadata.name} ({rs.status.replicas}/{_desired(rs.spec)} replicas created)"

    out.kv("OldReplicaSets", ", ".join(describe_rs(rs) for rs in old))
    out.kv("NewReplicaSet", describe_rs(new) if new is not None else NONE)


async def describe_service(session: Session, out: Out, o: Any) -> None:
    out.kv("Selector", ",".join(f"{k}={v}" for k, v in sorted(o.spec.selector.items())))
    out.kv("Type", o.spec.type or "ClusterIP")
    out.kv(
        "IP Family Policy", o.spec.ip_family_policy if o.spec.HasField("ip_family_policy") else ""
    )
    out.kv("IP", o.spec.cluster_ip)
    out.kv("IPs", ",".join(o.spec.cluster_ips))
    if o.spec.external_ips:
        out.kv("External IPs", ",".join(o.spec.external_ips))
    endpoints = NONE
    try:
        ep = await session.client.resource("Endpoints").get(o.metadata.name, o.metadata.namespace)
        endpoints = endpoints_text(ep, limit=10)
    except NotFoundError:
        pass
    for p in o.spec.ports:
        proto = p.protocol or "TCP"
        out.kv("Port", f"{p.name or '<unset>'}  {p.port}/{proto}")
        out.kv("TargetPort", f"{target_port_text(p.target_port) or p.port}/{proto}")
        if p.node_port:
            out.kv("NodePort", f"{p.name or '<unset>'}  {p.node_port}/{proto}")
        out.kv("Endpoints", endpoints)
    out.kv("Session Affinity", o.spec.session_affinity or "None")


async def describe_node(session: Session, out: Out, o: Any) -> None:
    out.kv("Roles", node_roles(o))
    taints = [f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in o.spec.taints]
    out.kv("Taints", "\n".join(taints))
    out.kv("Unschedulable", "true" if o.spec.unschedulable else "false")
    if o.status.conditions:
        out.line("Conditions:")
        rows = [
            [
                c.type,
                c.status,
                format_time(c.last_heartbeat_time),
                format_time(c.last_transition_time),
                c.reason,
                c.message,
            ]
            for c in o.status.conditions
        ]
        out.block(
            render_table(
                ["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"],
                rows,
            ),
            2,
        )
    out.line("Addresses:")
    for a in o.status.addresses:
        out.kv(a.type, a.address, 2)
    for title, values in (("Capacity", o.status.capacity), ("Allocatable", o.status.allocatable)):
        out.line(f"{title}:")
        for k, v in sorted(values.items()):
            out.kv(k, v, 2)
    info = o.status.node_info
    out.line("System Info:")
    for label, value in (
        ("Machine ID", info.machine_id),
        ("System UUID", info.system_uuid),
        ("Boot ID", info.boot_id),
        ("Kernel Version", info.kernel_version),
        ("OS Image", info.os_image),
        ("Operating System", info.operating_system),
        ("Architecture", info.architecture),
        ("Container Runtime Version", info.container_runtime_version),
        ("Kubelet Version", info.kubelet_version),
        ("Kube-Proxy Version", info.kube_proxy_version),
    ):
        out.kv(label, value, 2, width=30)
    out.kv("PodCIDR", o.spec.pod_cidr)
    out.kv("PodCIDRs", ",".join(o.spec.pod_cidrs))
    pods, _ = await session.client.resource("Pod").list_all(
        "", field_selector=f"spec.nodeName={o.metadata.name}"
    )
    live = [p for p in pods if p.status.phase not in ("Succeeded", "Failed")]
    out.line(f"Non-terminated Pods:          ({len(live)} in total)")
    alloc_cpu = cpu_millis(o.status.allocatable.get("cpu", "0"))
    alloc_mem = to_bytes(o.status.allocatable.get("memory", "0"))
    totals = {"cpu_req": 0, "cpu_lim": 0, "mem_req": 0, "mem_lim": 0}
    rows = []

    def pct(value: int, total: int) -> str:
        return f"({value * 100 // total}%)" if total else "(0%)"

    for p in live:
        cr = sum(cpu_millis(c.resources.requests.get("cpu", "0")) for c in p.spec.containers)
        cl = sum(cpu_millis(c.resources.limits.get("cpu", "0")) for c in p.spec.containers)
        mr = sum(to_bytes(c.resources.requests.get("memory", "0")) for c in p.spec.containers)
        ml = sum(to_bytes(c.resources.limits.get("memory", "0")) for c in p.spec.containers)
        for key, value in (("cpu_req", cr), ("cpu_lim", cl), ("mem_req", mr), ("mem_lim", ml)):
            totals[key] += value
        rows.append(
            [
                p.metadata.namespace,
                p.metadata.name,
                f"{format_cpu_millis(cr)} {pct(cr, alloc_cpu)}",
                f"{format_cpu_millis(cl)} {pct(cl, alloc_cpu)}",
                f"{format_bytes(mr)} {pct(mr, alloc_mem)}",
                f"{format_bytes(ml)} {pct(ml, alloc_mem)}",
                age(p.metadata.creation_timestamp),
            ]
        )
    if rows:
        out.block(
            render_table(
                [
                    "Namespace",
                    "Name",
                    "CPU Requests",
                    "CPU Limits",
                    "Memory Requests",
                    "Memory Limits",
                    "Age",
                ],
                rows,
            ),
            2,
        )
    out.line("Allocated resources:")
    out.line("  (Total limits may be over 100 percent, i.e., overcommitted.)")
    out.block(
        render_table(
            ["Resource", "Requests", "Limits"],
            [
                [
                    "cpu",
                    f"{format_cpu_millis(totals['cpu_req'])} {pct(totals['cpu_req'], alloc_cpu)}",
                    f"{format_cpu_millis(totals['cpu_lim'])} {pct(totals['cpu_lim'], alloc_cpu)}",
                ],
                [
                    "memory",
                    f"{format_bytes(totals['mem_req'])} {pct(totals['mem_req'], alloc_mem)}",
                    f"{format_bytes(totals['mem_lim'])} {pct(totals['mem_lim'], alloc_mem)}",
                ],
            ],
        ),
        2,
    )


async def describe_configmap(session: Session, out: Out, o: Any) -> None:
    out.line("")
    out.line("Data")
    out.line("====")
    for k, v in sorted(o.data.items()):
        out.line(f"{k}:")
        out.line("----")
        out.line(v)
        out.line("")
    out.line("")
    out.line("BinaryData")
    out.line("====")
    for k, v in sorted(o.binary_data.items()):
        out.line(f"{k}: {len(v)} bytes")


async def describe_secret(session: Session, out: Out, o: Any) -> None:
    out.line("")
    out.kv("Type", o.type or "Opaque")
    out.line("")
    out.line("Data")
    out.line("====")
    for k, v in sorted(o.data.items()):
        out.line(f"{k}:  {len(v)} bytes")


async def describe_namespace(session: Session, out: Out, o: Any) -> None:
    out.kv("Status", o.status.phase or "Active")


async def describe_generic(session: Session, out: Out, o: Any) -> None:
    d = to_dict(o)
    d.pop("metadata", None)
    for key, value in d.items():
        out.line(f"{key[0].upper()}{key[1:]}:")
        out.block(dump_yaml(value), 2)


Describer = Callable[[Session, Out, Any], Awaitable[None]]
DESCRIBERS: dict[str, Describer] = {
    "Pod": describe_pod,
    "ReplicaSet": describe_replicaset,
    "StatefulSet": describe_statefulset,
    "DaemonSet": describe_daemonset,
    "Job": describe_job,
    "Deployment": describe_deployment,
    "Service": describe_service,
    "Node": describe_node,
    "ConfigMap": describe_configmap,
    "Secret": describe_secret,
    "Namespace": describe_namespace,
}


async def events_for(session: Session, kind: Kind, o: Any) -> list[Any]:
    sel = f"involvedObject.name={o.metadata.name},involvedObject.kind={kind.kind}"
    ns = o.metadata.namespace if kind.namespaced else ""
    if ns:
        sel += f",involvedObject.namespace={ns}"
    items, _ = await session.client.resource(by_kind("Event")).list_all(ns, field_selector=sel)
    uid = o.metadata.uid
    evs = [e for e in items if not e.involved_object.uid or e.involved_object.uid == uid]
    evs.sort(
        key=lambda e: (
            e.last_timestamp.seconds
            or e.event_time.seconds
            or e.metadata.creation_timestamp.seconds
        )
    )
    return evs


def _events(out: Out, events: list[Any]) -> None:
    if not events:
        out.kv("Events", NONE)
        return
    out.line("Events:")
    rows = []
    for e in events:
        when = event_age(e)
        if e.count > 1:
            when = f"{when} (x{e.count})"
        source = e.source.component or e.reporting_component
        if e.source.host:
            source = f"{source}, {e.source.host}"
        rows.append([e.type, e.reason, when, source, e.message.strip()])
    out.block(render_table(["Type", "Reason", "Age", "From", "Message"], rows), 2)


async def describe_object(session: Session, kind: Kind, o: Any, show_events: bool) -> str:
    out = Out()
    _header(out, kind, o)
    await DESCRIBERS.get(kind.kind, describe_generic)(session, out, o)
    if show_events:
        _events(out, await events_for(session, kind, o))
    return out.text()


async def run_describe(session: Session, args: argparse.Namespace) -> int:
    targets = parse_targets(args.resources)
    if not targets:
        raise CliError("you must specify the type of resource to describe")
    texts: list[str] = []
    for t in targets:
        rc = session.resource(t.kind)
        objs: list[Any] = []
        if t.names:
            for name in t.names:
                try:
                    objs.append(await rc.get(name, session.namespace))
                except NotFoundError:
                    # kubectl describe treats a name as a prefix when no exact match exists.
                    items, _ = await rc.list_all(session.namespace)
                    matches = [o for o in items if o.metadata.name.startswith(name)]
                    if not matches:
                        session.fail(
                            f'Error from server (NotFound): {t.kind.resource} "{name}" not found'
                        )
                    objs.extend(matches)
                except ApiError as e:
                    session.fail_api(e)
        else:
            items, _ = await rc.list_all(session.list_namespace(), label_selector=args.selector)
            objs = sorted(items, key=lambda o: (o.metadata.namespace, o.metadata.name))
        for o in objs:
            texts.append(await describe_object(session, t.kind, o, args.show_events))
    if not texts and session.exit_code == 0:
        print(f"No resources found in {session.namespace} namespace.", file=sys.stderr)
    sys.stdout.write("\n\n".join(texts))
    sys.stdout.flush()
    return session.exit_code
