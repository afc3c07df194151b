"""API errors as gRPC statuses with google.rpc details, shared by server and clients.

The server raises an ApiError anywhere in a request; one place turns it into a status
(code, message, and details: ErrorInfo with the Kubernetes status reason, BadRequest with
field violations). Clients turn a grpc.aio.AioRpcError back into the same exception
type, so `except NotFoundError` reads the same on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from capstan.machinery.violations import FieldViolation

ERROR_DOMAIN = "capstan.dev"


class ApiError(Exception):
    """Base of every error the API answers with on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    # Kubernetes' metav1.StatusReason, carried in ErrorInfo.reason.
    reason: str = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        violations: Iterable[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = list(violations)
        self.metadata = dict(metadata or {})

    def to_status(self) -> status_pb2.Status:
        details: list[Message] = [
            error_details_pb2.ErrorInfo(
                reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
            )
        ]
        if self.violations:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in self.violations
                    ]
                )
            )
        packed = []
        for d in details:
            a = any_pb2.Any()
            a.Pack(d)
            packed.append(a)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return (("grpc-status-details-bin", self.to_status().SerializeToString()),)


class BadRequestError(ApiError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "BadRequest"


class InvalidError(ApiError):
    """The object failed validation; violations name each bad field."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "Invalid"

    @classmethod
    def for_object(cls, kind: str, name: str, violations: Iterable[FieldViolation]) -> InvalidError:
        vs = list(violations)
        listed = "; ".join(str(v) for v in vs)
        return cls(
            f'{kind} "{name}" is invalid: {listed}',
            violations=vs,
            metadata={"kind": kind, "name": name},
        )


class NotFoundError(ApiError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NotFound"

    @classmethod
    def for_object(cls, resource: str, name: str) -> NotFoundError:
        return cls(f'{resource} "{name}" not found', metadata={"resource": resource, "name": name})


class AlreadyExistsError(ApiError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "AlreadyExists"

    @classmethod
    def for_object(cls, resource: str, name: str) -> AlreadyExistsError:
        return cls(
            f'{resource} "{name}" already exists', metadata={"resource": resource, "name": name}
        )


class ConflictError(ApiError):
    """Optimistic concurrency lost: the caller should re-read and retry."""

    code = grpc.StatusCode.ABORTED
    reason = "Conflict"


class ForbiddenError(ApiError):
    """The request is well formed but the cluster state refuses it (terminating
    namespace, quota). FAILED_PRECONDITION: retrying unchanged will not help."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "Forbidden"


class ExpiredError(ApiError):
    """A resource version or continue token older than the history kept: relist."""

    code = grpc.StatusCode.OUT_OF_RANGE
    reason = "Expired"


class TooManyRequestsError(ApiError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "TooManyRequests"


class UnavailableError(ApiError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "ServiceUnavailable"


class TimeoutError_(ApiError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "Timeout"


class InternalError(ApiError):
    code = grpc.StatusCode.INTERNAL
    reason = "InternalError"


class NotImplementedError_(ApiError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "MethodNotAllowed"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (
        BadRequestError,
        InvalidError,
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        ForbiddenError,
        ExpiredError,
        TooManyRequestsError,
        UnavailableError,
        TimeoutError_,
        InternalError,
        NotImplementedError_,
    )
}
_BY_CODE: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: BadRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: ForbiddenError,
    grpc.StatusCode.OUT_OF_RANGE: ExpiredError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooManyRequestsError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: TimeoutError_,
    grpc.StatusCode.UNIMPLEMENTED: NotImplementedError_,
}


def from_status_details(code: grpc.StatusCode, message: str, details_bin: bytes | None) -> ApiError:
    """Rebuild the ApiError a server sent (code, message, grpc-status-details-bin)."""
    cls: type[ApiError] = _BY_CODE.get(code, InternalError)
    violations: list[FieldViolation] = []
    metadata: dict[str, str] = {}
    if details_bin:
        status = status_pb2.Status.FromString(details_bin)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                cls = _BY_REASON.get(info.reason, cls)
                metadata = dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
    err = cls(message, violations=violations, metadata=metadata)
    return err


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    details_bin: bytes | None = None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            details_bin = value
    return from_status_details(error.code(), error.details() or "", details_bin)


# Sanity: our numeric codes agree with google.rpc.Code.
assert grpc.StatusCode.ABORTED.value[0] == code_pb2.ABORTED
