"""`cordon`, `uncordon` and `drain`: take a node out of scheduling and move its pods off
through the Eviction subresource, so pods get their grace period and the controllers
recreate them elsewhere."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError, ConflictError, NotFoundError, TooManyRequestsError
from capstan.cli.common import CliError, Session
from capstan.machinery.kinds import by_kind

MIRROR_POD = "kubernetes.io/config.mirror"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    for verb, text in (
        ("cordon", "mark nodes unschedulable"),
        ("uncordon", "mark nodes schedulable"),
    ):
        p = sub.add_parser(verb, parents=parents, help=text, description=text.capitalize() + ".")
        p.add_argument("nodes", nargs="*", metavar="NODE")
        p.add_argument("-l", "--selector", default="")
        p.add_argument(
            "--dry-run",
            nargs="?",
            const="client",
            default="none",
            choices=["none", "client", "server"],
        )
        p.set_defaults(handler=run_cordon, unschedulable=verb == "cordon")

    d = sub.add_parser(
        "drain",
        parents=parents,
        help="cordon a node and evict its pods",
        description="Cordon a node, then evict its pods. Pods not managed by a "
        "controller need --force; DaemonSet pods need --ignore-daemonsets.",
    )
    d.add_argument("nodes", nargs="*", metavar="NODE")
    d.add_argument("-l", "--selector", default="")
    d.add_argument("--force", action="store_true", help="also delete unmanaged pods")
    d.add_argument("--ignore-daemonsets", action="store_true", help="leave DaemonSet pods in place")
    d.add_argument(
        "--delete-emptydir-data",
        "--delete-local-data",
        action="store_true",
        dest="delete_emptydir_data",
        help="also evict pods using emptyDir volumes",
    )
    d.add_argument(
        "--grace-period",
        type=int,
        default=-1,
        help="seconds for each pod to stop (-1: the pod's own)",
    )
    d.add_argument("--timeout", type=float, default=0, help="give up after this (0: never)")
    d.add_argument("--pod-selector", default="", help="only pods matching this")
    d.add_argument(
        "--disable-eviction", action="store_true", help="delete pods instead of evicting them"
    )
    d.add_argument(
        "--dry-run", nargs="?", const="client", default="none", choices=["none", "client", "server"]
    )
    d.set_defaults(handler=run_drain)


async def _node_names(session: Session, args: argparse.Namespace) -> list[str]:
    if args.nodes:
        return list(args.nodes)
    if args.selector:
        items, _ = await session.client.resource("Node").list_all(label_selector=args.selector)
        return [n.metadata.name for n in items]
    raise CliError("give node names or -l SELECTOR")


async def set_unschedulable(session: Session, name: str, unschedulable: bool, dry: bool) -> None:
    rc = session.resource(by_kind("Node"))
    verb = "cordoned" if unschedulable else "uncordoned"
    for _ in range(5):
        node: Any = await rc.get(name)
        if node.spec.unschedulable == unschedulable:
            print(f"node/{name} already {verb}", flush=True)
            return
        node.spec.unschedulable = unschedulable
        if dry:
            print(f"node/{name} {verb} (dry run)", flush=True)
            return
        try:
            await rc.update(node)
        except ConflictError:
            continue
        print(f"node/{name} {verb}", flush=True)
        return
    raise CliError(f"node/{name}: gave up after repeated conflicts")


async def run_cordon(session: Session, args: argparse.Namespace) -> int:
    for name in await _node_names(session, args):
        try:
            await set_unschedulable(session, name, args.unschedulable, args.dry_run != "none")
        except ApiError as e:
            session.fail_api(e)
    return session.exit_code


def _controller(pod: Any) -> Any:
    return next((r for r in pod.metadata.owner_references if r.controller), None)


def classify(pods: list[Any], args: argparse.Namespace) -> tuple[list[Any], list[str], list[str]]:
    """(pods to evict, warnings, errors) by kubectl's drain filters."""
    evict, warnings, errors = [], [], []
    for p in pods:
        ref = f"{p.metadata.namespace}/{p.metadata.name}"
        if p.status.phase in ("Succeeded", "Failed"):
            evict.append(p)
            continue
        if MIRROR_POD in p.metadata.annotations:
            continue
        owner = _controller(p)
        if owner is not None and owner.kind == "DaemonSet":
            if args.ignore_daemonsets:
                warnings.append(f"ignoring DaemonSet-managed Pods: {ref}")
            else:
                errors.append(
                    f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets "
                    f"to ignore): {ref}"
                )
            continue
        if owner is None:
            if not args.force:
                errors.append(
                    "cannot delete Pods that declare no controller (use --force to "
                    f"override): {ref}"
                )
                continue
            warnings.append(f"deleting Pods that declare no controller: {ref}")
        local = any(v.HasField("empty_dir") for v in p.spec.volumes)
        if local and not args.delete_emptydir_data:
            errors.append(
                "cannot delete Pods with local storage (use --delete-emptydir-data"
                f" to override): {ref}"
            )
            continue
        evict.append(p)
    return evict, warnings, errors


async def _evict(
    session: Session, pod: Any, args: argparse.Namespace, deadline: float | None
) -> None:
    rc = session.client.resource("Pod")
    name, ns = pod.metadata.name, pod.metadata.namespace
    grace = args.grace_period if args.grace_period >= 0 else None
    loop = asyncio.get_running_loop()
    while True:
        try:
            if args.disable_eviction:
                await rc.delete(name, ns, grace_period_seconds=grace)
            else:
                ev = core_pb2.Eviction()
                ev.metadata.name, ev.metadata.namespace = name, ns
                if grace is not None:
                    ev.delete_options.grace_period_seconds = grace
                await rc.evict(ev)
            print(f"evicting pod {ns}/{name}", flush=True)
            break
        except NotFoundError:
            return
        except TooManyRequestsError as e:
            # A disruption budget refuses for now: retry, as kubectl does.
            print(
                f'error when evicting pods/"{name}" -n "{ns}" (will retry after 5s): {e.message}',
                flush=True,
            )
            if deadline is not None and loop.time() > deadline:
                raise
            await asyncio.sleep(5)
    while True:
        try:
            current: Any = await rc.get(name, ns)
            if current.metadata.uid != pod.metadata.uid:
                break
        except NotFoundError:
            break
        if deadline is not None and loop.time() > deadline:
            raise CliError(f"drain did not complete within the timeout: pod {ns}/{name} remains")
        await asyncio.sleep(1)
    print(f"pod/{name} evicted", flush=True)


async def run_drain(session: Session, args: argparse.Namespace) -> int:
    dry = args.dry_run != "none"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else None
    for name in await _node_names(session, args):
        try:
            await set_unschedulable(session, name, True, dry)
            pods, _ = await session.client.resource("Pod").list_all(
                "", label_selector=args.pod_selector, field_selector=f"spec.nodeName={name}"
            )
            evict, warnings, errors = classify(list(pods), args)
            if errors:
                session.fail(
                    'unable to drain node "'
                    + name
                    + '" due to error: '
                    + ", ".join(errors)
                    + ", continuing command..."
                )
                continue
            for w in warnings:
                print(f"Warning: {w}", flush=True)
            if dry:
                for p in evict:
                    print(f"evicting pod {p.metadata.namespace}/{p.metadata.name} (dry run)")
                print(f"node/{name} drained (dry run)", flush=True)
                continue
            await asyncio.gather(*(_evict(session, p, args, deadline) for p in evict))
            print(f"node/{name} drained", flush=True)
        except ApiError as e:
            session.fail_api(e)
        except CliError as e:
            session.fail(str(e))
    return session.exit_code
