"""`apply`, `create` and `replace`: manifests in, objects out.

apply keeps the manifest it sent in the kubectl.kubernetes.io/last-applied-configuration
annotation, so the next apply can tell a field the user deleted from the manifest (remove
it) from a field someone else set (keep it): see merge.py. create also builds ConfigMaps,
Secrets and Namespaces from flags, printable with --dry-run -o yaml.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError, NotFoundError
from capstan.cli.common import (
    LAST_APPLIED,
    CliError,
    ManifestObject,
    Session,
    load_manifests,
    meta_of,
    object_namespace,
    qualified_name,
)
from capstan.cli.merge import three_way_merge
from capstan.cli.printers import format_objects
from capstan.machinery.kinds import Kind, by_kind
from capstan.machinery.manifests import ManifestError, from_dict, to_dict


def _file_flags(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        required=required,
        metavar="PATH",
        help="manifest file, directory or - for stdin (repeatable)",
    )
    p.add_argument("-R", "--recursive", action="store_true", help="descend into directories")


def _dry_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        nargs="?",
        const="client",
        default="none",
        choices=["none", "client", "server"],
        help="only print what would be sent (client: without contacting the server)",
    )
    p.add_argument("-o", "--output", help="yaml, json or name: print the objects instead")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "apply",
        parents=parents,
        help="create or update objects from manifests",
        description="Create or update objects from manifest files (YAML or JSON, "
        "several documents per file), keeping a last-applied annotation so that "
        "fields removed from the manifest are removed from the object.",
    )
    _file_flags(p, True)
    _dry_run_flags(p)
    p.set_defaults(handler=run_apply)

    p = sub.add_parser(
        "replace",
        parents=parents,
        help="replace objects from manifests",
        description="Replace whole objects with the manifests' content.",
    )
    _file_flags(p, True)
    p.add_argument(
        "--save-config",
        action="store_true",
        help="record the manifest in the last-applied annotation",
    )
    p.add_argument("--force", action="store_true", help="delete and re-create the objects")
    p.add_argument("-o", "--output", help="yaml, json or name")
    p.set_defaults(handler=run_replace)

    p = sub.add_parser(
        "create",
        parents=parents,
        help="create objects from manifests or flags",
        description="Create objects from manifests (-f), or a ConfigMap, Secret "
        "or Namespace from flags.",
    )
    _file_flags(p, False)
    p.add_argument(
        "--save-config",
        action="store_true",
        help="record the manifest in the last-applied annotation",
    )
    _dry_run_flags(p)
    p.set_defaults(handler=run_create)
    kinds = p.add_subparsers(dest="create_kind", metavar="KIND")

    def generated(*names: str, help: str) -> argparse.ArgumentParser:
        c = kinds.add_parser(
            names[0], aliases=list(names[1:]), parents=parents, help=help, description=help
        )
        c.add_argument("name")
        _dry_run_flags(c)
        return c

    cm = generated("configmap", "cm", help="create a ConfigMap from literals, files, env files")
    _data_flags(cm)
    cm.set_defaults(handler=run_create_configmap)

    secret = kinds.add_parser(
        "secret",
        parents=parents,
        help="create a Secret",
        description="Create a Secret (generic, docker-registry, tls).",
    )
    secret_kinds = secret.add_subparsers(dest="secret_kind", metavar="TYPE", required=True)
    gen = secret_kinds.add_parser(
        "generic",
        parents=parents,
        help="from literals and files",
        description="Create a Secret from literals and files.",
    )
    gen.add_argument("name")
    _dry_run_flags(gen)
    _data_flags(gen)
    gen.add_argument("--type", default="Opaque", help="the Secret's type (default Opaque)")
    gen.set_defaults(handler=run_create_secret_generic)
    reg = secret_kinds.add_parser(
        "docker-registry",
        parents=parents,
        help="an image pull Secret",
        description="Create a kubernetes.io/dockerconfigjson Secret.",
    )
    reg.add_argument("name")
    _dry_run_flags(reg)
    reg.add_argument("--docker-server", default="https://index.docker.io/v1/")
    reg.add_argument("--docker-username", required=True)
    reg.add_argument("--docker-password", required=True)
    reg.add_argument("--docker-email", default="")
    reg.set_defaults(handler=run_create_secret_docker)
    tls = secret_kinds.add_parser(
        "tls",
        parents=parents,
        help="a TLS certificate Secret",
        description="Create a kubernetes.io/tls Secret.",
    )
    tls.add_argument("name")
    _dry_run_flags(tls)
    tls.add_argument("--cert", required=True, help="PEM certificate file")
    tls.add_argument("--key", required=True, help="PEM private key file")
    tls.set_defaults(handler=run_create_secret_tls)

    ns = generated("namespace", "ns", help="create a Namespace")
    ns.set_defaults(handler=run_create_namespace)


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--from-file",
        action="append",
        default=[],
        metavar="[KEY=]PATH",
        help="a file (key: its name, or KEY), or a directory's files",
    )
    p.add_argument(
        "--from-env-file", action="append", default=[], metavar="PATH", help="KEY=VALUE lines"
    )


# --- manifests ------------------------------------------------------------------------


def last_applied_text(doc: dict[str, Any]) -> str:
    body = json.loads(json.dumps(doc))
    annotations = body.get("metadata", {}).get("annotations", {})
    annotations.pop(LAST_APPLIED, None)
    if "annotations" in body.get("metadata", {}) and not annotations:
        del body["metadata"]["annotations"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def with_last_applied(kind: Kind, message: Message) -> Message:
    doc = to_dict(message, kind)
    out = kind.message()
    out.CopyFrom(message)
    meta_of(out).annotations[LAST_APPLIED] = last_applied_text(doc)
    return out


def _report(session: Session, kind: Kind, obj: Message, verb: str) -> None:
    fmt = getattr(session.args, "output", None)
    dry = getattr(session.args, "dry_run", "none") != "none"
    if fmt:
        try:
            sys.stdout.write(format_objects([(kind, obj)], fmt, True))
        except ValueError as e:
            raise CliError(str(e)) from e
    else:
        suffix = f" ({'server ' if session.args.dry_run == 'server' else ''}dry run)" if dry else ""
        print(f"{qualified_name(kind, meta_of(obj).name)} {verb}{suffix}", flush=True)


async def apply_object(session: Session, mo: ManifestObject) -> None:
    kind = mo.kind
    object_namespace(session, kind, mo.message)
    meta = meta_of(mo.message)
    if not meta.name:
        raise CliError(f"{mo.source}: {kind.kind}: metadata.name is required for apply")
    modified = with_last_applied(kind, mo.message)
    if session.args.dry_run == "client":
        _report(session, kind, modified, "configured")
        return
    rc = session.resource(kind)
    try:
        live = await rc.get(meta.name, meta.namespace)
    except NotFoundError:
        created = await rc.create(modified)
        _report(session, kind, created, "created")
        return
    original_text = meta_of(live).annotations.get(LAST_APPLIED, "")
    try:
        original = json.loads(original_text) if original_text else {}
    except json.JSONDecodeError:
        original = {}
    merged = three_way_merge(original, to_dict(modified, kind), to_dict(live, kind))
    try:
        _, target = from_dict(merged, mo.source)
    except ManifestError as e:
        raise CliError(str(e)) from e
    if target == live:
        _report(session, kind, live, "unchanged")
        return
    updated = await rc.update(target)
    _report(session, kind, updated, "configured")


async def _each(session: Session, objs: list[ManifestObject], action: Any) -> int:
    for mo in objs:
        try:
            await action(session, mo)
        except ApiError as e:
            session.fail_api(e)
        except CliError as e:
            session.fail(str(e))
    return session.exit_code


async def run_apply(session: Session, args: argparse.Namespace) -> int:
    return await _each(session, load_manifests(args.filename, args.recursive), apply_object)


async def create_object(session: Session, mo: ManifestObject) -> None:
    object_namespace(session, mo.kind, mo.message)
    obj = with_last_applied(mo.kind, mo.message) if session.args.save_config else mo.message
    if session.args.dry_run == "client":
        _report(session, mo.kind, obj, "created")
        return
    created = await session.resource(mo.kind).create(obj)
    _report(session, mo.kind, created, "created")


async def run_create(session: Session, args: argparse.Namespace) -> int:
    if not args.filename:
        raise CliError("must specify one of -f or a kind (configmap, secret, namespace)")
    return await _each(session, load_manifests(args.filename, args.recursive), create_object)


async def replace_object(session: Session, mo: ManifestObject) -> None:
    kind = mo.kind
    ns = object_namespace(session, kind, mo.message)
    rc = session.resource(kind)
    name = meta_of(mo.message).name
    obj = mo.message
    if session.args.force:
        with contextlib.suppress(NotFoundError):
            await rc.delete(name, ns, grace_period_seconds=0)
        obj = with_last_applied(kind, obj) if session.args.save_config else obj
        meta_of(obj).resource_version = ""
        _report(session, kind, await rc.create(obj), "replaced")
        return
    live = await rc.get(name, ns)
    if session.args.save_config or LAST_APPLIED in meta_of(live).annotations:
        obj = with_last_applied(kind, obj)
    _report(session, kind, await rc.update(obj), "replaced")


async def run_replace(session: Session, args: argparse.Namespace) -> int:
    args.dry_run = "none"
    return await _each(session, load_manifests(args.filename, args.recursive), replace_object)


# --- generated objects -------------------------------------------------------------------


def _split_key_value(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CliError(f'invalid {flag} "{text}": expected KEY=VALUE')
    return key, value


def collect_data(literals: list[str], files: list[str], env_files: list[str]) -> dict[str, bytes]:
    """Key -> bytes from --from-literal, --from-file ([key=]path, or a directory) and
    --from-env-file; a key given twice is an error, as in kubectl."""
    data: dict[str, bytes] = {}

    def put(key: str, value: bytes, origin: str) -> None:
        if key in data:
            raise CliError(f'cannot add key "{key}" from {origin}: the key already exists')
        data[key] = value

    for lit in literals:
        k, v = _split_key_value(lit, "--from-literal")
        put(k, v.encode(), "--from-literal")
    for spec in files:
        key, sep, path_text = spec.partition("=")
        if not sep:
            key, path_text = "", spec
        path = Path(path_text)
        if path.is_dir():
            if key:
                raise CliError(f'cannot give a key for a directory: "{spec}"')
            for f in sorted(path.iterdir()):
                if f.is_file():
                    put(f.name, f.read_bytes(), str(f))
        elif path.is_file():
            put(key or path.name, path.read_bytes(), str(path))
        else:
            raise CliError(f"error reading {path_text}: no such file or directory")
    for env_file in env_files:
        try:
            lines = Path(env_file).read_text().splitlines()
        except OSError as e:
            raise CliError(f"error reading {env_file}: {e.strerror}") from e
        for n, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if "=" not in text:
                raise CliError(f'{env_file}:{n}: "{text}" is not a KEY=VALUE line')
            k, v = _split_key_value(text, "env file line")
            put(k, v.encode(), env_file)
    return data


def build_configmap(name: str, namespace: str, data: dict[str, bytes]) -> core_pb2.ConfigMap:
    cm = core_pb2.ConfigMap()
    cm.metadata.name = name
    cm.metadata.namespace = namespace
    for k, v in data.items():
        try:
            cm.data[k] = v.decode("utf-8")
        except UnicodeDecodeError:
            cm.binary_data[k] = v
    return cm


def build_secret(name: str, namespace: str, data: dict[str, bytes], type_: str) -> core_pb2.Secret:
    secret = core_pb2.Secret(type=type_)
    secret.metadata.name = name
    secret.metadata.namespace = namespace
    for k, v in data.items():
        secret.data[k] = v
    return secret


def _dry_run_namespace(session: Session) -> str:
    """--dry-run=client needs no server; the namespace still honours -n and the config."""
    if session.args.dry_run == "client":
        ns = getattr(session.args, "namespace", None)
        if ns:
            return str(ns)
        try:
            return session.namespace
        except CliError:
            return "default"
    return session.namespace


async def _create_generated(session: Session, kind_name: str, obj: Message) -> int:
    kind = by_kind(kind_name)
    if session.args.dry_run == "client":
        _report(session, kind, obj, "created")
        return 0
    try:
        created = await session.resource(kind).create(obj)
    except ApiError as e:
        session.fail_api(e)
        return 1
    _report(session, kind, created, "created")
    return 0


async def run_create_configmap(session: Session, args: argparse.Namespace) -> int:
    data = collect_data(args.from_literal, args.from_file, args.from_env_file)
    cm = build_configmap(args.name, _dry_run_namespace(session), data)
    return await _create_generated(session, "ConfigMap", cm)


async def run_create_secret_generic(session: Session, args: argparse.Namespace) -> int:
    data = collect_data(args.from_literal, args.from_file, args.from_env_file)
    secret = build_secret(args.name, _dry_run_namespace(session), data, args.type)
    return await _create_generated(session, "Secret", secret)


async def run_create_secret_docker(session: Session, args: argparse.Namespace) -> int:
    auth = base64.b64encode(f"{args.docker_username}:{args.docker_password}".encode()).decode()
    entry = {"username": args.docker_username, "password": args.docker_password, "auth": auth}
    if args.docker_email:
        entry["email"] = args.docker_email
    config = json.dumps({"auths": {args.docker_server: entry}}).encode()
    secret = build_secret(
        args.name,
        _dry_run_namespace(session),
        {".dockerconfigjson": config},
        "kubernetes.io/dockerconfigjson",
    )
    return await _create_generated(session, "Secret", secret)


async def run_create_secret_tls(session: Session, args: argparse.Namespace) -> int:
    data = collect_data([], [f"tls.crt={args.cert}", f"tls.key={args.key}"], [])
    secret = build_secret(args.name, _dry_run_namespace(session), data, "kubernetes.io/tls")
    return await _create_generated(session, "Secret", secret)


async def run_create_namespace(session: Session, args: argparse.Namespace) -> int:
    ns = core_pb2.Namespace()
    ns.metadata.name = args.name
    return await _create_generated(session, "Namespace", ns)
