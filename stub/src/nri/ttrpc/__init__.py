"""containerd's ttRPC for asyncio: unary calls, wire-compatible with the Go implementation.

:class:`Client` and the protocols made by :meth:`Server.connection` are plain
:class:`asyncio.Protocol` objects, so they run on any stream transport. The framing and
envelope codec (:class:`MessageDecoder`, ``encode_*``/``decode_*``) does no I/O.
"""

from nri.ttrpc._client import Client, connect_unix
from nri.ttrpc._codec import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FLAG_NO_DATA,
    FLAG_REMOTE_CLOSED,
    FLAG_REMOTE_OPEN,
    HEADER_SIZE,
    MAX_STREAM_ID,
    Message,
    MessageDecoder,
    MessageType,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    encode_response,
)
from nri.ttrpc._errors import (
    ClosedError,
    Code,
    DeadlineExceededError,
    OversizedInboundMessageError,
    OversizedMessageError,
    ProtocolError,
    StatusError,
    TtrpcError,
    status_error,
)
from nri.ttrpc._server import (
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_UNSENT,
    Handler,
    Method,
    Server,
    current_deadline,
    serve_unix,
)

__all__ = [
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_UNSENT",
    "FLAG_NO_DATA",
    "FLAG_REMOTE_CLOSED",
    "FLAG_REMOTE_OPEN",
    "HEADER_SIZE",
    "MAX_STREAM_ID",
    "Client",
    "ClosedError",
    "Code",
    "DeadlineExceededError",
    "Handler",
    "Message",
    "MessageDecoder",
    "MessageType",
    "Method",
    "OversizedInboundMessageError",
    "OversizedMessageError",
    "ProtocolError",
    "Server",
    "StatusError",
    "TtrpcError",
    "connect_unix",
    "current_deadline",
    "decode_request",
    "decode_response",
    "encode_message",
    "encode_request",
    "encode_response",
    "serve_unix",
    "status_error",
]
