"""The gRPC surface: every kind's service built from the kind table, no per-kind handler.

Requests arrive as raw bytes and are parsed here, so malformed input becomes
INVALID_ARGUMENT (grpc's own deserialiser would answer INTERNAL); responses leave as bytes
the registry already serialised (a List is concatenated object bytes, never rebuilt).
Every ApiError becomes its status with google.rpc details; anything else is logged and
answered INTERNAL without leaking Python internals.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import ApiError, InternalError, UnavailableError
from capstan.machinery.kinds import Kind
from capstan.store import StoreUnavailableError
from prometheus_client import Counter, Gauge, Histogram

from apiserver.grpc_parse import parse
from apiserver.registry import Registry
from apiserver.subresources import Subresources

log = structlog.get_logger(__name__)

REQUESTS = Counter(
    "capstan_apiserver_requests_total",
    "API requests by method and status code",
    ["service", "method", "code"],
)
LATENCY = Histogram(
    "capstan_apiserver_request_duration_seconds",
    "API request latency (unary calls)",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WATCHES = Gauge("capstan_apiserver_watches", "Open watch streams", ["service"])

Unary = Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]
Streaming = Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]]


def _to_api_error(e: Exception) -> ApiError:
    if isinstance(e, ApiError):
        return e
    if isinstance(e, StoreUnavailableError):
        return UnavailableError(f"storage is unavailable: {e}")
    log.exception("unhandled error in request", exc_info=e)
    return InternalError(f"internal error: {type(e).__name__}")


def unary(service: str, method: str, fn: Unary) -> grpc.RpcMethodHandler[Any, Any]:
    latency = LATENCY.labels(service, method)

    async def handler(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        start = time.perf_counter()
        try:
            response = await fn(request, context)
        except Exception as e:
            err = _to_api_error(e)
            REQUESTS.labels(service, method, err.code.name).inc()
            await context.abort(err.code, err.message, trailing_metadata=err.trailing_metadata())
            raise AssertionError("abort returned") from None
        latency.observe(time.perf_counter() - start)
        REQUESTS.labels(service, method, "OK").inc()
        return response

    return grpc.unary_unary_rpc_method_handler(handler)


def server_stream(service: str, method: str, fn: Streaming) -> grpc.RpcMethodHandler[Any, Any]:
    gauge = WATCHES.labels(service)

    async def handler(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        gauge.inc()
        err: ApiError | None = None
        try:
            async for item in fn(request, context):
                yield item
        except Exception as e:
            err = _to_api_error(e)
        finally:
            gauge.dec()
        code = err.code.name if err else "OK"
        REQUESTS.labels(service, method, code).inc()
        if err is not None:
            await context.abort(err.code, err.message, trailing_metadata=err.trailing_metadata())

    return grpc.unary_stream_rpc_method_handler(handler)


def watch_stream(service: str, registry: Registry) -> grpc.RpcMethodHandler[Any, Any]:
    """Watch writes straight from the watcher's backlog to the call (context.write): the
    fan-out to many watchers is the hot path, so no generator layers in between."""
    gauge = WATCHES.labels(service)

    async def handler(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        gauge.inc()
        err: ApiError | None = None
        try:
            await registry.watch(parse(meta_pb2.ListOptions, request), context.write)
        except Exception as e:
            err = _to_api_error(e)
        finally:
            gauge.dec()
        REQUESTS.labels(service, "Watch", err.code.name if err else "OK").inc()
        if err is not None:
            await context.abort(err.code, err.message, trailing_metadata=err.trailing_metadata())

    return grpc.unary_stream_rpc_method_handler(handler)


def stream_stream(
    service: str,
    method: str,
    fn: Callable[[AsyncIterator[bytes], grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]],
) -> grpc.RpcMethodHandler[Any, Any]:
    async def handler(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        err: ApiError | None = None
        try:
            async for item in fn(requests, context):
                yield item
        except Exception as e:
            err = _to_api_error(e)
        REQUESTS.labels(service, method, err.code.name if err else "OK").inc()
        if err is not None:
            await context.abort(err.code, err.message, trailing_metadata=err.trailing_metadata())

    return grpc.stream_stream_rpc_method_handler(handler)


def kind_handler(
    kind: Kind, registry: Registry, subresources: Subresources
) -> grpc.GenericRpcHandler:
    """All methods of one kind's service, from its table row."""
    svc = kind.service
    msg = kind.message

    async def create(req: bytes, _: Any) -> bytes:
        return (await registry.create(parse(msg, req))).data

    async def get(req: bytes, _: Any) -> bytes:
        r = parse(meta_pb2.GetRequest, req)
        return (await registry.get(r.namespace, r.name)).data

    async def list_(req: bytes, _: Any) -> bytes:
        return await registry.list(parse(meta_pb2.ListOptions, req))

    async def update(req: bytes, _: Any) -> bytes:
        return (await registry.update(parse(msg, req))).data

    async def update_status(req: bytes, _: Any) -> bytes:
        return (await registry.update(parse(msg, req), status_only=True)).data

    async def delete(req: bytes, _: Any) -> bytes:
        return (await registry.delete(parse(meta_pb2.DeleteRequest, req))).data

    methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Create": unary(svc, "Create", create),
        "Get": unary(svc, "Get", get),
        "List": unary(svc, "List", list_),
        "Update": unary(svc, "Update", update),
        "Delete": unary(svc, "Delete", delete),
        "Watch": watch_stream(svc, registry),
    }
    if kind.has_status:
        methods["UpdateStatus"] = unary(svc, "UpdateStatus", update_status)
    for name, handler in subresources.handlers(kind, registry).items():
        kind_of = handler[0]
        if kind_of == "unary":
            methods[name] = unary(svc, name, handler[1])
        elif kind_of == "server_stream":
            methods[name] = server_stream(svc, name, handler[1])
        else:
            methods[name] = stream_stream(svc, name, handler[1])
    return grpc.method_handlers_generic_handler(svc, methods)
