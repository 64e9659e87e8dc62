"""ttRPC client: an :class:`asyncio.Protocol` making unary calls over any transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from nri.ttrpc._codec import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_STREAM_ID,
    MessageDecoder,
    MessageType,
    decode_response,
    encode_message,
    encode_request,
)
from nri.ttrpc._deadlines import Deadlines
from nri.ttrpc._errors import (
    ClosedError,
    Code,
    DeadlineExceededError,
    OversizedInboundMessageError,
    ProtocolError,
    StatusError,
    TtrpcError,
    status_error,
)
from nri.ttrpc._interceptors import CallInfo, Interceptor, chain_interceptors
from nri.ttrpc._metadata import Metadata

__all__ = ["Client", "connect_unix"]

logger = logging.getLogger("nri.ttrpc.client")

M = TypeVar("M", bound=ProtoMessage)


class Client(asyncio.Protocol):
    """Client side of one ttRPC connection.

    Use it as the protocol of any stream transport (a unix socket, or a virtual
    connection of the NRI multiplexer); then :meth:`call` concurrently. ``interceptors``
    run around every call, the first one outermost (see :data:`~nri.ttrpc.Interceptor`).
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self._interceptors = tuple(interceptors)
        self._decoder = MessageDecoder(max_message_size)
        self._max = max_message_size
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        # Calls with a timeout, keyed by (stream id, service, method, timeout).
        self._deadlines: Deadlines[tuple[int, str, str, float]] = Deadlines(self._expire)
        self._next_id = 1
        self._closed_reason: str | None = None
        self._lost: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start using ``transport`` (a stream transport)."""
        # Any stream transport works (a socket, or a multiplexer's virtual connection).
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._lost = asyncio.get_running_loop().create_future()
        if self._closed_reason is not None:
            transport.close()

    def data_received(self, data: bytes) -> None:
        """Feed received bytes; complete the calls whose responses arrived."""
        decoder = self._decoder
        whole = decoder.take_whole(data)
        if whole is not None:
            self._received(*whole)
            return
        decoder.feed(data)
        while True:
            try:
                msg = decoder.next_message()
            except OversizedInboundMessageError as exc:
                fut = self._pending.pop(exc.stream_id, None)
                logger.warning("dropping oversized message on stream %d: %s", exc.stream_id, exc)
                if fut is not None and not fut.done():
                    fut.set_exception(StatusError(Code.RESOURCE_EXHAUSTED, str(exc.args[0])))
                continue
            if msg is None:
                return
            self._received(msg.stream_id, msg.type, msg.data)

    def _received(self, stream_id: int, mtype: MessageType, data: bytes) -> None:
        if mtype is not MessageType.RESPONSE:
            logger.debug("ignoring %s message on stream %d", mtype.name, stream_id)
            return
        fut = self._pending.pop(stream_id, None)
        if fut is None or fut.done():
            logger.debug("dropping response for unknown stream %d", stream_id)
            return
        fut.set_result(data)

    def eof_received(self) -> bool | None:
        """The peer closed its side: let the transport close."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail every pending call with :class:`ClosedError`."""
        if self._closed_reason is None:
            self._closed_reason = (
                f"ttrpc connection lost: {exc}" if exc else "ttrpc connection closed by peer"
            )
        self._fail_pending()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    # public API

    @property
    def is_closed(self) -> bool:
        """Whether the client was closed or its connection is gone."""
        return self._closed_reason is not None

    def close(self) -> None:
        """Close the connection; pending calls fail with :class:`ClosedError`."""
        if self._closed_reason is None:
            self._closed_reason = "ttrpc client closed"
        self._fail_pending()
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        """Wait until the transport has been closed (returns at once if never connected)."""
        if self._lost is not None:
            await asyncio.shield(self._lost)

    async def call(
        self,
        service: str,
        method: str,
        request: ProtoMessage,
        response_type: type[M],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (also sent on the wire)
        metadata: Metadata | None = None,
    ) -> M:
        """Call ``service``/``method`` with ``request``; return the decoded response.

        ``metadata`` is sent in the request envelope (the client's interceptors get a copy
        they may change).

        ``timeout`` (seconds) is sent to the server as the request's remaining time and
        enforced locally with :class:`DeadlineExceededError`. A non-OK status raises
        :class:`StatusError`; a closed or lost connection raises :class:`ClosedError`; a
        request over the size limit raises :class:`OversizedMessageError` before
        anything is written.
        """
        if not self._interceptors:
            return await self._invoke(
                service, method, request, response_type, timeout=timeout, metadata=metadata
            )

        async def final(request: ProtoMessage, metadata: Metadata) -> ProtoMessage:
            return await self._invoke(
                service, method, request, response_type, timeout=timeout, metadata=metadata
            )

        call = chain_interceptors(self._interceptors, CallInfo(service, method), final)
        md = Metadata() if metadata is None else metadata.copy()
        result = await call(request, md)
        if not isinstance(result, response_type):
            raise TypeError(
                f"an interceptor of {service}/{method} returned {type(result).__name__}, "
                f"not {response_type.__name__}"
            )
        return result

    async def _invoke(
        self,
        service: str,
        method: str,
        request: ProtoMessage,
        response_type: type[M],
        *,
        timeout: float | None,  # noqa: ASYNC109
        metadata: Metadata | None,
    ) -> M:
        if self._closed_reason is not None:
            raise ClosedError(self._closed_reason)
        transport = self._transport
        if transport is None:
            raise ClosedError("ttrpc client is not connected")
        timeout_nano = 0
        if timeout is not None:
            if timeout <= 0:
                raise DeadlineExceededError(
                    f"context deadline exceeded (calling {service}/{method}, no time left)"
                )
            timeout_nano = max(1, int(timeout * 1e9))
        stream_id = self._next_id
        if stream_id > MAX_STREAM_ID:
            raise TtrpcError("ttrpc client ran out of stream ids; open a new connection")
        frame = encode_message(
            stream_id,
            MessageType.REQUEST,
            encode_request(
                service,
                method,
                request.SerializeToString(),
                timeout_nano=timeout_nano,
                metadata=metadata.items() if metadata else (),
            ),
            max_message_size=self._max,
        )
        self._next_id = stream_id + 2
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        self._pending[stream_id] = fut
        if timeout is not None:
            self._deadlines.add((stream_id, service, method, timeout), loop.time() + timeout)
        try:
            transport.write(frame)
            data = await fut
        finally:
            self._pending.pop(stream_id, None)
            if timeout is not None:
                self._deadlines.discard((stream_id, service, method, timeout))
        resp = decode_response(data)
        result = response_type()
        try:
            result.ParseFromString(resp.payload)
        except DecodeError as exc:
            raise ProtocolError(
                f"cannot decode {response_type.__name__} response of {service}/{method}: {exc}"
            ) from exc
        if resp.HasField("status") and resp.status.code != 0:
            raise status_error(resp.status.code, resp.status.message)
        return result

    def _expire(self, call: tuple[int, str, str, float]) -> None:
        stream_id, service, method, timeout = call
        fut = self._pending.get(stream_id)
        if fut is not None and not fut.done():
            fut.set_exception(
                DeadlineExceededError(
                    f"context deadline exceeded (calling {service}/{method}, timeout {timeout:g}s)"
                )
            )

    def _fail_pending(self) -> None:
        self._deadlines.close()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        reason = self._closed_reason or "ttrpc connection closed"
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ClosedError(reason))


async def connect_unix(
    path: str,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connect a :class:`Client` to the ttRPC server listening on unix socket ``path``."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_unix_connection(
        lambda: Client(max_message_size=max_message_size, interceptors=interceptors), path
    )
    return client
