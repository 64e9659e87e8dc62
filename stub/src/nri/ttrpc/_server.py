"""ttRPC server: services of unary methods, one :class:`asyncio.Protocol` per connection."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from nri.ttrpc import ttrpc_pb2
from nri.ttrpc._codec import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MessageDecoder,
    MessageType,
    decode_request,
    encode_message,
    encode_response,
    request_metadata,
)
from nri.ttrpc._deadlines import Deadlines
from nri.ttrpc._errors import (
    Code,
    OversizedInboundMessageError,
    OversizedMessageError,
    ProtocolError,
    StatusError,
)
from nri.ttrpc._interceptors import CallInfo, Interceptor, chain_interceptors
from nri.ttrpc._metadata import Metadata

__all__ = [
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_MAX_UNSENT",
    "Handler",
    "Method",
    "Server",
    "current_deadline",
    "current_metadata",
    "serve_unix",
]

#: Handlers that may run at once per connection before the server stops reading it.
DEFAULT_MAX_CONCURRENT_REQUESTS = 64
#: Bytes of unsent replies on a connection above which the server stops reading it.
DEFAULT_MAX_UNSENT = 1 << 20

Handler = Callable[[ProtoMessage], Awaitable[ProtoMessage] | ProtoMessage]
"""A unary method: takes the decoded request message, returns the response message (or an
awaitable of it)."""

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "nri_ttrpc_deadline", default=None
)


_metadata: contextvars.ContextVar[Metadata | None] = contextvars.ContextVar(
    "nri_ttrpc_metadata", default=None
)


def current_deadline() -> float | None:
    """Deadline of the request being handled, in event-loop time (``None``: no deadline)."""
    return _deadline.get()


def current_metadata() -> Metadata:
    """Metadata of the request being handled (empty outside a handler or when none was sent).

    It is the handler's own copy: changing it affects nothing else.
    """
    md = _metadata.get()
    return Metadata() if md is None else md


ReqT = TypeVar("ReqT", bound=ProtoMessage)


@dataclass(frozen=True)
class Method(Generic[ReqT]):
    """A unary method: the request message type and its handler.

    The handler gets a ``request_type`` message decoded from the request payload and
    returns the response message, or an awaitable of it (e.g. it is an ``async def``),
    which then runs in its own task. A handler that returns the message itself runs right
    as the request arrives: it saves a task and an event-loop iteration, and it cannot be
    cancelled at its deadline.
    """

    request_type: type[ReqT]
    handler: Callable[[ReqT], Awaitable[ProtoMessage] | ProtoMessage]


class Server:
    """Dispatches ttRPC requests to registered services.

    One :class:`Server` can serve many connections: use :meth:`connection` as the
    protocol factory of a transport (e.g. ``loop.create_unix_server(server.connection,
    path)``, or a virtual connection of the NRI multiplexer).
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
        max_unsent: int = DEFAULT_MAX_UNSENT,
        logger: logging.Logger | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        """Create a server.

        ``interceptors`` run around every handler, the first one outermost (see
        :data:`~nri.ttrpc.Interceptor`); with any, every handler runs in its own task.

        Per connection, reading stops while ``max_concurrent_requests`` handlers run (or
        their requests add up to ``max_message_size`` bytes) and while more than
        ``max_unsent`` bytes of replies wait to be sent, so a peer that floods requests or
        does not read its replies cannot make the server buffer without bound; the
        transport then holds what arrives (a mux conn's queue is bounded and overflows).
        """
        MessageDecoder(max_message_size)  # validates the limit
        if max_concurrent_requests < 1:
            raise ValueError(
                f"max_concurrent_requests must be at least 1, got {max_concurrent_requests}"
            )
        if max_unsent < 0:
            raise ValueError(f"max_unsent must not be negative, got {max_unsent}")
        self._max = max_message_size
        self._max_concurrent = max_concurrent_requests
        self._max_unsent = max_unsent
        self._logger = logger or logging.getLogger("nri.ttrpc.server")
        self._interceptors = tuple(interceptors)
        self._services: dict[str, Mapping[str, Method[Any]]] = {}
        self._connections: set[_ServerConnection] = set()
        self._listeners: list[asyncio.Server] = []
        self._closing = False

    @property
    def is_closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def register(self, service: str, methods: Mapping[str, Method[Any]]) -> None:
        """Register the ``methods`` of ``service`` (full name, e.g. ``"pkg.v1.Plugin"``)."""
        if service in self._services:
            raise ValueError(f"duplicate service {service!r} registered")
        for name, method in methods.items():
            if not isinstance(method, Method):
                raise TypeError(f"method {service}/{name} must be a Method, got {method!r}")
        self._services[service] = MappingProxyType(dict(methods))

    def connection(self) -> asyncio.Protocol:
        """Return a new server-side protocol for one transport."""
        return _ServerConnection(self)

    def add_listener(self, listener: asyncio.Server) -> None:
        """Let :meth:`close` also close ``listener`` (done by :func:`serve_unix`)."""
        self._listeners.append(listener)

    async def close(self, grace: float | None = None) -> None:
        """Stop serving gracefully.

        Listeners stop accepting and new requests are refused with ``UNAVAILABLE``;
        in-flight handlers get up to ``grace`` seconds (``None``: no limit) to finish,
        then they are cancelled; finally every connection is closed.
        """
        self._closing = True
        for listener in self._listeners:
            listener.close()
        tasks = [t for conn in self._connections for t in conn.tasks]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for conn in list(self._connections):
            conn.close()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()


class _ServerConnection(asyncio.Protocol):
    """Server side of one ttRPC connection."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._log = server._logger
        self._decoder = MessageDecoder(server._max)
        self._transport: asyncio.Transport | None = None
        self._last_stream_id = 0
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._lost = False
        # Running requests with a deadline, by stream id; the late ones are cancelled (this
        # is cheaper than an asyncio.timeout per request) and noted in _expired.
        self._deadlines: Deadlines[int] = Deadlines(self._expire)
        self._expired: set[int] = set()
        # Why reading is paused ("busy": too many handlers, "unsent": peer not reading).
        self._paused: set[str] = set()
        self._drain_scheduled = False
        self._inflight_bytes = 0

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any stream transport works (a socket, or a multiplexer's virtual connection).
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        if self._server._closing:
            transport.close()
            return
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._server._connections.discard(self)
        if exc is not None:
            self._log.debug("ttrpc connection lost: %s", exc)
        self._deadlines.close()
        for task in self._tasks.values():
            task.cancel()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- flow control ----------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's buffer is above its high-water mark (see :meth:`_write`)."""

    def resume_writing(self) -> None:
        """The transport's buffer drained below its low-water mark."""
        self._resume("unsent")

    def _pause(self, reason: str) -> None:
        if not self._paused and self._transport is not None:
            self._log.debug("ttrpc: pausing reading (%s)", reason)
            # A transport without flow control still gets its messages decoded later.
            with contextlib.suppress(NotImplementedError):
                self._transport.pause_reading()
        self._paused.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and not self._drain_scheduled and not self._lost:
            # Not from inside a handler's callback: messages still buffered go first.
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        if self._paused or self._lost or self._transport is None:
            return
        self._process()
        if not self._paused and not self._transport.is_closing():
            with contextlib.suppress(NotImplementedError):
                self._transport.resume_reading()

    # -- receiving -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._lost:
            return
        decoder = self._decoder
        if not self._paused:
            whole = decoder.take_whole(data)
            if whole is not None:
                self._received(*whole)
                return
        decoder.feed(data)
        self._process()

    def _process(self) -> None:
        """Handle the buffered messages until none is left or reading gets paused."""
        decoder = self._decoder
        while not self._paused:
            try:
                msg = decoder.next_message()
            except OversizedInboundMessageError as exc:
                self._log.warning("refusing oversized message on stream %d: %s", exc.stream_id, exc)
                self._send_status(
                    exc.stream_id,
                    Code.RESOURCE_EXHAUSTED,
                    f"message length {exc.length} exceed maximum message size of {exc.limit}",
                )
                continue
            if msg is None:
                return
            self._received(msg.stream_id, msg.type, msg.data)
            if self._transport is not None and self._transport.is_closing():
                return  # a plain handler closed the connection: nothing after it can be answered

    def _received(self, sid: int, mtype: MessageType, data: bytes) -> None:
        if sid % 2 != 1:
            self._send_status(
                sid,
                Code.INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams",
            )
        elif mtype is MessageType.REQUEST:
            if sid <= self._last_stream_id:
                self._send_status(
                    sid,
                    Code.INVALID_ARGUMENT,
                    "StreamID cannot be re-used and must increment",
                )
                return
            self._last_stream_id = sid
            self._dispatch(sid, data)
        elif mtype is MessageType.DATA:
            # Only unary methods exist here, so no stream ever takes data.
            self._send_status(sid, Code.INVALID_ARGUMENT, "StreamID is no longer active")
        # Responses sent to a server are ignored, as upstream does.

    def _dispatch(self, sid: int, data: bytes) -> None:
        try:
            req = decode_request(data)
        except ProtocolError as exc:
            self._send_status(sid, Code.INVALID_ARGUMENT, f"unmarshal request error: {exc}")
            return
        server = self._server
        if server._closing:
            self._send_status(sid, Code.UNAVAILABLE, "ttrpc: server closed")
            return
        service = server._services.get(req.service)
        if service is None:
            self._send_status(sid, Code.UNIMPLEMENTED, f"service {req.service}")
            return
        method = service.get(req.method)
        if method is None:
            self._send_status(sid, Code.UNIMPLEMENTED, f"method {req.method}")
            return
        request = method.request_type()
        try:
            request.ParseFromString(req.payload)
        except DecodeError as exc:
            self._send_status(sid, Code.INTERNAL, f"ttrpc: error unmarshalling payload: {exc}")
            return
        loop = asyncio.get_running_loop()
        deadline = None
        if req.timeout_nano:
            deadline = loop.time() + req.timeout_nano / 1e9
        metadata = request_metadata(req) if req.metadata else None
        token = _deadline.set(deadline)
        md_token = _metadata.set(metadata)
        try:
            if server._interceptors:
                outcome: object = _intercepted(
                    server._interceptors, req, method.handler, request, metadata
                )
            else:
                outcome = method.handler(request)
        except asyncio.CancelledError:
            self._log.warning("ttrpc: %s/%s was cancelled", req.service, req.method)
            self._respond(sid, req, (Code.CANCELLED, "context canceled", b""))
            return
        except Exception as exc:
            self._respond(sid, req, self._failure(req, exc))
            return
        finally:
            _metadata.reset(md_token)
            _deadline.reset(token)
        if isinstance(outcome, ProtoMessage) or not inspect.isawaitable(outcome):
            self._respond(sid, req, self._success(req, outcome))
            return
        task = loop.create_task(
            self._run(
                sid=sid,
                call=req,
                outcome=outcome,
                deadline=deadline,
                metadata=metadata,
                size=len(data),
            )
        )
        if inspect.iscoroutine(outcome):
            # A task cancelled before its first step never awaits the handler's coroutine.
            task.add_done_callback(_closer(outcome))
        self._tasks[sid] = task
        self._inflight_bytes += len(data)
        if len(self._tasks) >= server._max_concurrent or self._inflight_bytes >= server._max:
            self._pause("busy")
        if deadline is not None:
            self._deadlines.add(sid, deadline)

    def _expire(self, sid: int) -> None:
        task = self._tasks.get(sid)
        if task is not None and not task.done():
            self._expired.add(sid)
            task.cancel()

    async def _run(
        self,
        *,
        sid: int,
        call: ttrpc_pb2.Request,
        outcome: Awaitable[object],
        deadline: float | None,
        metadata: Metadata | None,
        size: int,
    ) -> None:
        try:
            _deadline.set(deadline)
            _metadata.set(metadata)
            answer = await self._await(sid, call, outcome)
            if not self._lost:
                self._respond(sid, call, answer)
        finally:
            self._tasks.pop(sid, None)
            self._deadlines.discard(sid)
            self._expired.discard(sid)
            self._inflight_bytes -= size
            if len(self._tasks) < self._server._max_concurrent and (
                self._inflight_bytes < self._server._max or not self._tasks
            ):
                self._resume("busy")

    async def _await(
        self, sid: int, call: ttrpc_pb2.Request, outcome: Awaitable[object]
    ) -> tuple[int, str, bytes]:
        """Wait for an asynchronous handler; return the (code, message, payload) to answer."""
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        expired = converted = False
        try:
            try:
                response = await outcome
            finally:
                if sid in self._expired:
                    # Take back the deadline's cancellation, as asyncio.timeout does.
                    self._expired.discard(sid)
                    expired = True
                    converted = task.uncancel() <= cancelling
        except StatusError as exc:
            return self._failure(call, exc)
        except asyncio.CancelledError:
            if converted:
                self._log.warning(
                    "ttrpc: %s/%s cancelled at its deadline", call.service, call.method
                )
                return Code.DEADLINE_EXCEEDED, "context deadline exceeded", b""
            if self._lost or task.cancelling():
                raise
            self._log.warning("ttrpc: %s/%s was cancelled", call.service, call.method)
            return Code.CANCELLED, "context canceled", b""
        except TimeoutError as exc:
            if expired:
                self._log.warning(
                    "ttrpc: %s/%s cancelled at its deadline", call.service, call.method
                )
                return Code.DEADLINE_EXCEEDED, "context deadline exceeded", b""
            return self._failure(call, exc)
        except Exception as exc:
            return self._failure(call, exc)
        return self._success(call, response)

    def _failure(self, call: ttrpc_pb2.Request, exc: Exception) -> tuple[int, str, bytes]:
        """The answer to a handler that raised ``exc``."""
        if isinstance(exc, StatusError):
            self._log.info("ttrpc: %s/%s failed: %s", call.service, call.method, exc)
            return exc.code, exc.message, b""
        self._log.error("ttrpc: %s/%s raised %r", call.service, call.method, exc, exc_info=exc)
        return Code.UNKNOWN, str(exc) or type(exc).__name__, b""

    def _success(self, call: ttrpc_pb2.Request, response: object) -> tuple[int, str, bytes]:
        """The answer to a handler that returned ``response``."""
        if not isinstance(response, ProtoMessage):
            self._log.error(
                "ttrpc: %s/%s returned %s, not a protobuf message",
                call.service,
                call.method,
                type(response).__name__,
            )
            return (
                Code.INTERNAL,
                f"ttrpc: error unsupported response type: {type(response).__name__}",
                b"",
            )
        return Code.OK, "", response.SerializeToString()

    def _respond(self, sid: int, call: ttrpc_pb2.Request, answer: tuple[int, str, bytes]) -> None:
        code, message, payload = answer
        try:
            frame = encode_message(
                sid,
                MessageType.RESPONSE,
                encode_response(code, message, payload),
                max_message_size=self._server._max,
            )
        except OversizedMessageError as exc:
            self._log.error(
                "ttrpc: response of %s/%s is too large: %s", call.service, call.method, exc
            )
            frame = encode_message(
                sid,
                MessageType.RESPONSE,
                encode_response(Code.RESOURCE_EXHAUSTED, str(exc), b""),
            )
        self._write(frame)

    def _send_status(self, sid: int, code: Code, message: str) -> None:
        # Even a bad stream id is answered on that id, so the client knows which failed.
        self._write(encode_message(sid, MessageType.RESPONSE, encode_response(code, message, b"")))

    def _write(self, frame: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(frame)
            # Above the high-water mark the transport has called pause_writing and will
            # call resume_writing once drained; past max_unsent stop taking new requests.
            try:
                size = transport.get_write_buffer_size()
                if (
                    size > self._server._max_unsent
                    and size > transport.get_write_buffer_limits()[1]
                ):
                    self._pause("unsent")
            except NotImplementedError:
                pass  # a transport without flow control


async def _intercepted(
    interceptors: Sequence[Interceptor],
    req: ttrpc_pb2.Request,
    handler: Callable[[Any], Awaitable[ProtoMessage] | ProtoMessage],
    request: ProtoMessage,
    metadata: Metadata | None,
) -> ProtoMessage:
    """Run ``handler`` through the server's interceptors."""

    async def final(request: ProtoMessage, metadata: Metadata) -> ProtoMessage:
        _metadata.set(metadata)
        outcome = handler(request)
        if not isinstance(outcome, ProtoMessage) and inspect.isawaitable(outcome):
            return await outcome
        return outcome  # anything but a message is refused by _success

    call = chain_interceptors(interceptors, CallInfo(req.service, req.method), final)
    return await call(request, Metadata() if metadata is None else metadata)


def _closer(coro: Coroutine[Any, Any, object]) -> Callable[[object], None]:
    def close(_: object) -> None:
        coro.close()

    return close


async def serve_unix(server: Server, path: str) -> asyncio.Server:
    """Serve ``server`` on a new unix socket at ``path``; :meth:`Server.close` closes it."""
    loop = asyncio.get_running_loop()
    listener = await loop.create_unix_server(server.connection, path)
    server.add_listener(listener)
    return listener
