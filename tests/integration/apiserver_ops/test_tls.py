"""TLS and mutual TLS on the apiserver's gRPC port, and the refusal to serve plaintext
on TCP unless asked to. Certificates come from the openssl CLI (throwaway CA)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from capstan.api.core.v1 import core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.apiserver_ops.ops import apiserver_with_args, open_channel

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed"),
]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # A client certificate from a CA the server does not trust.
    rogue_cert: Path
    rogue_key: Path

    def credentials(self, *, client: str = "") -> grpc.ChannelCredentials:
        cert = {"": None, "good": self.client_cert, "rogue": self.rogue_cert}[client]
        key = {"": None, "good": self.client_key, "rogue": self.rogue_key}[client]
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=key.read_bytes() if key else None,
            certificate_chain=cert.read_bytes() if cert else None,
        )


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "1", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign",
    )  # fmt: skip
    return cert, key


def _leaf(d: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr, cert, extfile = (d / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
    extfile.write_text(ext)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "1", "-extfile", extfile,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = _ca(d, "capstan-test-ca")
    rogue_ca = _ca(d, "rogue-ca")
    server = _leaf(
        d,
        "capstan-apiserver",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client = _leaf(d, "capstan-admin", ca, "extendedKeyUsage=clientAuth\n")
    rogue = _leaf(d, "intruder", rogue_ca, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[0], server[0], server[1], client[0], client[1], rogue[0], rogue[1])


def _server_args(tmp_path: Path, pki: Pki, *extra: str) -> list[str]:
    return [
        "--store", f"sqlite://{tmp_path / 'state.db'}",
        "--metrics-listen", "",
        "--log-format", "json",
        "--tls-cert-file", str(pki.server_cert),
        "--tls-key-file", str(pki.server_key),
        *extra,
    ]  # fmt: skip


async def _works(address: str, credentials: grpc.ChannelCredentials | None) -> bool:
    """A real API call (not only a handshake) succeeds over these credentials."""
    async with open_channel(address, credentials) as ch:
        try:
            health = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
            listed = await core_pb2_grpc.NamespacesStub(ch).List(meta_pb2.ListOptions(), timeout=3)
        except grpc.aio.AioRpcError as e:
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), e
            return False
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "default" in {ns.metadata.name for ns in listed.items}
    return True


async def test_tls_serves_trusting_clients_only(tmp_path: Path, pki: Pki) -> None:
    async with apiserver_with_args(
        _server_args(tmp_path, pki), credentials=pki.credentials(), log_path=tmp_path / "log"
    ) as (address, _):
        assert await _works(address, pki.credentials())
        assert not await _works(address, None), "plaintext client got an answer"
        untrusting = grpc.ssl_channel_credentials(root_certificates=pki.rogue_cert.read_bytes())
        assert not await _works(address, untrusting)


async def test_mtls_requires_a_client_certificate_from_the_ca(tmp_path: Path, pki: Pki) -> None:
    args = _server_args(tmp_path, pki, "--client-ca-file", str(pki.ca))
    async with apiserver_with_args(
        args, credentials=pki.credentials(client="good"), log_path=tmp_path / "log"
    ) as (address, _):
        assert await _works(address, pki.credentials(client="good"))
        assert not await _works(address, pki.credentials()), "client without a cert got in"
        assert not await _works(address, pki.credentials(client="rogue"))
        assert not await _works(address, None)


async def _run_cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "--insecure", id="no-tls-no-insecure"),
        pytest.param(["--client-ca-file", "ca.crt"], "--tls-cert-file", id="ca-without-cert"),
        pytest.param(["--tls-cert-file", "server.crt"], "--tls-key-file", id="cert-without-key"),
        pytest.param(
            ["--tls-cert-file", "missing.crt", "--tls-key-file", "missing.key"],
            "missing.crt",
            id="unreadable-cert",
        ),
        pytest.param(
            ["--tls-cert-file", "garbage.pem", "--tls-key-file", "garbage.pem"],
            "garbage.pem",
            id="not-pem",
        ),
    ],
)
async def test_refuses_to_start_without_usable_tls(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    resolved = [str(tmp_path / a) if a.endswith((".crt", ".pem")) else a for a in args]
    code, out = await _run_cli(
        "--listen", "127.0.0.1:0", "--store", f"sqlite://{tmp_path / 'state.db'}",
        "--metrics-listen", "", *resolved,
    )  # fmt: skip
    assert code != 0
    assert message in out
    assert "Traceback" not in out, out
    assert not (tmp_path / "state.db").exists(), "refused to start, yet created the store"
