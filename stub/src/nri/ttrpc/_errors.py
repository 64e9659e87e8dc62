"""Status codes and exceptions of the ttRPC layer."""

from __future__ import annotations

import enum

__all__ = [
    "ClosedError",
    "Code",
    "DeadlineExceededError",
    "OversizedInboundMessageError",
    "OversizedMessageError",
    "ProtocolError",
    "StatusError",
    "TtrpcError",
    "status_error",
]


class Code(enum.IntEnum):
    """The gRPC status codes, as carried in ``Status.code`` of a ttRPC response."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @property
    def go_name(self) -> str:
        """The name Go's ``codes.Code.String()`` gives, e.g. ``"DeadlineExceeded"``."""
        if self is Code.OK:
            return "OK"
        if self is Code.CANCELLED:
            return "Canceled"  # Go's spelling
        return "".join(part.capitalize() for part in self.name.split("_"))


class TtrpcError(Exception):
    """Base class of every error raised by :mod:`nri.ttrpc`."""


class StatusError(TtrpcError):
    """A call ended with a non-OK status, sent by the peer or produced locally.

    Handlers raise it to answer with a specific code; clients receive it.
    ``str()`` matches the text of a Go ``status.Error``.
    """

    code: Code
    message: str

    def __init__(self, code: Code, message: str = "") -> None:
        super().__init__(message)
        self.code = Code(code)
        self.message = message

    def __str__(self) -> str:
        return f"rpc error: code = {self.code.go_name} desc = {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r})"


class DeadlineExceededError(StatusError, TimeoutError):
    """The call's deadline passed (locally, or as reported by the peer)."""

    def __init__(self, message: str = "context deadline exceeded") -> None:
        super().__init__(Code.DEADLINE_EXCEEDED, message)


class ClosedError(TtrpcError, ConnectionError):
    """The connection is closed or was lost; the message names the reason."""


class ProtocolError(TtrpcError):
    """The peer sent bytes that are not valid ttRPC."""


class OversizedMessageError(TtrpcError):
    """A message is longer than the maximum message size."""

    length: int
    limit: int

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"message length {length} exceeds maximum message size of {limit}")
        self.length = length
        self.limit = limit


class OversizedInboundMessageError(OversizedMessageError):
    """The peer announced a message longer than the limit.

    The decoder skips its body without buffering it; ``stream_id`` lets the receiver
    answer the offending stream (a server answers ``RESOURCE_EXHAUSTED``).
    """

    stream_id: int
    message_type: int
    flags: int

    def __init__(
        self, stream_id: int, message_type: int, flags: int, length: int, limit: int
    ) -> None:
        super().__init__(length, limit)
        self.stream_id = stream_id
        self.message_type = message_type
        self.flags = flags


def status_error(code: int, message: str) -> StatusError:
    """Build the exception for a non-OK status; unknown code values map to ``UNKNOWN``."""
    if code == Code.DEADLINE_EXCEEDED:
        return DeadlineExceededError(message)
    try:
        known = Code(code)
    except ValueError:
        return StatusError(Code.UNKNOWN, f"{message} (status code {code})")
    return StatusError(known, message)
