"""capstan-apiserver command line."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from capstan import eventloop, logs
from capstan.client import ClientTLS
from capstan.grpc_server import TLSConfig

from apiserver.server import Config, run


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="capstan-apiserver",
        description="Serve the capstan API over gRPC; the only component that touches storage.",
    )
    p.add_argument(
        "--listen",
        action="append",
        metavar="ADDR",
        help="host:port or unix:///path to serve on (repeatable; default 127.0.0.1:6443)",
    )
    p.add_argument(
        "--store",
        default="sqlite:///var/lib/capstan/apiserver/state.db",
        help="sqlite:///path.db (embedded, one apiserver) or etcd://host:port[,host:port...]",
    )
    p.add_argument("--service-cidr", default="10.96.0.0/12", help="cluster IP range")
    p.add_argument("--node-port-range", default="30000-32767", help="NodePort range")
    p.add_argument("--tls-cert-file", help="server certificate (PEM)")
    p.add_argument("--tls-key-file", help="server private key (PEM)")
    p.add_argument("--client-ca-file", help="require client certificates signed by this CA")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="serve plaintext on TCP addresses (unix sockets are always plaintext)",
    )
    p.add_argument(
        "--metrics-listen",
        default="127.0.0.1:9090",
        help="host:port for /metrics, /healthz, /readyz ('' disables)",
    )
    p.add_argument(
        "--kubelet-certificate-authority",
        help="CA to verify kubelets' node API certificates (relays of logs/exec/stats use TLS)",
    )
    p.add_argument("--kubelet-client-certificate", help="client certificate for kubelets")
    p.add_argument("--kubelet-client-key", help="client key for kubelets")
    p.add_argument("--log-format", choices=["auto", "console", "json"], default="auto")
    p.add_argument("--log-level", default="info")
    args = p.parse_args(argv)
    tls = None
    if args.tls_cert_file or args.tls_key_file:
        if not (args.tls_cert_file and args.tls_key_file):
            p.error("--tls-cert-file and --tls-key-file go together")
        tls = TLSConfig(args.tls_cert_file, args.tls_key_file, args.client_ca_file)
    elif args.client_ca_file:
        p.error("--client-ca-file needs --tls-cert-file and --tls-key-file")
    if tls is not None:
        _check_pem_files(p, tls)
    listen = args.listen or ["127.0.0.1:6443"]
    if tls is None and not args.insecure and any(not a.startswith("unix:") for a in listen):
        p.error("no TLS certificate given: pass --tls-cert-file/--tls-key-file, or --insecure")
    if args.store.startswith("sqlite://"):
        path = args.store.removeprefix("sqlite://").split("?")[0]
        if path.startswith("/"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    kubelet_tls = None
    if args.kubelet_certificate_authority:
        if bool(args.kubelet_client_certificate) != bool(args.kubelet_client_key):
            p.error("--kubelet-client-certificate and --kubelet-client-key go together")
        kubelet_tls = ClientTLS(
            args.kubelet_certificate_authority,
            args.kubelet_client_certificate,
            args.kubelet_client_key,
        )
    elif args.kubelet_client_certificate or args.kubelet_client_key:
        p.error("--kubelet-client-certificate needs --kubelet-certificate-authority")
    config = Config(
        kubelet_tls=kubelet_tls,
        listen=listen,
        store=args.store,
        service_cidr=args.service_cidr,
        node_port_range=args.node_port_range,
        tls=tls,
        metrics_listen=args.metrics_listen,
    )
    return config, args


def _check_pem_files(p: argparse.ArgumentParser, tls: TLSConfig) -> None:
    """Fail at the command line, naming the flag and file: grpc would only say "Failed to
    bind" (not PEM) or raise a traceback (unreadable file) once the server starts."""
    files = (
        ("--tls-cert-file", tls.cert_file),
        ("--tls-key-file", tls.key_file),
        ("--client-ca-file", tls.client_ca_file),
    )
    for flag, path in files:
        if path is None:
            continue
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            p.error(f"{flag}: cannot read {path}: {e.strerror}")
        if b"-----BEGIN " not in data:
            p.error(f"{flag}: {path} is not a PEM file")


def main(argv: Sequence[str] | None = None) -> int:
    config, args = parse_args(argv)
    logs.configure(args.log_format, args.log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(config, stop)

    eventloop.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
