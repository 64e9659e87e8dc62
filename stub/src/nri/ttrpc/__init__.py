"""containerd's ttRPC for asyncio: unary calls, wire-compatible with the Go implementation.

:class:`Client` and the protocols made by :meth:`Server.connection` are plain
:class:`asyncio.Protocol` objects, so they run on any stream transport. The framing and
envelope codec (:class:`MessageDecoder`, ``encode_*``/``decode_*``) does no I/O.

Request metadata
    Every request envelope can carry :class:`Metadata`: string keys (lowercased, as
    containerd/ttrpc does) with one or more values each. :meth:`Client.call` sends it with
    ``metadata=``; a handler reads the request's own with :func:`current_metadata`.

Interceptors
    An :data:`Interceptor` is ``async def (info, request, metadata, call_next)``, returning
    the response. ``Client(interceptors=...)`` and ``Server(interceptors=...)`` run theirs
    around every call, the first one given outermost; :class:`nri.stub.Stub` and the
    adaptation's plugin connection take ``server_interceptors`` and ``client_interceptors``.

Trace context
    containerd and CRI-O send the W3C ``traceparent``/``tracestate`` of a call in its
    metadata. :func:`server_trace_interceptor` makes it the handler's
    :func:`current_trace_context`; :func:`client_trace_interceptor` sends the current one
    (set with :func:`use_trace_context`) on the calls a handler makes, so the trace
    continues. With ``opentelemetry-api`` installed (extra ``nri[otel]``) the remote span
    also becomes the current OpenTelemetry context, and an active OpenTelemetry span is
    what the client sends.

Reading the trace context of received metadata::

    >>> from nri.ttrpc import Metadata, TraceContext
    >>> tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    >>> TraceContext.from_metadata(Metadata({"TraceParent": tp})).traceparent == tp
    True

The top-level README (section "Trace context") has a complete client and server.
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
    request_metadata,
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
from nri.ttrpc._interceptors import CallInfo, Interceptor, Next, chain_interceptors
from nri.ttrpc._metadata import Metadata
from nri.ttrpc._server import (
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_UNSENT,
    Handler,
    Method,
    Server,
    current_deadline,
    current_metadata,
    serve_unix,
)
from nri.ttrpc._tracecontext import (
    TRACEPARENT,
    TRACESTATE,
    TraceContext,
    client_trace_interceptor,
    current_trace_context,
    server_trace_interceptor,
    use_trace_context,
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
    "TRACEPARENT",
    "TRACESTATE",
    "CallInfo",
    "Client",
    "ClosedError",
    "Code",
    "DeadlineExceededError",
    "Handler",
    "Interceptor",
    "Message",
    "MessageDecoder",
    "MessageType",
    "Metadata",
    "Method",
    "Next",
    "OversizedInboundMessageError",
    "OversizedMessageError",
    "ProtocolError",
    "Server",
    "StatusError",
    "TraceContext",
    "TtrpcError",
    "chain_interceptors",
    "client_trace_interceptor",
    "connect_unix",
    "current_deadline",
    "current_metadata",
    "current_trace_context",
    "decode_request",
    "decode_response",
    "encode_message",
    "encode_request",
    "encode_response",
    "request_metadata",
    "serve_unix",
    "server_trace_interceptor",
    "status_error",
    "use_trace_context",
]
