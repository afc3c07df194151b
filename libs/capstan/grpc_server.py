"""gRPC server bootstrap shared by every daemon that serves gRPC (apiserver, kubelet):
listen addresses (TCP or unix sockets), TLS/mTLS, server reflection, the standard health
service and message-size limits large enough for big lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

MAX_MESSAGE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class TLSConfig:
    cert_file: str
    key_file: str
    # When set, clients must present a certificate signed by this CA (mTLS).
    client_ca_file: str | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        key = Path(self.key_file).read_bytes()
        cert = Path(self.cert_file).read_bytes()
        ca = Path(self.client_ca_file).read_bytes() if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )


def channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


class GrpcServer:
    def __init__(
        self,
        listen: Sequence[str],
        handlers: Sequence[grpc.GenericRpcHandler],
        service_names: Sequence[str],
        tls: TLSConfig | None,
    ) -> None:
        self.server = grpc.aio.server(
            options=[
                *channel_options(),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.so_reuseport", 0),
            ]
        )
        self.server.add_generic_rpc_handlers(tuple(handlers))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.service_names = list(service_names)
        self.ports: list[int] = []
        for address in listen:
            if tls is not None and not address.startswith("unix:"):
                port = self.server.add_secure_port(address, tls.server_credentials())
            else:
                port = self.server.add_insecure_port(address)
            self.ports.append(port)

    async def start(self) -> None:
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)
