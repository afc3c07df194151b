"""`label` and `annotate`: add (`k=v`), overwrite (`--overwrite`) or remove (`k-`) keys on
any object, by name, selector or --all; read-modify-write with a retry on conflict."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from capstan.apierrors import ApiError, ConflictError
from capstan.cli.common import CliError, Session, parse_targets, qualified_name
from capstan.machinery.kinds import Kind

RETRIES = 5


@dataclass(frozen=True)
class Changes:
    set: dict[str, str]
    remove: list[str]


def split_args(args: Sequence[str]) -> tuple[list[str], Changes]:
    """Trailing `k=v` and `k-` arguments are the changes; the rest name objects."""
    resources = list(args)
    sets: dict[str, str] = {}
    removes: list[str] = []
    changes: list[str] = []
    while resources and (
        "=" in resources[-1]
        or (resources[-1].endswith("-") and len(resources) > 1 and "/" not in resources[-1])
    ):
        changes.insert(0, resources.pop())
    for c in changes:
        if "=" in c:
            k, _, v = c.partition("=")
            if not k:
                raise CliError(f'invalid change "{c}": missing key')
            if k in sets:
                raise CliError(f'"{k}" is given more than once')
            sets[k] = v
        else:
            removes.append(c[:-1])
    overlap = set(sets) & set(removes)
    if overlap:
        raise CliError(f"can not both modify and remove the key(s): {', '.join(sorted(overlap))}")
    return resources, Changes(sets, removes)


def apply_changes(current: dict[str, str], changes: Changes, overwrite: bool) -> dict[str, str]:
    out = dict(current)
    for k, v in changes.set.items():
        if k in out and out[k] != v and not overwrite:
            raise CliError(f"'{k}' already has a value ({out[k]}), and --overwrite is false")
        out[k] = v
    for k in changes.remove:
        out.pop(k, None)
    return out


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    for verb, noun in (("label", "labels"), ("annotate", "annotations")):
        p = sub.add_parser(
            verb,
            parents=parents,
            help=f"add, change or remove {noun}",
            description=f"Update {noun}: `{verb} pods web k=v`, `{verb} pods "
            f"web k=v2 --overwrite`, `{verb} pods web k-`.",
        )
        p.add_argument("args", nargs="+", metavar="TYPE NAME... KEY=VAL|KEY-")
        p.add_argument("--overwrite", action="store_true", help="replace existing values")
        p.add_argument("-l", "--selector", default="", help="change the matching objects")
        p.add_argument("--all", action="store_true", help="change every object of the kind")
        p.add_argument("-A", "--all-namespaces", action="store_true")
        p.add_argument(
            "--resource-version", default="", help="only if the object is still at this version"
        )
        p.add_argument("--list", action="store_true", help=f"print the {noun}")
        p.set_defaults(handler=run_label, field=noun, verb=verb)


async def _change_one(
    session: Session, kind: Kind, name: str, namespace: str, changes: Changes
) -> None:
    args = session.args
    rc = session.resource(kind)
    for attempt in range(RETRIES):
        obj: Any = await rc.get(name, namespace)
        field = getattr(obj.metadata, args.field)
        if args.list:
            for k, v in sorted(field.items()):
                print(f"{k}={v}")
            return
        if args.resource_version and obj.metadata.resource_version != args.resource_version:
            raise ConflictError(
                f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again"
            )
        what = qualified_name(kind, name)
        # kubectl's wording: "unlabeled" when a label command only removes.
        if args.verb == "annotate":
            past = "annotated"
        else:
            past = "labeled" if changes.set or not changes.remove else "unlabeled"
        new = apply_changes(dict(field), changes, args.overwrite)
        if new == dict(field):
            print(f"{what} not {past}", flush=True)
            return
        field.clear()
        field.update(new)
        try:
            await rc.update(obj)
        except ConflictError:
            if args.resource_version or attempt == RETRIES - 1:
                raise
            continue
        print(f"{what} {past}", flush=True)
        return


async def run_label(session: Session, args: argparse.Namespace) -> int:
    resources, changes = split_args(args.args)
    if not changes.set and not changes.remove and not args.list:
        raise CliError(f"at least one {args.field[:-1]} update is required")
    targets = parse_targets(resources)
    if not targets:
        raise CliError("you must provide one or more resources")
    for t in targets:
        if t.names:
            objects = [(name, session.namespace) for name in t.names]
        elif args.selector or args.all:
            items, _ = await session.resource(t.kind).list_all(
                session.list_namespace(), label_selector=args.selector
            )
            objects = [(o.metadata.name, o.metadata.namespace) for o in items]
        else:
            raise CliError(f"give {t.kind.singular} names, -l SELECTOR or --all")
        for name, ns in objects:
            try:
                await _change_one(session, t.kind, name, ns, changes)
            except ApiError as e:
                session.fail_api(e)
            except CliError as e:
                session.fail(str(e))
    return session.exit_code
