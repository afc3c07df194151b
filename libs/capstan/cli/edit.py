"""`edit`: fetch an object, open it in $EDITOR as YAML, write it back. The update carries
the resource version that was read, so a change made by someone else in the meantime is a
conflict rather than silently overwritten; the edited copy is then kept for the user."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from capstan.apierrors import ApiError, ConflictError
from capstan.cli.apply import last_applied_text
from capstan.cli.common import LAST_APPLIED, CliError, Session, parse_targets, qualified_name
from capstan.machinery.kinds import Kind
from capstan.machinery.manifests import (
    ManifestError,
    dump_json,
    dump_yaml,
    from_dict,
    load_documents,
    to_dict,
)

HEADER = """\
# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
"""


def editor_command() -> list[str]:
    for var in ("CAPSTAN_EDITOR", "KUBE_EDITOR", "EDITOR"):
        value = os.environ.get(var)
        if value:
            return shlex.split(value)
    return ["vi"]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "edit",
        parents=parents,
        help="edit an object in $EDITOR",
        description="Open objects in $CAPSTAN_EDITOR, $KUBE_EDITOR or $EDITOR "
        "(default vi) and save the changes back.",
    )
    p.add_argument("resources", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument(
        "-o", "--output", choices=["yaml", "json"], default="yaml", help="the format to edit in"
    )
    p.add_argument(
        "--save-config",
        action="store_true",
        help="record the result in the last-applied annotation",
    )
    p.set_defaults(handler=run_edit)


async def run_editor(path: Path) -> None:
    cmd = [*editor_command(), str(path)]
    try:
        proc = await asyncio.create_subprocess_exec(*cmd)
    except OSError as e:
        raise CliError(f"cannot run the editor {cmd[0]!r}: {e.strerror}") from e
    code = await proc.wait()
    if code != 0:
        raise CliError(f"the editor {cmd[0]!r} exited with status {code}")


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


async def edit_one(session: Session, kind: Kind, name: str) -> None:
    args = session.args
    rc = session.resource(kind)
    live: Any = await rc.get(name, session.namespace)
    doc = to_dict(live, kind)
    body = dump_json(doc) if args.output == "json" else dump_yaml(doc)
    original = HEADER + body
    fd, tmp = tempfile.mkstemp(prefix=f"capstan-edit-{name}-", suffix=f".{args.output}")
    path = Path(tmp)
    with os.fdopen(fd, "w") as f:
        f.write(original)
    keep = False
    try:
        await run_editor(path)
        edited = await asyncio.to_thread(path.read_text)
        if _strip_comments(edited).strip() == "":
            print("Edit cancelled, no changes made.")
            return
        if edited == original:
            print("Edit cancelled, no changes made.")
            return
        try:
            docs = load_documents(_strip_comments(edited), str(path))
            if len(docs) != 1:
                raise ManifestError("the edited file must hold exactly one object")
            new_kind, obj = from_dict(docs[0])
        except ManifestError as e:
            keep = True
            raise CliError(f'{e}\nA copy of your changes has been stored to "{path}"') from e
        meta: Any = obj.metadata  # type: ignore[attr-defined]
        if new_kind.kind != kind.kind or meta.name != name:
            keep = True
            raise CliError(
                f"the kind and name cannot change in edit; a copy of your changes has been "
                f'stored to "{path}"'
            )
        if not meta.resource_version:
            meta.resource_version = live.metadata.resource_version
        if args.save_config or LAST_APPLIED in meta.annotations:
            meta.annotations[LAST_APPLIED] = last_applied_text(to_dict(obj, kind))
        if obj == live:
            print("Edit cancelled, no changes made.")
            return
        try:
            await rc.update(obj)
        except ConflictError as e:
            keep = True
            raise CliError(
                f"{qualified_name(kind, name)} was changed by someone else while you edited it:"
                f' {e.message}\nA copy of your changes has been stored to "{path}"'
            ) from e
        except ApiError as e:
            keep = True
            raise CliError(
                f'{e.message}\nA copy of your changes has been stored to "{path}"'
            ) from e
        print(f"{qualified_name(kind, name)} edited", flush=True)
    finally:
        if not keep:
            await asyncio.to_thread(path.unlink, True)


async def run_edit(session: Session, args: argparse.Namespace) -> int:
    targets = parse_targets(args.resources)
    if not targets or not all(t.names for t in targets):
        raise CliError("edit needs TYPE NAME or TYPE/NAME")
    for t in targets:
        for name in t.names:
            try:
                await edit_one(session, t.kind, name)
            except ApiError as e:
                session.fail_api(e)
            except CliError as e:
                session.fail(str(e))
    sys.stdout.flush()
    return session.exit_code
