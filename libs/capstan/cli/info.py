"""`version` and `api-resources`."""

from __future__ import annotations

import argparse
import json
import sys

import grpc

import capstan
from capstan.api.meta.v1 import meta_pb2, meta_pb2_grpc
from capstan.cli.common import CliError, Session
from capstan.cli.printers import render_table
from capstan.machinery.kinds import KINDS
from capstan.machinery.manifests import dump_yaml


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    v = sub.add_parser(
        "version",
        parents=parents,
        help="print the client and server versions",
        description="Print the client version and the apiserver's version.",
    )
    v.add_argument("--client", action="store_true", help="the client version only")
    v.add_argument("-o", "--output", choices=["yaml", "json"])
    v.set_defaults(handler=run_version)

    a = sub.add_parser(
        "api-resources",
        parents=parents,
        help="list the resource types served",
        description="List the resource types: name, short names, API version, "
        "whether namespaced, kind.",
    )
    a.add_argument("--namespaced", choices=["true", "false"], help="only (non-)namespaced kinds")
    a.add_argument("--api-group", default=None, help="only this group ('' for core)")
    a.add_argument("-o", "--output", choices=["wide", "name"])
    a.add_argument("--no-headers", action="store_true")
    a.set_defaults(handler=run_api_resources)


async def run_version(session: Session, args: argparse.Namespace) -> int:
    info: dict[str, object] = {"clientVersion": {"gitVersion": f"v{capstan.__version__}"}}
    failed = ""
    if not args.client:
        servers = session.settings.servers
        try:
            stub = meta_pb2_grpc.VersionStub(session.client.channel)
            resp = await stub.Get(meta_pb2.GetVersionRequest(), timeout=session.settings.timeout)
            info["serverVersion"] = {
                "major": resp.major,
                "minor": resp.minor,
                "gitVersion": resp.git_version,
                "platform": resp.platform,
                "pythonVersion": resp.python_version,
                "grpcVersion": resp.grpc_version,
                "store": resp.store,
                "servers": servers,
            }
        except grpc.aio.AioRpcError as e:
            failed = f"unable to reach the apiserver at {', '.join(servers)}: {e.details()}"
    if args.output == "json":
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    elif args.output == "yaml":
        sys.stdout.write(dump_yaml(info))
    else:
        print(f"Client Version: v{capstan.__version__}")
        if "serverVersion" in info and not failed:
            server = info["serverVersion"]
            assert isinstance(server, dict)
            print(
                f"Server Version: {server['gitVersion']} ({server['platform']}, "
                f"store {server['store']}) at {', '.join(server['servers'])}"
            )
    if failed:
        raise CliError(failed)
    return 0


async def run_api_resources(session: Session, args: argparse.Namespace) -> int:
    rows = []
    for k in sorted(KINDS, key=lambda k: (k.group, k.plural)):
        if args.namespaced is not None and k.namespaced != (args.namespaced == "true"):
            continue
        if args.api_group is not None and k.group != args.api_group:
            continue
        if args.output == "name":
            rows.append([k.resource])
            continue
        row = [
            k.plural,
            ",".join(k.short_names),
            k.api_version,
            "true" if k.namespaced else "false",
            k.kind,
        ]
        if args.output == "wide":
            verbs = ["create", "delete", "get", "list", "update", "watch"]
            row.append(",".join(verbs + [s.lower() for s in k.subresources]))
        rows.append(row)
    if args.output == "name":
        sys.stdout.write("".join(f"{r[0]}\n" for r in rows))
        return 0
    headers = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if args.output == "wide":
        headers.append("VERBS")
    sys.stdout.write(render_table(headers, rows, no_headers=args.no_headers))
    return 0
