"""`run` and `expose`: objects generated from a few flags.

run follows the generators the book's kubectl had: restart policy Always (default) makes a
Deployment labelled run=NAME, OnFailure a Job, Never a bare Pod. expose builds a Service
from an object's selector and container ports.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from google.protobuf.message import Message

from capstan.api.apps.v1 import apps_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError, NotFoundError
from capstan.cli.common import CliError, Session, parse_targets, qualified_name
from capstan.cli.printers import format_objects
from capstan.machinery.intstr import make_int_or_str
from capstan.machinery.kinds import Kind, by_kind
from capstan.machinery.labels import SelectorError, parse_labels, selector_from_proto


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "run",
        parents=parents,
        help="run an image as a Deployment, Job or Pod",
        description="Run an image: a Deployment (--restart=Always, default), a "
        "Job (--restart=OnFailure) or a Pod (--restart=Never). Arguments after "
        "-- are the container's args (or command with --command).",
    )
    p.add_argument("name")
    p.add_argument("--image", required=True)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("-l", "--labels", default="", help="k=v,... (default run=NAME)")
    p.add_argument("--port", type=int, help="the container port to expose")
    p.add_argument("--expose", action="store_true", help="also create a ClusterIP Service")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--restart", default="Always", choices=["Always", "OnFailure", "Never"])
    p.add_argument("--command", action="store_true", help="the args are the command")
    p.add_argument("--image-pull-policy", default="")
    p.add_argument("--requests", default="", help="cpu=100m,memory=256Mi")
    p.add_argument("--limits", default="", help="cpu=200m,memory=512Mi")
    p.add_argument(
        "-i",
        "--stdin",
        action="store_true",
        help="wait for the pod and stream its logs (Job or Pod)",
    )
    p.add_argument("-t", "--tty", action="store_true", help="allocate a TTY (with -i)")
    p.add_argument("--rm", action="store_true", help="delete what was created when -i ends")
    p.add_argument(
        "--dry-run", nargs="?", const="client", default="none", choices=["none", "client", "server"]
    )
    p.add_argument("-o", "--output", help="yaml, json or name")
    p.set_defaults(handler=run_run)

    e = sub.add_parser(
        "expose",
        parents=parents,
        help="create a Service for an object",
        description="Create a Service selecting the pods of a Deployment, "
        "ReplicaSet, pod or Service, on --port (default: the container ports).",
    )
    e.add_argument("resources", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    e.add_argument("--port", type=int, help="the Service port")
    e.add_argument("--target-port", default="", help="container port number or name")
    e.add_argument("--name", default="", help="the Service's name (default: the object's)")
    e.add_argument("--type", default="ClusterIP", choices=["ClusterIP", "NodePort", "LoadBalancer"])
    e.add_argument("--protocol", default="TCP", choices=["TCP", "UDP", "SCTP"])
    e.add_argument("--selector", default="", help="k=v,... (default: the object's selector)")
    e.add_argument("--cluster-ip", default="")
    e.add_argument("-l", "--labels", default="", help="labels for the Service")
    e.add_argument(
        "--dry-run", nargs="?", const="client", default="none", choices=["none", "client", "server"]
    )
    e.add_argument("-o", "--output", help="yaml, json or name")
    e.set_defaults(handler=run_expose)


def _key_values(text: str, what: str) -> dict[str, str]:
    try:
        return parse_labels(text) if text else {}
    except (SelectorError, ValueError) as e:
        raise CliError(f"invalid {what} {text!r}: {e}") from e


def build_container(args: argparse.Namespace) -> core_pb2.Container:
    c = core_pb2.Container(name=args.name, image=args.image)
    cmd = list(args.dash_args)
    if args.command:
        c.command.extend(cmd)
    else:
        c.args.extend(cmd)
    if args.port:
        c.ports.add(container_port=args.port)
    for env in args.env:
        k, sep, v = env.partition("=")
        if not sep:
            raise CliError(f'invalid --env "{env}": expected KEY=VALUE')
        c.env.add(name=k, value=v)
    if args.image_pull_policy:
        c.image_pull_policy = args.image_pull_policy
    c.resources.requests.update(_key_values(args.requests, "--requests"))
    c.resources.limits.update(_key_values(args.limits, "--limits"))
    if args.stdin:
        c.stdin = True
        c.stdin_once = True
        c.tty = args.tty
    return c


def build_run_object(args: argparse.Namespace, namespace: str) -> tuple[Kind, Message]:
    labels = _key_values(args.labels, "--labels") or {"run": args.name}
    container = build_container(args)
    if args.restart == "Never":
        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = args.name, namespace
        pod.metadata.labels.update(labels)
        pod.spec.containers.append(container)
        pod.spec.restart_policy = "Never"
        return by_kind("Pod"), pod
    if args.restart == "OnFailure":
        job = batch_pb2.Job()
        job.metadata.name, job.metadata.namespace = args.name, namespace
        job.metadata.labels.update(labels)
        job.spec.template.metadata.labels.update(labels)
        job.spec.template.spec.containers.append(container)
        job.spec.template.spec.restart_policy = "OnFailure"
        return by_kind("Job"), job
    dep = apps_pb2.Deployment()
    dep.metadata.name, dep.metadata.namespace = args.name, namespace
    dep.metadata.labels.update(labels)
    dep.spec.replicas = args.replicas
    dep.spec.selector.match_labels.update(labels)
    dep.spec.template.metadata.labels.update(labels)
    dep.spec.template.spec.containers.append(container)
    return by_kind("Deployment"), dep


def _print(session: Session, kind: Kind, obj: Any, verb: str) -> None:
    fmt = session.args.output
    if fmt:
        try:
            sys.stdout.write(format_objects([(kind, obj)], fmt, True))
        except ValueError as e:
            raise CliError(str(e)) from e
        return
    dry = " (dry run)" if session.args.dry_run != "none" else ""
    print(f"{qualified_name(kind, obj.metadata.name)} {verb}{dry}", flush=True)


async def _wait_for_pod(session: Session, namespace: str, selector: str, name: str) -> Any:
    """The pod the run created, once it has started (or finished)."""
    pods = session.client.resource("Pod")
    while True:
        if name:
            try:
                found = [await pods.get(name, namespace)]
            except NotFoundError:
                found = []
        else:
            found, _ = await pods.list_all(namespace, label_selector=selector)
        for p in found:
            if p.status.phase in ("Running", "Succeeded", "Failed"):
                return p
        await asyncio.sleep(0.5)


async def run_run(session: Session, args: argparse.Namespace) -> int:
    if args.rm and not args.stdin:
        raise CliError("--rm should only be used for attached containers (with -i)")
    namespace = (
        session.namespace
        if args.dry_run != "client"
        else (getattr(args, "namespace", None) or "default")
    )
    kind, obj = build_run_object(args, namespace)
    if args.dry_run == "client":
        _print(session, kind, obj, "created")
        return 0
    created: Any = await session.resource(kind).create(obj)
    if not args.stdin:
        _print(session, kind, created, "created")
    if args.expose:
        if not args.port:
            raise CliError("--port must be given with --expose")
        svc = _service(
            args.name,
            namespace,
            dict(created.metadata.labels),
            args.port,
            "",
            "ClusterIP",
            "TCP",
            {},
        )
        _print(
            session,
            by_kind("Service"),
            await session.resource(by_kind("Service")).create(svc),
            "created",
        )
    if not args.stdin:
        return 0
    from capstan.cli.streams import stream_logs

    try:
        if kind.kind == "Pod":
            pod = await _wait_for_pod(session, namespace, "", args.name)
        else:
            selector = (
                str(selector_from_proto(created.spec.selector))
                if kind.kind != "Job"
                else (f"job-name={args.name}")
            )
            pod = await _wait_for_pod(session, namespace, selector, "")
        await stream_logs(session, pod.metadata.name, namespace, "", follow=True)
    finally:
        if args.rm:
            await session.resource(kind).delete(
                args.name, namespace, propagation_policy="Background"
            )
            print(f'{kind.singular} "{args.name}" deleted', file=sys.stderr)
    return 0


def _service(
    name: str,
    namespace: str,
    selector: dict[str, str],
    port: int,
    target: str,
    type_: str,
    protocol: str,
    labels: dict[str, str],
) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, namespace
    svc.metadata.labels.update(labels or selector)
    svc.spec.selector.update(selector)
    svc.spec.type = type_
    sp = svc.spec.ports.add(port=port, protocol=protocol)
    if target:
        sp.target_port.CopyFrom(make_int_or_str(int(target) if target.isdigit() else target))
    else:
        sp.target_port.CopyFrom(make_int_or_str(port))
    return svc


def _selector_and_ports(kind: Kind, o: Any) -> tuple[dict[str, str], list[tuple[int, str]]]:
    if kind.kind == "Service":
        return dict(o.spec.selector), [(p.port, p.protocol or "TCP") for p in o.spec.ports]
    if kind.kind == "Pod":
        spec, selector = o.spec, dict(o.metadata.labels)
    elif kind.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        sel = o.spec.selector
        if sel.match_expressions:
            raise CliError(
                f"couldn't retrieve selectors via --selector flag or introspection: the "
                f"{kind.kind} selector has match expressions, which a Service cannot express"
            )
        spec, selector = o.spec.template.spec, dict(sel.match_labels)
    else:
        raise CliError(f"cannot expose a {kind.kind}")
    ports = [(p.container_port, p.protocol or "TCP") for c in spec.containers for p in c.ports]
    return selector, ports


async def run_expose(session: Session, args: argparse.Namespace) -> int:
    targets = parse_targets(args.resources)
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("expose needs exactly one object: TYPE NAME or TYPE/NAME")
    kind, name = targets[0].kind, targets[0].names[0]
    try:
        obj: Any = await session.resource(kind).get(name, session.namespace)
    except ApiError as e:
        session.fail_api(e)
        return 1
    selector, ports = _selector_and_ports(kind, obj)
    if args.selector:
        selector = _key_values(args.selector, "--selector")
    if not selector:
        raise CliError(f"couldn't find a selector for {kind.singular} {name}")
    if args.port:
        ports = [(args.port, args.protocol)]
    if not ports:
        raise CliError(f"couldn't find a port via --port flag or introspection of {name}")
    port, protocol = ports[0]
    svc = _service(
        args.name or name,
        session.namespace,
        selector,
        port,
        args.target_port,
        args.type,
        protocol,
        _key_values(args.labels, "--labels"),
    )
    for extra_port, extra_proto in ports[1:]:
        sp = svc.spec.ports.add(port=extra_port, protocol=extra_proto)
        sp.target_port.CopyFrom(make_int_or_str(extra_port))
    if len(svc.spec.ports) > 1:
        for i, sp in enumerate(svc.spec.ports):
            sp.name = f"port-{i + 1}"
    service_kind = by_kind("Service")
    if args.dry_run == "client":
        _print(session, service_kind, svc, "exposed")
        return 0
    try:
        created = await session.resource(service_kind).create(svc)
    except ApiError as e:
        session.fail_api(e)
        return 1
    _print(session, service_kind, created, "exposed")
    return 0
