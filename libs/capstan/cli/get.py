"""`get`: list or fetch objects of one or more kinds as a table, YAML, JSON, names or a
jsonpath template; `-w` keeps printing changes as they happen."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from google.protobuf.message import Message

from capstan.apierrors import ApiError, ExpiredError
from capstan.cli.common import CliError, Session, Target, parse_targets
from capstan.cli.printers import (
    TableOptions,
    check_output_format,
    format_objects,
    render_objects,
    render_table,
    table_headers,
    table_row,
)
from capstan.machinery.kinds import Kind
from capstan.machinery.manifests import dump_json, dump_yaml, to_dict


def add_selector_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-l",
        "--selector",
        default="",
        help="label selector: k=v, k!=v, 'k in (a,b)', 'k notin (a)', k, !k",
    )
    p.add_argument("--field-selector", default="", help="field selector: metadata.name=x, ...")


def add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="wide, yaml, json, name or jsonpath=TEMPLATE")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "get",
        parents=parents,
        help="display one or many objects",
        description="Display one or many objects: `get pods`, `get pods,svc`, `get pod web-1`, "
        "`get deploy/web svc/web`, `get all`.",
    )
    p.add_argument("resources", nargs="*", metavar="TYPE[.GROUP][,TYPE...] [NAME...]")
    add_selector_flags(p)
    add_output_flags(p)
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list across all namespaces")
    p.add_argument("--show-labels", action="store_true", help="add a LABELS column")
    p.add_argument(
        "-L",
        "--label-columns",
        action="append",
        default=[],
        metavar="KEY",
        help="add a column with this label's value (repeatable, comma-separated)",
    )
    p.add_argument("--no-headers", action="store_true", help="omit the table header")
    p.add_argument(
        "-w", "--watch", action="store_true", help="after listing, keep printing changes"
    )
    p.add_argument("--watch-only", action="store_true", help="print changes only, no listing")
    p.set_defaults(handler=run_get)


def table_options(args: argparse.Namespace, show_kind: bool) -> TableOptions:
    label_columns = [c for spec in args.label_columns for c in spec.split(",") if c]
    return TableOptions(
        wide=args.output == "wide",
        show_kind=show_kind,
        all_namespaces=args.all_namespaces,
        show_labels=args.show_labels,
        label_columns=label_columns,
        no_headers=args.no_headers,
    )


async def fetch(session: Session, target: Target, args: argparse.Namespace) -> list[Message]:
    """The objects a target names, or all that match the selectors."""
    rc = session.resource(target.kind)
    if target.names:
        found: list[Message] = []
        for name in target.names:
            try:
                found.append(await rc.get(name, session.namespace))
            except ApiError as e:
                session.fail_api(e)
        return found
    items, _ = await rc.list_all(
        session.list_namespace(),
        label_selector=args.selector,
        field_selector=args.field_selector,
    )
    return sorted(items, key=_sort_key)


def _sort_key(o: Any) -> tuple[str, str]:
    return (o.metadata.namespace, o.metadata.name)


def no_resources_message(session: Session, kinds: list[Kind]) -> str:
    if session.list_namespace() and any(k.namespaced for k in kinds):
        return f"No resources found in {session.namespace} namespace."
    return "No resources found"


async def run_get(session: Session, args: argparse.Namespace) -> int:
    try:
        check_output_format(args.output)
    except ValueError as e:
        raise CliError(str(e)) from e
    targets = parse_targets(args.resources)
    if not targets:
        raise CliError(
            "you must specify the type of resource to get. Use `capstan api-resources` for "
            "the list of types"
        )
    if args.watch or args.watch_only:
        if len(targets) != 1:
            raise CliError("you may only specify a single resource type with --watch")
        return await watch(session, targets[0], args)
    results: list[tuple[Kind, list[Message]]] = []
    for t in targets:
        results.append((t.kind, await fetch(session, t, args)))
    fmt = args.output
    out = sys.stdout
    named = any(t.names for t in targets)
    if fmt in (None, "wide"):
        show_kind = len(targets) > 1
        blocks = [
            render_objects(kind, objs, table_options(args, show_kind))
            for kind, objs in results
            if objs
        ]
        out.write("\n".join(blocks))
        if not blocks and not named:
            print(no_resources_message(session, [k for k, _ in results]), file=sys.stderr)
    else:
        flat = [(k, o) for k, objs in results for o in objs]
        single = named and len(flat) == 1 and sum(len(t.names) for t in targets) == 1
        if flat or fmt not in ("name",):
            try:
                out.write(format_objects(flat, fmt, single))
            except ValueError as e:
                raise CliError(str(e)) from e
    out.flush()
    return session.exit_code


def _event_text(kind: Kind, obj: Message, args: argparse.Namespace, ev_type: str) -> str:
    fmt = args.output
    if fmt == "yaml":
        return "---\n" + dump_yaml(to_dict(obj, kind))
    if fmt == "json":
        return dump_json(to_dict(obj, kind))
    if fmt in (None, "wide"):
        row = table_row(kind, obj, table_options(args, False))
        return render_table(["x"] * len(row), [row], no_headers=True)
    try:
        return format_objects([(kind, obj)], fmt, True)
    except ValueError as e:
        raise CliError(str(e)) from e


async def watch(session: Session, target: Target, args: argparse.Namespace) -> int:
    """List (unless --watch-only), then print each change; rows line up with the header."""
    kind = target.kind
    rc = session.resource(kind)
    field_selector = args.field_selector
    if target.names:
        if len(target.names) > 1:
            raise CliError("watch is only supported on a single object name")
        name_sel = f"metadata.name={target.names[0]}"
        field_selector = f"{field_selector},{name_sel}" if field_selector else name_sel
    namespace = session.list_namespace()
    items, rv = await rc.list_all(
        namespace, label_selector=args.selector, field_selector=field_selector
    )
    items = sorted(items, key=_sort_key)
    opts = table_options(args, False)
    out = sys.stdout
    if not args.watch_only:
        if args.output in (None, "wide"):
            if items:
                out.write(render_objects(kind, items, opts))
            else:
                print(no_resources_message(session, [kind]), file=sys.stderr, flush=True)
                if not args.no_headers:
                    out.write(render_table(table_headers(kind, opts), []))
        else:
            for obj in items:
                out.write(_event_text(kind, obj, args, "ADDED"))
    elif args.output in (None, "wide") and not args.no_headers:
        out.write(render_table(table_headers(kind, opts), []))
    out.flush()
    # Keep later rows aligned with the first table by padding to its widths.
    widths = _column_widths(kind, items, opts)
    while True:
        try:
            rv = await _stream(rc, namespace, args, field_selector, rv, kind, opts, widths)
        except ExpiredError:
            # History compacted past our version: relist, and go on from the new one.
            _, rv = await rc.list_all(
                namespace, label_selector=args.selector, field_selector=field_selector
            )


async def _stream(
    rc: Any,
    namespace: str,
    args: argparse.Namespace,
    field_selector: str,
    rv: str,
    kind: Kind,
    opts: TableOptions,
    widths: list[int],
) -> str:
    """Print events until the server ends the stream; returns the last version seen."""
    out = sys.stdout
    async for event in rc.watch(
        namespace, label_selector=args.selector, field_selector=field_selector, resource_version=rv
    ):
        rv = event.object.metadata.resource_version
        if event.type == "BOOKMARK":
            continue
        if args.output in (None, "wide"):
            row = table_row(kind, event.object, opts)
            cells = [c.ljust(widths[i]) if i < len(widths) else c for i, c in enumerate(row[:-1])]
            out.write("   ".join([*cells, row[-1]]).rstrip() + "\n")
        else:
            out.write(_event_text(kind, event.object, args, event.type))
        out.flush()
    return rv


def _column_widths(kind: Kind, items: list[Message], opts: TableOptions) -> list[int]:
    rows = [table_headers(kind, opts)] + [table_row(kind, o, opts) for o in items]
    return [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
