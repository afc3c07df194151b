"""`scale`, `autoscale` and `rollout` (status, history, undo, pause, resume, restart).

Rollout history is read the way kubectl reads it: a Deployment's revisions are its
ReplicaSets' deployment.kubernetes.io/revision annotations; a DaemonSet's or StatefulSet's
are its ControllerRevisions. Undo copies the chosen revision's pod template back into the
owner, and the controllers roll forward to it under a new revision number.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

from google.protobuf import json_format

from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.apierrors import ApiError, ConflictError
from capstan.cli.common import (
    CliError,
    Session,
    duration_seconds,
    load_manifests,
    meta_of,
    parse_targets,
)
from capstan.cli.common import qualified_name as qname
from capstan.machinery.kinds import Kind, by_kind
from capstan.machinery.manifests import dump_yaml, to_dict

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
TEMPLATE_HASH = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ROLLOUT_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    s = sub.add_parser(
        "scale",
        parents=parents,
        help="set the replicas of a workload",
        description="Set spec.replicas of Deployments, ReplicaSets, StatefulSets "
        "(`scale deployment web --replicas=3`, `scale --replicas=3 -f x.yaml`).",
    )
    s.add_argument("resources", nargs="*", metavar="TYPE NAME | TYPE/NAME")
    s.add_argument("--replicas", type=int, required=True)
    s.add_argument(
        "--current-replicas", type=int, default=-1, help="only if the current replicas are this"
    )
    s.add_argument("-f", "--filename", action="append", default=[])
    s.add_argument("-l", "--selector", default="")
    s.add_argument("--all", action="store_true")
    s.set_defaults(handler=run_scale)

    a = sub.add_parser(
        "autoscale",
        parents=parents,
        help="create a HorizontalPodAutoscaler",
        description="Create a HorizontalPodAutoscaler for a scalable object.",
    )
    a.add_argument("resources", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    a.add_argument("--min", type=int, default=-1, help="lower replica limit")
    a.add_argument("--max", type=int, required=True, help="upper replica limit")
    a.add_argument("--cpu-percent", type=int, default=-1, help="target average CPU use")
    a.add_argument("--name", default="")
    a.add_argument(
        "--dry-run", nargs="?", const="client", default="none", choices=["none", "client", "server"]
    )
    a.add_argument("-o", "--output", help="yaml, json or name")
    a.set_defaults(handler=run_autoscale)

    r = sub.add_parser(
        "rollout",
        parents=parents,
        help="manage rollouts",
        description="Manage the rollout of Deployments, DaemonSets, StatefulSets.",
    )
    verbs = r.add_subparsers(dest="rollout_verb", metavar="SUBCOMMAND", required=True)
    for verb, text in (
        ("status", "wait until the rollout finishes"),
        ("history", "list revisions"),
        ("undo", "go back to an earlier revision"),
        ("pause", "stop rolling out template changes"),
        ("resume", "continue a paused rollout"),
        ("restart", "replace every pod"),
    ):
        v = verbs.add_parser(verb, parents=parents, help=text, description=text)
        v.add_argument("resources", nargs="+", metavar="TYPE NAME | TYPE/NAME")
        if verb == "status":
            v.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True)
            v.add_argument(
                "--timeout", type=duration_seconds, default=0,
                help="how long to wait: 90s, 5m, 1h, or plain seconds (0: no limit)",
            )  # fmt: skip
            v.add_argument("--revision", type=int, default=0)
        if verb in ("history", "undo"):
            v.add_argument(
                "--revision" if verb == "history" else "--to-revision",
                type=int,
                default=0,
                dest="revision",
            )
        v.set_defaults(handler=run_rollout)


# --- scale ---------------------------------------------------------------------------


async def scale_one(session: Session, kind: Kind, name: str, namespace: str) -> None:
    args = session.args
    rc = session.resource(kind)
    for _ in range(5):
        scale = await rc.get_scale(name, namespace)
        if args.current_replicas >= 0 and scale.spec.replicas != args.current_replicas:
            raise CliError(
                f"expected replicas to be {args.current_replicas}, was {scale.spec.replicas}"
            )
        scale.spec.replicas = args.replicas
        try:
            await rc.update_scale(scale)
        except ConflictError:
            continue
        print(f"{qname(kind, name)} scaled", flush=True)
        return
    raise CliError(f"{qname(kind, name)}: gave up after repeated conflicts")


async def run_scale(session: Session, args: argparse.Namespace) -> int:
    if args.replicas < 0:
        raise CliError("the --replicas=COUNT flag must be 0 or more")
    objects: list[tuple[Kind, str, str]] = []
    if args.filename:
        for mo in load_manifests(args.filename):
            meta = meta_of(mo.message)
            objects.append((mo.kind, meta.name, meta.namespace or session.namespace))
    for t in parse_targets(args.resources):
        if t.names:
            objects += [(t.kind, n, session.namespace) for n in t.names]
        elif args.selector or args.all:
            items, _ = await session.resource(t.kind).list_all(
                session.namespace, label_selector=args.selector
            )
            objects += [(t.kind, o.metadata.name, o.metadata.namespace) for o in items]
        else:
            raise CliError(f"give {t.kind.singular} names, -l SELECTOR or --all")
    if not objects:
        raise CliError("you must specify the objects to scale")
    for kind, name, ns in objects:
        if "Scale" not in kind.subresources:
            session.fail(f"{kind.plural} cannot be scaled")
            continue
        try:
            await scale_one(session, kind, name, ns)
        except ApiError as e:
            session.fail_api(e)
        except CliError as e:
            session.fail(str(e))
    return session.exit_code


# --- autoscale -------------------------------------------------------------------------


def _single(session: Session, resources: list[str]) -> tuple[Kind, str]:
    targets = parse_targets(resources)
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("give exactly one object: TYPE NAME or TYPE/NAME")
    return targets[0].kind, targets[0].names[0]


async def run_autoscale(session: Session, args: argparse.Namespace) -> int:
    kind, name = _single(session, args.resources)
    if "Scale" not in kind.subresources:
        raise CliError(f"cannot autoscale a {kind.kind}: it has no scale subresource")
    if args.max < 1 or (args.min >= 0 and args.min > args.max):
        raise CliError("--max must be at least 1 and at least --min")
    namespace = (
        session.namespace
        if args.dry_run != "client"
        else (getattr(args, "namespace", None) or "default")
    )
    if args.dry_run != "client":
        await session.resource(kind).get(name, namespace)
    hpa = autoscaling_pb2.HorizontalPodAutoscaler()
    hpa.metadata.name = args.name or name
    hpa.metadata.namespace = namespace
    ref = hpa.spec.scale_target_ref
    ref.api_version, ref.kind, ref.name = kind.api_version, kind.kind, name
    if args.min >= 0:
        hpa.spec.min_replicas = args.min
    hpa.spec.max_replicas = args.max
    if args.cpu_percent >= 0:
        hpa.spec.target_cpu_utilization_percentage = args.cpu_percent
    hpa_kind = by_kind("HorizontalPodAutoscaler")
    if args.output:
        from capstan.cli.printers import format_objects

        if args.dry_run == "client":
            sys.stdout.write(format_objects([(hpa_kind, hpa)], args.output, True))
            return 0
    created = hpa if args.dry_run == "client" else await session.resource(hpa_kind).create(hpa)
    if args.output:
        from capstan.cli.printers import format_objects

        sys.stdout.write(format_objects([(hpa_kind, created)], args.output, True))
    else:
        dry = " (dry run)" if args.dry_run == "client" else ""
        print(f"{qname(hpa_kind, hpa.metadata.name)} autoscaled{dry}", flush=True)
    return 0


# --- rollout ---------------------------------------------------------------------------


def _owned_by(items: list[Any], uid: str) -> list[Any]:
    return [
        o for o in items if any(r.uid == uid and r.controller for r in o.metadata.owner_references)
    ]


def _revision(rs: Any) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


async def revisions(session: Session, kind: Kind, obj: Any) -> list[tuple[int, str, Any]]:
    """(revision, change cause, pod template) in revision order."""
    ns = obj.metadata.namespace
    if kind.kind == "Deployment":
        rs_items, _ = await session.client.resource("ReplicaSet").list_all(ns)
        out = []
        for rs in _owned_by(list(rs_items), obj.metadata.uid):
            cause = rs.metadata.annotations.get(CHANGE_CAUSE) or (
                rs.spec.template.metadata.annotations.get(CHANGE_CAUSE, "")
            )
            out.append((_revision(rs), cause, rs.spec.template))
        return sorted(out, key=lambda r: r[0])
    crs, _ = await session.client.resource("ControllerRevision").list_all(ns)
    out = []
    for cr in _owned_by(list(crs), obj.metadata.uid):
        data = json_format.MessageToDict(cr.data)
        template_dict = data.get("spec", {}).get("template", {})
        template = type(obj.spec.template)()
        json_format.ParseDict(template_dict, template, ignore_unknown_fields=True)
        cause = cr.metadata.annotations.get(CHANGE_CAUSE, "")
        out.append((int(cr.revision), cause, template))
    return sorted(out, key=lambda r: r[0])


def rollout_status(kind: Kind, o: Any) -> tuple[bool, str]:
    """(done, message) the way kubectl's status viewers phrase it."""
    name = o.metadata.name
    s = o.status
    if kind.kind == "Deployment":
        desired = o.spec.replicas if o.spec.HasField("replicas") else 1
        if o.metadata.generation > s.observed_generation:
            return False, "Waiting for deployment spec update to be observed..."
        for c in s.conditions:
            if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
                raise CliError(f'deployment "{name}" exceeded its progress deadline')
        if s.updated_replicas < desired:
            return False, (
                f'Waiting for deployment "{name}" rollout to finish: '
                f"{s.updated_replicas} out of {desired} new replicas have been updated..."
            )
        if s.replicas > s.updated_replicas:
            return False, (
                f'Waiting for deployment "{name}" rollout to finish: '
                f"{s.replicas - s.updated_replicas} old replicas are pending termination..."
            )
        if s.available_replicas < s.updated_replicas:
            return False, (
                f'Waiting for deployment "{name}" rollout to finish: '
                f"{s.available_replicas} of {s.updated_replicas} updated replicas are available..."
            )
        return True, f'deployment "{name}" successfully rolled out'
    if kind.kind == "DaemonSet":
        if o.metadata.generation > s.observed_generation:
            return False, "Waiting for daemon set spec update to be observed..."
        if s.updated_number_scheduled < s.desired_number_scheduled:
            return False, (
                f'Waiting for daemon set "{name}" rollout to finish: '
                f"{s.updated_number_scheduled} out of {s.desired_number_scheduled} new "
                "pods have been updated..."
            )
        if s.number_available < s.desired_number_scheduled:
            return False, (
                f'Waiting for daemon set "{name}" rollout to finish: '
                f"{s.number_available} of {s.desired_number_scheduled} updated pods are "
                "available..."
            )
        return True, f'daemon set "{name}" successfully rolled out'
    desired = o.spec.replicas if o.spec.HasField("replicas") else 1
    if o.metadata.generation > s.observed_generation:
        return False, "Waiting for statefulset spec update to be observed..."
    if s.ready_replicas < desired:
        return False, f"Waiting for {desired - s.ready_replicas} pods to be ready..."
    if s.update_revision != s.current_revision:
        return False, (
            f"Waiting for partitioned roll out to finish: {s.updated_replicas} out of "
            f"{desired} new pods have been updated..."
        )
    return (
        True,
        f"statefulset rolling update complete {s.ready_replicas} pods at revision "
        f"{s.current_revision}...",
    )


async def _status(session: Session, kind: Kind, name: str) -> None:
    args = session.args
    rc = session.resource(kind)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else None
    last = ""
    while True:
        obj = await rc.get(name, session.namespace)
        done, message = rollout_status(kind, obj)
        if message != last:
            print(message, flush=True)
            last = message
        if done or not args.watch:
            return
        if deadline is not None and loop.time() > deadline:
            raise CliError("timed out waiting for the condition")
        await asyncio.sleep(1.0)


async def _history(session: Session, kind: Kind, obj: Any) -> None:
    revs = await revisions(session, kind, obj)
    args = session.args
    if args.revision:
        match = [r for r in revs if r[0] == args.revision]
        if not match:
            raise CliError(f"unable to find the specified revision {args.revision}")
        print(f"{qname(kind, obj.metadata.name)} with revision #{args.revision}")
        print("Pod Template:")
        sys.stdout.write(
            "".join(f"  {line}\n" for line in dump_yaml(to_dict(match[0][2])).splitlines())
        )
        return
    print(f"{qname(kind, obj.metadata.name)}")
    from capstan.cli.printers import render_table

    sys.stdout.write(
        render_table(
            ["REVISION", "CHANGE-CAUSE"], [[str(r), cause or "<none>"] for r, cause, _ in revs]
        )
    )


async def _undo(session: Session, kind: Kind, obj: Any) -> None:
    if kind.kind == "Deployment" and obj.spec.paused:
        raise CliError(
            f"you cannot rollback a paused deployment; resume it first with "
            f'"capstan rollout resume deployment/{obj.metadata.name}" and try again'
        )
    revs = await revisions(session, kind, obj)
    wanted = session.args.revision
    if wanted:
        match = [r for r in revs if r[0] == wanted]
        if not match:
            raise CliError(f"unable to find specified revision {wanted} in history")
        template = match[0][2]
    else:
        if len(revs) < 2:
            raise CliError("no rollout history found for the previous revision")
        template = revs[-2][2]
    new_template = type(template)()
    new_template.CopyFrom(template)
    new_template.metadata.labels.pop(TEMPLATE_HASH, None)
    if new_template == obj.spec.template:
        print(
            f"{qname(kind, obj.metadata.name)} skipped rollback (current template already "
            f"matches revision {wanted or revs[-2][0]})"
        )
        return
    obj.spec.template.CopyFrom(new_template)
    if kind.kind == "Deployment":
        await _copy_revision_annotations(session, obj, wanted or revs[-2][0])
    await session.resource(kind).update(obj)
    print(f"{qname(kind, obj.metadata.name)} rolled back", flush=True)


# Annotations a rollback does not carry from the ReplicaSet back to the Deployment
# (kubectl's annotationsToSkip).
_ROLLBACK_SKIP = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}


async def _copy_revision_annotations(session: Session, obj: Any, revision: int) -> None:
    """kubectl's rollback also restores the revision's annotations (its change-cause
    among them), which the controller then copies onto the ReplicaSet it reuses."""
    items, _ = await session.client.resource("ReplicaSet").list_all(obj.metadata.namespace)
    for rs in _owned_by(list(items), obj.metadata.uid):
        if _revision(rs) != revision:
            continue
        for key, value in rs.metadata.annotations.items():
            if key not in _ROLLBACK_SKIP:
                obj.metadata.annotations[key] = value
        return


async def _pause(session: Session, kind: Kind, obj: Any, paused: bool) -> None:
    if kind.kind != "Deployment":
        raise CliError(f"{kind.plural} do not support {'pause' if paused else 'resume'}")
    verb = "paused" if paused else "resumed"
    if bool(obj.spec.paused) == paused:
        state = "already paused" if paused else "not paused"
        print(f"{qname(kind, obj.metadata.name)} is {state}", flush=True)
        return
    obj.spec.paused = paused
    await session.resource(kind).update(obj)
    print(f"{qname(kind, obj.metadata.name)} {verb}", flush=True)


async def _restart(session: Session, kind: Kind, obj: Any) -> None:
    if kind.kind == "Deployment" and obj.spec.paused:
        raise CliError("can't restart paused deployment (run rollout resume first)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj.spec.template.metadata.annotations[RESTARTED_AT] = stamp
    await session.resource(kind).update(obj)
    print(f"{qname(kind, obj.metadata.name)} restarted", flush=True)


async def run_rollout(session: Session, args: argparse.Namespace) -> int:
    for t in parse_targets(args.resources):
        if t.kind.kind not in ROLLOUT_KINDS:
            session.fail(f'no rollout support for "{t.kind.plural}"')
            continue
        if not t.names:
            session.fail("give the object's name: TYPE NAME or TYPE/NAME")
            continue
        for name in t.names:
            try:
                if args.rollout_verb == "status":
                    await _status(session, t.kind, name)
                    continue
                obj = await session.resource(t.kind).get(name, session.namespace)
                if args.rollout_verb == "history":
                    await _history(session, t.kind, obj)
                elif args.rollout_verb == "undo":
                    await _undo(session, t.kind, obj)
                elif args.rollout_verb in ("pause", "resume"):
                    await _pause(session, t.kind, obj, args.rollout_verb == "pause")
                elif args.rollout_verb == "restart":
                    await _restart(session, t.kind, obj)
            except ApiError as e:
                session.fail_api(e)
            except CliError as e:
                session.fail(str(e))
    return session.exit_code
