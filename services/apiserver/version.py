"""capstan.meta.v1.Version: what this apiserver runs, for `capstan version`."""

from __future__ import annotations

import platform
import sys
from typing import Any

import capstan
import grpc
from capstan.api.meta.v1 import meta_pb2

SERVICE = "capstan.meta.v1.Version"


def version_info(store_url: str) -> meta_pb2.VersionInfo:
    major, minor, *_ = capstan.__version__.split(".")
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return meta_pb2.VersionInfo(
        major=major,
        minor=minor,
        git_version=f"v{capstan.__version__}",
        platform=f"{sys.platform}/{machine}",
        python_version=platform.python_version(),
        grpc_version=grpc.__version__,
        store=store_url.partition("://")[0],
    )


def version_handler(store_url: str) -> grpc.GenericRpcHandler:
    data = version_info(store_url).SerializeToString()

    async def get(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return data

    return grpc.method_handlers_generic_handler(
        SERVICE, {"Get": grpc.unary_unary_rpc_method_handler(get)}
    )
