"""`delete`: by manifest file, by name, by label selector or --all; cascading by default
(background), --cascade=orphan leaves the owned objects, --grace-period/--now/--force for
pods. No confirmation prompt, as in kubectl."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from capstan.apierrors import ApiError, NotFoundError
from capstan.cli.common import (
    CliError,
    Session,
    load_manifests,
    meta_of,
    object_namespace,
    parse_targets,
    qualified_name,
)
from capstan.machinery.kinds import Kind

CASCADE = {
    "background": "Background",
    "true": "Background",
    "foreground": "Foreground",
    "orphan": "Orphan",
    "false": "Orphan",
}


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "delete",
        parents=parents,
        help="delete objects",
        description="Delete objects by file, by name (`delete pod a`, "
        "`delete pods/a svc/b`), by label selector or all of a kind.",
    )
    p.add_argument("resources", nargs="*", metavar="TYPE[,TYPE...] [NAME...]")
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="delete the objects in these manifests",
    )
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("-l", "--selector", default="", help="delete the objects matching this")
    p.add_argument("--field-selector", default="")
    p.add_argument("--all", action="store_true", help="delete every object of the kinds")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument(
        "--cascade",
        default="background",
        type=str.lower,
        choices=sorted(CASCADE),
        help="background (default), foreground, or orphan to keep owned objects",
    )
    p.add_argument(
        "--grace-period",
        type=int,
        default=-1,
        help="seconds to let pods stop (-1: the object's own; 0 with --force: now)",
    )
    p.add_argument("--now", action="store_true", help="grace period 1 s")
    p.add_argument("--force", action="store_true", help="with --grace-period=0: immediately")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="wait until the objects are gone",
    )
    p.add_argument("-o", "--output", choices=["name"], help="name: print kind/name only")
    p.set_defaults(handler=run_delete)


def _grace(args: argparse.Namespace) -> int | None:
    if args.now:
        return 1
    if args.grace_period >= 0:
        if args.grace_period == 0 and not args.force:
            return 1  # kubectl: --grace-period=0 without --force means 1
        return int(args.grace_period)
    if args.force:
        return 0
    return None


async def delete_one(session: Session, kind: Kind, name: str, namespace: str) -> None:
    args = session.args
    rc = session.resource(kind)
    try:
        deleted: Any = await rc.delete(
            name,
            namespace,
            grace_period_seconds=_grace(args),
            propagation_policy=CASCADE[args.cascade],
        )
    except NotFoundError as e:
        if not args.ignore_not_found:
            session.fail_api(e)
        return
    except ApiError as e:
        session.fail_api(e)
        return
    if args.output == "name":
        print(qualified_name(kind, name), flush=True)
    else:
        print(f'{kind.singular} "{name}" deleted', flush=True)
    if args.wait:
        await _wait_gone(session, kind, name, namespace, deleted.metadata.uid)


async def _wait_gone(session: Session, kind: Kind, name: str, namespace: str, uid: str) -> None:
    """Until the deleted object is gone: a controller may already have made a new one of the
    same name (a StatefulSet's pod), which is another object, told apart by its uid."""
    rc = session.resource(kind)
    while True:
        try:
            obj: Any = await rc.get(name, namespace)
        except NotFoundError:
            return
        if obj.metadata.uid != uid:
            return
        await asyncio.sleep(0.5)


async def run_delete(session: Session, args: argparse.Namespace) -> int:
    if args.filename:
        if args.resources:
            raise CliError("do not name objects together with -f")
        for mo in load_manifests(args.filename, args.recursive):
            ns = object_namespace(session, mo.kind, mo.message)
            await delete_one(session, mo.kind, meta_of(mo.message).name, ns)
        return session.exit_code
    targets = parse_targets(args.resources)
    if not targets:
        raise CliError("you must provide one or more resources by argument or filename")
    for t in targets:
        if t.names:
            if args.selector or args.all:
                raise CliError("name cannot be provided when a selector or --all is specified")
            for name in t.names:
                await delete_one(session, t.kind, name, session.namespace)
            continue
        if not (args.selector or args.field_selector or args.all):
            raise CliError(
                f"resource(s) were provided, but no name was specified: give a name, "
                f"-l SELECTOR or --all to delete {t.kind.plural}"
            )
        items, _ = await session.resource(t.kind).list_all(
            session.list_namespace(),
            label_selector=args.selector,
            field_selector=args.field_selector,
        )
        if not items and not args.ignore_not_found and len(targets) == 1:
            where = f" in {session.namespace} namespace" if session.list_namespace() else ""
            print(f"No resources found{where}.", flush=True)
        for obj in items:
            o: Any = obj
            await delete_one(session, t.kind, o.metadata.name, o.metadata.namespace)
    return session.exit_code
