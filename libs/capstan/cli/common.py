"""What every verb shares: the error type, resolving what the user typed into kinds and
names (kubectl's `pods a b`, `pods,svc`, `pods/a`), reading -f files, and how objects are
named in output (`deployment.apps/web`)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from capstan.apierrors import ApiError
from capstan.machinery.kinds import Kind, lookup
from capstan.machinery.manifests import ManifestError, from_dict, load_documents

if TYPE_CHECKING:
    from capstan.cli.config import Settings
    from capstan.client import Client, ResourceClient

# `get all` in kubectl: the workload and service kinds a user usually means.
ALL_KINDS = (
    "pods",
    "services",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "horizontalpodautoscalers",
    "cronjobs",
    "jobs",
)

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class CliError(Exception):
    """A user-facing failure: printed as `error: <message>`, exit code 1."""


class Session:
    """One invocation: parsed flags, settings and client made on first use (so verbs that
    need no server, like `create --dry-run`, never dial one), and the exit code of verbs
    that go on after a per-object failure."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._settings: Settings | None = None
        self._client: Client | None = None
        self.exit_code = 0

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from capstan.cli.config import resolve_settings

            self._settings = resolve_settings(self.args)
        return self._settings

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def list_namespace(self) -> str:
        """ "" (all) with -A/--all-namespaces, else the session's namespace."""
        return "" if getattr(self.args, "all_namespaces", False) else self.namespace

    @property
    def client(self) -> Client:
        if self._client is None:
            from capstan.client import Client, ClientTLS

            s = self.settings
            tls = None
            if not s.insecure:
                tls = ClientTLS(s.ca_file, s.cert_file, s.key_file, s.server_name)
            self._client = Client(s.servers, tls=tls, default_timeout=s.timeout)
        return self._client

    def resource(self, kind: Kind) -> ResourceClient[Any]:
        return self.client.resource(kind)

    def fail(self, message: str) -> None:
        """Report one object's failure and carry on; the command exits 1 at the end."""
        if not message.startswith("Error from server"):
            message = "\n".join(f"error: {line}" for line in message.splitlines())
        print(message, file=sys.stderr, flush=True)
        self.exit_code = 1

    def fail_api(self, err: ApiError) -> None:
        self.fail(format_api_error(err))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def resolve_kind(name: str) -> Kind:
    kind = lookup(name)
    if kind is None:
        raise CliError(f'the server doesn\'t have a resource type "{name}"')
    return kind


def qualified_name(kind: Kind, name: str) -> str:
    """kubectl's `resource.group/name` (`pod/x`, `deployment.apps/web`)."""
    prefix = kind.singular if not kind.group else f"{kind.singular}.{kind.group}"
    return f"{prefix}/{name}"


def meta_of(obj: Message) -> Any:
    return obj.metadata  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Target:
    """One kind plus the names asked for (empty: all that match a selector)."""

    kind: Kind
    names: tuple[str, ...] = ()


def parse_targets(args: Sequence[str]) -> list[Target]:
    """`pods`, `pods a b`, `pods,svc`, `pods/a svc/b`; kinds keep the order typed."""
    if not args:
        return []
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError(
                "there is no need to specify a resource type as a separate argument when "
                "passing arguments in resource/name form"
            )
        grouped: dict[str, list[str]] = {}
        kinds: dict[str, Kind] = {}
        for a in args:
            type_name, _, name = a.partition("/")
            if not name:
                raise CliError(f'arguments in resource/name form must have a name: "{a}"')
            kind = resolve_kind(type_name)
            kinds[kind.kind] = kind
            grouped.setdefault(kind.kind, []).append(name)
        return [Target(kinds[k], tuple(v)) for k, v in grouped.items()]
    type_arg, *names = args
    kinds_typed: list[Kind] = []
    for part in type_arg.split(","):
        if not part:
            continue
        if part == "all":
            kinds_typed.extend(resolve_kind(k) for k in ALL_KINDS)
        else:
            kinds_typed.append(resolve_kind(part))
    if names and len(kinds_typed) > 1:
        raise CliError("you must specify only one resource type when naming objects")
    seen: set[str] = set()
    out = []
    for k in kinds_typed:
        if k.kind not in seen:
            seen.add(k.kind)
            out.append(Target(k, tuple(names)))
    return out


def read_manifest_paths(paths: Iterable[str], recursive: bool = False) -> list[tuple[str, str]]:
    """(source name, text) for each -f argument: a file, `-` for stdin, or a directory's
    .yaml/.yml/.json files in name order."""
    out: list[tuple[str, str]] = []
    for raw in paths:
        if raw == "-":
            out.append(("STDIN", sys.stdin.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(
                p for p in path.glob(pattern) if p.is_file() and p.suffix in MANIFEST_SUFFIXES
            )
            if not files:
                raise CliError(f'no manifest files (.yaml, .yml, .json) in directory "{raw}"')
            for f in files:
                out.append((str(f), f.read_text()))
        elif path.is_file():
            out.append((raw, path.read_text()))
        else:
            raise CliError(f'the path "{raw}" does not exist')
    return out


@dataclass
class ManifestObject:
    source: str
    document: dict[str, Any]
    kind: Kind
    message: Message


def load_manifests(paths: Iterable[str], recursive: bool = False) -> list[ManifestObject]:
    """Parse every document first, so a bad field anywhere fails before anything changes."""
    out: list[ManifestObject] = []
    errors: list[str] = []
    for source, text in read_manifest_paths(paths, recursive):
        try:
            docs = load_documents(text, source)
        except ManifestError as e:
            errors.append(str(e))
            continue
        for doc in docs:
            try:
                kind, message = from_dict(doc, source)
            except ManifestError as e:
                errors.append(str(e))
                continue
            out.append(ManifestObject(source, doc, kind, message))
    if errors:
        raise CliError("\n".join(errors))
    if not out:
        raise CliError("no objects passed to the command")
    return out


def object_namespace(session: Session, kind: Kind, message: Message) -> str:
    """The namespace a manifest object goes to: its own, else the session's; a clash with
    an explicit -n is an error, as in kubectl."""
    if not kind.namespaced:
        meta_of(message).namespace = ""
        return ""
    meta = meta_of(message)
    if meta.namespace:
        if session.settings.namespace_explicit and meta.namespace != session.namespace:
            raise CliError(
                f'the namespace from the provided object "{meta.namespace}" does not match '
                f'the namespace "{session.namespace}". You must pass '
                f"'--namespace={meta.namespace}' to perform this operation."
            )
        return str(meta.namespace)
    meta.namespace = session.namespace
    return session.namespace


def format_api_error(err: ApiError) -> str:
    """kubectl's `Error from server (NotFound): pods "x" not found`, then one line per
    field violation."""
    message = err.message
    if err.violations and " is invalid: " in message:
        message = message.split(" is invalid: ", 1)[0] + " is invalid:"
    lines = [f"Error from server ({err.reason}): {message}"]
    lines.extend(f"* {v.field}: {v.description}" for v in err.violations)
    return "\n".join(lines)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def duration_seconds(text: str) -> float:
    """kubectl-style durations for flags like --timeout: 90s, 5m, 1h, 250ms or plain seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 90s, 5m or 1h")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]
    return float(m.group(1)) * scale
