"""Every certificate a capstan cluster uses, made with the openssl CLI (tools/certs).

Two CAs, as Kubernetes keeps them: the cluster CA signs the apiserver's serving certificate,
the client certificates of every daemon and of the admin, and the kubelets' serving
certificates; a separate etcd CA signs the etcd members' and the apiserver's etcd client
certificate, so that no cluster client certificate opens etcd (which holds everything).

Idempotent: a CA that exists is kept (replacing it would invalidate every certificate it
signed). A leaf is remade only when it is missing, no longer verifies against its CA, expires
within 30 days, or was made from a different request (subject, SANs, usages, lifetime); the
request is kept next to it as <name>.req to compare. Keys are EC P-256, mode 0600.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLUSTER_DOMAIN = "cluster.local"
RENEW_BEFORE_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Leaf:
    """One certificate to issue: file stem, subject, CA and extensions."""

    name: str
    cn: str
    ca: str  # stem of the signing CA: "ca" or "etcd-ca"
    server: bool = False
    client: bool = False
    org: str = ""
    sans: tuple[str, ...] = ()

    def subject(self) -> str:
        return f"/CN={self.cn}" + (f"/O={self.org}" if self.org else "")

    def extensions(self) -> str:
        usages = [u for u, on in (("serverAuth", self.server), ("clientAuth", self.client)) if on]
        lines = [
            "[v3]",
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature, keyEncipherment",
            f"extendedKeyUsage = {', '.join(usages)}",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid, issuer",
        ]
        if self.sans:
            lines.append("subjectAltName = " + ", ".join(_san(s) for s in self.sans))
        return "\n".join(lines) + "\n"


def _san(value: str) -> str:
    try:
        return f"IP:{ipaddress.ip_address(value)}"
    except ValueError:
        return f"DNS:{value}"


def _name_and_ip(item: str) -> tuple[str, str]:
    name, _, ip = item.partition("=")
    if ip:
        ipaddress.ip_address(ip)  # a typo fails here, not in a TLS handshake later
    return name, ip


def first_service_ip(service_cidr: str) -> str:
    """The address the apiserver's own `kubernetes` Service gets (the range's first host)."""
    return str(ipaddress.ip_network(service_cidr, strict=False).network_address + 1)


def plan(
    *,
    apiserver_sans: Sequence[str] = (),
    nodes: Sequence[str] = (),
    etcd_members: Sequence[str] = (),
    service_cidr: str = "10.96.0.0/12",
) -> list[Leaf]:
    """The certificates of a cluster: nodes and etcd members as NAME or NAME=IP."""
    api_sans = (
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        f"kubernetes.default.svc.{CLUSTER_DOMAIN}", "localhost", "127.0.0.1",
        first_service_ip(service_cidr), *apiserver_sans,
    )  # fmt: skip
    leaves = [
        Leaf("apiserver", "capstan-apiserver", "ca", server=True, sans=_unique(api_sans)),
        Leaf("apiserver-kubelet-client", "capstan-apiserver", "ca", client=True,
             org="system:masters"),
        Leaf("apiserver-etcd-client", "capstan-apiserver", "etcd-ca", client=True),
        Leaf("admin", "admin", "ca", client=True, org="system:masters"),
        Leaf("scheduler", "system:capstan-scheduler", "ca", client=True),
        Leaf("controller", "system:capstan-controller", "ca", client=True),
        Leaf("proxy", "system:capstan-proxy", "ca", client=True),
    ]  # fmt: skip
    for item in nodes:
        node, ip = _name_and_ip(item)
        leaves.append(
            Leaf(f"kubelet-{node}-client", f"system:node:{node}", "ca", client=True,
                 org="system:nodes")
        )  # fmt: skip
        sans = _unique((node, *([ip] if ip else []), "localhost", "127.0.0.1"))
        leaves.append(Leaf(f"kubelet-{node}", node, "ca", server=True, sans=sans))
    for item in etcd_members:
        member, ip = _name_and_ip(item)
        sans = _unique((member, *([ip] if ip else []), "localhost", "127.0.0.1"))
        # One certificate per member for both its client port and its peer port: etcd
        # peers authenticate each other with clientAuth and serve with serverAuth.
        leaves.append(Leaf(f"etcd-{member}", member, "etcd-ca", server=True, client=True,
                           sans=sans))  # fmt: skip
    names = [leaf.name for leaf in leaves]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate certificate names: {', '.join(dupes)}")
    return leaves


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], check=True, capture_output=True, text=True, timeout=60
    )


def _new_key(path: Path) -> None:
    tmp = path.with_suffix(".key.tmp")
    old_umask = os.umask(0o077)
    try:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", tmp)
    finally:
        os.umask(old_umask)
    tmp.replace(path)


def ensure_ca(out: Path, name: str, cn: str, days: int) -> bool:
    """Make the CA <name>.crt/.key unless both exist; True if it was made."""
    key, crt = out / f"{name}.key", out / f"{name}.crt"
    if key.exists() and crt.exists():
        return False
    _new_key(key)
    _openssl(
        "req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", str(days),
        "-set_serial", f"0x{secrets.token_hex(16)}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", crt,
    )  # fmt: skip
    return True


def _request(leaf: Leaf, days: int) -> str:
    return f"subject {leaf.subject()}\ndays {days}\n{leaf.extensions()}"


def _current(out: Path, leaf: Leaf, days: int) -> bool:
    key, crt, req = (out / f"{leaf.name}.{s}" for s in ("key", "crt", "req"))
    if not (key.exists() and crt.exists() and req.exists()):
        return False
    if req.read_text() != _request(leaf, days):
        return False
    # One call checks both: the chain to the current CA, as of the renewal horizon.
    horizon = int(time.time()) + RENEW_BEFORE_SECONDS
    try:
        _openssl("verify", "-attime", str(horizon), "-CAfile", out / f"{leaf.ca}.crt", crt)
    except subprocess.CalledProcessError:
        return False
    return True


def ensure_leaf(out: Path, leaf: Leaf, days: int) -> bool:
    """Issue leaf unless the existing one is current; True if it was (re)made."""
    if _current(out, leaf, days):
        return False
    key, crt, req = (out / f"{leaf.name}.{s}" for s in ("key", "crt", "req"))
    _new_key(key)
    with tempfile.TemporaryDirectory(prefix="capstan-certs-") as tmp:
        csr, ext = Path(tmp) / "csr", Path(tmp) / "ext.cnf"
        ext.write_text(leaf.extensions())
        _openssl("req", "-new", "-key", key, "-subj", leaf.subject(), "-out", csr)
        _openssl(
            "x509", "-req", "-in", csr, "-CA", out / f"{leaf.ca}.crt",
            "-CAkey", out / f"{leaf.ca}.key", "-set_serial", f"0x{secrets.token_hex(16)}",
            "-days", str(days), "-extfile", ext, "-extensions", "v3", "-out", crt,
        )  # fmt: skip
    req.write_text(_request(leaf, days))
    return True


def generate(
    out: Path,
    leaves: Sequence[Leaf],
    *,
    days: int = 365,
    ca_days: int = 3650,
) -> list[str]:
    """Make whatever is missing or stale under out; returns the names (re)made."""
    out.mkdir(parents=True, exist_ok=True)
    made = [
        name
        for name, cn in (("ca", "capstan-ca"), ("etcd-ca", "capstan-etcd-ca"))
        if ensure_ca(out, name, cn, ca_days)
    ]
    made += [leaf.name for leaf in leaves if ensure_leaf(out, leaf, days)]
    return made


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tools/certs",
        description="Generate (idempotently) the CAs and certificates of a capstan cluster.",
    )
    p.add_argument("dir", type=Path, help="output directory (created; keys are mode 0600)")
    p.add_argument("--apiserver-san", action="append", default=[], metavar="NAME|IP",
                   help="extra name or address of the apiservers (repeatable)")  # fmt: skip
    p.add_argument("--node", action="append", default=[], metavar="NAME[=IP]",
                   help="a node: kubelet client and serving certificates (repeatable)")  # fmt: skip
    p.add_argument("--etcd-member", action="append", default=[], metavar="NAME[=IP]",
                   help="an etcd member: its server+peer certificate (repeatable)")  # fmt: skip
    p.add_argument("--service-cidr", default="10.96.0.0/12",
                   help="the apiserver's --service-cidr (its first address is a SAN)")  # fmt: skip
    p.add_argument("--days", type=int, default=365, help="lifetime of leaf certificates")
    p.add_argument("--ca-days", type=int, default=3650, help="lifetime of new CAs")
    args = p.parse_args(argv)
    try:
        leaves = plan(
            apiserver_sans=args.apiserver_san,
            nodes=args.node,
            etcd_members=args.etcd_member,
            service_cidr=args.service_cidr,
        )
    except ValueError as e:
        p.error(str(e))
    try:
        made = generate(args.dir, leaves, days=args.days, ca_days=args.ca_days)
    except subprocess.CalledProcessError as e:
        print(f"error: openssl {' '.join(e.cmd[1:3])} failed: {e.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"{args.dir}: " + (f"made {', '.join(made)}" if made else "everything up to date"))
    return 0
