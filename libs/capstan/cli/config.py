"""The client configuration: ~/.capstan/config, shaped like a kubeconfig (clusters, users,
contexts, current-context), so an operator's habits carry over; flags and environment
override it. Also the `config` verb (view, get-contexts, current-context, use-context,
set-context, set-cluster, set-credentials)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from capstan.cli.common import CliError
from capstan.machinery.manifests import dump_yaml

DEFAULT_NAMESPACE = "default"


def config_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("CAPSTAN_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path("~/.capstan/config").expanduser()


def load_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise CliError(f"cannot read config {path}: {e}") from e
    if not isinstance(data, dict):
        raise CliError(f"config {path}: expected a mapping at the top level")
    return data


def save_config(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Config")
    path.write_text(dump_yaml(data))
    path.chmod(0o600)


def _named(entries: Any, name: str, key: str) -> dict[str, Any] | None:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key) or {}
            return value if isinstance(value, dict) else {}
    return None


@dataclass
class Settings:
    """Where and how to connect, and the namespace verbs default to."""

    servers: list[str] = field(default_factory=list)
    namespace: str = DEFAULT_NAMESPACE
    # True when -n/--namespace was given (kubectl then refuses a manifest in another one).
    namespace_explicit: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure: bool = False
    timeout: float = 30.0


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    """Accepted before and after the verb (kubectl allows both); SUPPRESS keeps a
    subcommand's unset flag from overwriting one given before the verb."""
    g = p.add_argument_group("connection", argument_default=argparse.SUPPRESS)
    g.add_argument(
        "--config",
        "--kubeconfig",
        dest="config",
        help="config file (default $CAPSTAN_CONFIG or ~/.capstan/config)",
    )
    g.add_argument("--context", help="the config context to use")
    g.add_argument(
        "-s",
        "--server",
        help="apiserver host:port or unix:///path (comma-separated "
        "for several replicas); env CAPSTAN_SERVER",
    )
    g.add_argument("-n", "--namespace", help="the namespace for this request")
    g.add_argument("--certificate-authority", help="CA certificate file (PEM)")
    g.add_argument("--client-certificate", help="client certificate file (PEM)")
    g.add_argument("--client-key", help="client key file (PEM)")
    g.add_argument("--tls-server-name", help="server name to verify the certificate against")
    g.add_argument(
        "--insecure",
        action="store_true",
        help="plaintext gRPC, no TLS (only for local test servers)",
    )
    g.add_argument(
        "--request-timeout",
        type=float,
        metavar="SECONDS",
        help="deadline for each API call (default 30)",
    )


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Flags beat environment, which beats the config file's current context."""
    data = load_config(config_path(getattr(args, "config", None)))
    ctx_name = getattr(args, "context", None) or data.get("current-context") or ""
    context: dict[str, Any] = {}
    if ctx_name:
        found = _named(data.get("contexts"), ctx_name, "context")
        if found is None and getattr(args, "context", None):
            raise CliError(f'context "{ctx_name}" not found in the config')
        context = found or {}
    cluster = _named(data.get("clusters"), str(context.get("cluster", "")), "cluster") or {}
    user = _named(data.get("users"), str(context.get("user", "")), "user") or {}

    s = Settings()
    server = getattr(args, "server", None) or os.environ.get("CAPSTAN_SERVER") or ""
    if server:
        s.servers = [x.strip() for x in server.split(",") if x.strip()]
    else:
        raw = cluster.get("servers") or cluster.get("server") or []
        s.servers = [raw] if isinstance(raw, str) else [str(x) for x in raw]
        s.servers = [x for part in s.servers for x in part.split(",") if x]
    if not s.servers:
        raise CliError(
            "no apiserver given: pass --server HOST:PORT, set CAPSTAN_SERVER, "
            "or configure a context in ~/.capstan/config"
        )
    ns = getattr(args, "namespace", None)
    if ns:
        s.namespace, s.namespace_explicit = ns, True
    else:
        s.namespace = (
            os.environ.get("CAPSTAN_NAMESPACE") or context.get("namespace") or (DEFAULT_NAMESPACE)
        )
    s.ca_file = getattr(args, "certificate_authority", None) or cluster.get("certificate-authority")
    s.cert_file = getattr(args, "client_certificate", None) or user.get("client-certificate")
    s.key_file = getattr(args, "client_key", None) or user.get("client-key")
    s.server_name = getattr(args, "tls_server_name", None) or cluster.get("tls-server-name")
    insecure = getattr(args, "insecure", None)
    s.insecure = bool(insecure) if insecure is not None else bool(cluster.get("insecure", False))
    timeout = getattr(args, "request_timeout", None)
    if timeout:
        s.timeout = float(timeout)
    return s


# --- the `config` verb ------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="view or change the client configuration file",
        description="View or change ~/.capstan/config (clusters, users, contexts).",
    )
    p.add_argument("--config", "--kubeconfig", dest="config", help="config file")
    verbs = p.add_subparsers(dest="config_verb", metavar="SUBCOMMAND", required=True)
    verbs.add_parser("view", help="print the configuration")
    verbs.add_parser("get-contexts", help="list the contexts")
    verbs.add_parser("current-context", help="print the current context")
    use = verbs.add_parser("use-context", help="set the current context")
    use.add_argument("name")
    setc = verbs.add_parser("set-context", help="create or change a context")
    setc.add_argument("name", nargs="?", help="context name (default: the current one)")
    setc.add_argument("--current", action="store_true", help="change the current context")
    setc.add_argument("--cluster")
    setc.add_argument("--user")
    setc.add_argument("--namespace")
    setcl = verbs.add_parser("set-cluster", help="create or change a cluster entry")
    setcl.add_argument("name")
    setcl.add_argument("--server", help="host:port (comma-separated for several apiservers)")
    setcl.add_argument("--certificate-authority")
    setcl.add_argument("--tls-server-name")
    setcl.add_argument("--insecure", action="store_true", default=None)
    setu = verbs.add_parser("set-credentials", help="create or change a user entry")
    setu.add_argument("name")
    setu.add_argument("--client-certificate")
    setu.add_argument("--client-key")
    p.set_defaults(handler=run_config, needs_client=False)


def _upsert(data: dict[str, Any], section: str, key: str, name: str) -> dict[str, Any]:
    entries = data.setdefault(section, [])
    for entry in entries:
        if entry.get("name") == name:
            value: dict[str, Any] = entry.setdefault(key, {})
            return value
    value = {}
    entries.append({"name": name, key: value})
    return value


def run_config(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    data = load_config(path)
    verb = args.config_verb
    out = sys.stdout
    if verb == "view":
        out.write(dump_yaml(data) if data else "{}\n")
        return 0
    if verb == "current-context":
        current = data.get("current-context")
        if not current:
            raise CliError("current-context is not set")
        out.write(f"{current}\n")
        return 0
    if verb == "get-contexts":
        from capstan.cli.printers import render_table

        rows = []
        for entry in data.get("contexts") or []:
            ctx = entry.get("context") or {}
            mark = "*" if entry.get("name") == data.get("current-context") else ""
            rows.append(
                [
                    mark,
                    entry.get("name", ""),
                    ctx.get("cluster", ""),
                    ctx.get("user", ""),
                    ctx.get("namespace", ""),
                ]
            )
        out.write(render_table(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"], rows))
        return 0
    if verb == "use-context":
        if _named(data.get("contexts"), args.name, "context") is None:
            raise CliError(f'no context exists with the name: "{args.name}"')
        data["current-context"] = args.name
        save_config(path, data)
        out.write(f'Switched to context "{args.name}".\n')
        return 0
    if verb == "set-context":
        name = args.name
        if args.current or not name:
            name = data.get("current-context")
            if not name:
                raise CliError("no current context is set")
        ctx = _upsert(data, "contexts", "context", name)
        for attr in ("cluster", "user", "namespace"):
            if getattr(args, attr):
                ctx[attr] = getattr(args, attr)
        save_config(path, data)
        out.write(f'Context "{name}" modified.\n')
        return 0
    if verb == "set-cluster":
        cl = _upsert(data, "clusters", "cluster", args.name)
        if args.server:
            cl["server"] = args.server
        if args.certificate_authority:
            cl["certificate-authority"] = str(Path(args.certificate_authority).resolve())
        if args.tls_server_name:
            cl["tls-server-name"] = args.tls_server_name
        if args.insecure is not None:
            cl["insecure"] = True
        save_config(path, data)
        out.write(f'Cluster "{args.name}" set.\n')
        return 0
    if verb == "set-credentials":
        user = _upsert(data, "users", "user", args.name)
        if args.client_certificate:
            user["client-certificate"] = str(Path(args.client_certificate).resolve())
        if args.client_key:
            user["client-key"] = str(Path(args.client_key).resolve())
        save_config(path, data)
        out.write(f'User "{args.name}" set.\n')
        return 0
    raise CliError(f"unknown config subcommand {verb}")
