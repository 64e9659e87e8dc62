"""Sans-IO codec of ttRPC: framing of messages and the Request/Response envelopes.

A ttRPC message is a 10-byte header (4-byte big-endian data length, 4-byte big-endian
stream id, 1-byte type, 1-byte flags) followed by ``length`` bytes of data. Nothing here
does I/O: feed received bytes to a :class:`MessageDecoder` and write what the ``encode_*``
functions return.
"""

from __future__ import annotations

import enum
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from nri.ttrpc import ttrpc_pb2
from nri.ttrpc._errors import OversizedInboundMessageError, OversizedMessageError, ProtocolError
from nri.ttrpc._metadata import Metadata

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FLAG_NO_DATA",
    "FLAG_REMOTE_CLOSED",
    "FLAG_REMOTE_OPEN",
    "HEADER_SIZE",
    "MAX_STREAM_ID",
    "Message",
    "MessageDecoder",
    "MessageType",
    "decode_request",
    "decode_response",
    "encode_message",
    "encode_request",
    "encode_response",
    "request_metadata",
]

logger = logging.getLogger("nri.ttrpc.codec")

HEADER_SIZE = 10
"""Length of the fixed message header."""
DEFAULT_MAX_MESSAGE_SIZE = 4 << 20
"""ttRPC's limit on the data length of one message (4 MiB)."""
MAX_STREAM_ID = 0xFFFFFFFF
"""Largest stream id the 4-byte header field can carry."""

FLAG_REMOTE_CLOSED = 0x1
"""Flag: the sender closed its side of the stream."""
FLAG_REMOTE_OPEN = 0x2
"""Flag: the sender keeps its side of the stream open."""
FLAG_NO_DATA = 0x4
"""Flag: the message carries no data."""

_HEADER = struct.Struct(">IIBB")
_COMPACT_THRESHOLD = 64 * 1024


class MessageType(enum.IntEnum):
    """The type byte of a message header."""

    REQUEST = 1
    RESPONSE = 2
    DATA = 3


_TYPES = {int(t): t for t in MessageType}


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded ttRPC message: header fields plus its data."""

    stream_id: int
    type: MessageType
    flags: int
    data: bytes


def _check_limit(max_message_size: int) -> int:
    if not 0 <= max_message_size <= 0xFFFFFFFF:
        raise ValueError(f"max_message_size must be in [0, 2**32), got {max_message_size}")
    return max_message_size


class MessageDecoder:
    """Incremental decoder: :meth:`feed` bytes, then call :meth:`next_message` until ``None``.

    Memory stays bounded by one message plus the last fed chunk: a header announcing
    more than ``max_message_size`` raises :class:`OversizedInboundMessageError` once and
    the announced body is then discarded as it arrives, never buffered. Messages of an
    unknown type are skipped, as upstream ignores them for forward compatibility.
    """

    __slots__ = ("_buf", "_max", "_pos", "_skip")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max = _check_limit(max_message_size)
        self._buf = bytearray()
        self._pos = 0
        self._skip = 0

    @property
    def max_message_size(self) -> int:
        """The largest data length accepted."""
        return self._max

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as messages."""
        return len(self._buf) - self._pos

    @property
    def skipping(self) -> int:
        """Number of bytes of an oversized message still to be discarded."""
        return self._skip

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes."""
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            if n == len(data):
                return
            data = memoryview(data)[n:]
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def take_whole(
        self, data: bytes | bytearray | memoryview
    ) -> tuple[int, MessageType, bytes] | None:
        """Decode ``data`` at once if it is exactly one message and nothing is buffered.

        Returns the message's (stream id, type, data) without buffering anything, or None
        when ``data`` is anything else (part of a message, several, an oversized or unknown
        one, or not ``bytes``): then :meth:`feed` it as usual. This skips the buffering in
        the common case of one message per chunk received.
        """
        # Only immutable bytes: the returned slice of a view could change under the caller.
        if not isinstance(data, bytes) or len(data) < HEADER_SIZE:
            return None
        if self._skip or self._pos != len(self._buf):
            return None
        length, stream_id, mtype, _ = _HEADER.unpack_from(data)
        kind = _TYPES.get(mtype)
        if length + HEADER_SIZE != len(data) or length > self._max or kind is None:
            return None
        return stream_id, kind, data[HEADER_SIZE:]

    def next_message(self) -> Message | None:
        """Return the next complete message, or ``None`` if more bytes are needed.

        Raises :class:`OversizedInboundMessageError` for a header whose length exceeds
        the limit; decoding can continue afterwards.
        """
        buf = self._buf
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail < HEADER_SIZE:
                self._compact()
                return None
            length, stream_id, mtype, flags = _HEADER.unpack_from(buf, pos)
            if length > self._max:
                take = min(avail - HEADER_SIZE, length)
                self._pos = pos + HEADER_SIZE + take
                self._skip = length - take
                self._compact()
                raise OversizedInboundMessageError(stream_id, mtype, flags, length, self._max)
            end = pos + HEADER_SIZE + length
            if len(buf) < end:
                self._compact()
                return None
            self._pos = end
            kind = _TYPES.get(mtype)
            if kind is None:
                logger.debug("skipping message of unknown type %d on stream %d", mtype, stream_id)
                continue
            return Message(stream_id, kind, flags, bytes(buf[pos + HEADER_SIZE : end]))

    def _compact(self) -> None:
        pos = self._pos
        if pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif pos > _COMPACT_THRESHOLD or pos * 2 > len(self._buf):
            del self._buf[:pos]
            self._pos = 0


def encode_message(
    stream_id: int,
    type: MessageType,
    data: bytes,
    flags: int = 0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> bytes:
    """Frame ``data`` as one message.

    Raises :class:`OversizedMessageError` if ``data`` is longer than ``max_message_size``
    and :class:`ValueError` for a stream id, type or flags that do not fit the header.
    """
    if len(data) > max_message_size:
        raise OversizedMessageError(len(data), max_message_size)
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise ValueError(f"stream id {stream_id} does not fit in 32 bits")
    if not 0 <= flags <= 0xFF:
        raise ValueError(f"flags {flags:#x} do not fit in one byte")
    if not 0 <= type <= 0xFF:
        raise ValueError(f"message type {type} does not fit in one byte")
    return _HEADER.pack(len(data), stream_id, type, flags) + data


def encode_request(
    service: str,
    method: str,
    payload: bytes,
    *,
    timeout_nano: int = 0,
    metadata: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Serialize a ttRPC ``Request`` envelope (``timeout_nano`` 0 means no deadline).

    ``metadata`` is (key, value) pairs, e.g. :meth:`Metadata.items`, written in order as
    the repeated ``KeyValue`` field 5.
    """
    req = ttrpc_pb2.Request(
        service=service, method=method, payload=payload, timeout_nano=timeout_nano
    )
    for key, value in metadata:
        req.metadata.add(key=key, value=value)
    return req.SerializeToString()


def decode_request(data: bytes) -> ttrpc_pb2.Request:
    """Parse a ``Request`` envelope; raises :class:`ProtocolError` if it is not one."""
    req = ttrpc_pb2.Request()
    try:
        req.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(f"cannot decode ttrpc Request ({len(data)} bytes): {exc}") from exc
    return req


def request_metadata(req: ttrpc_pb2.Request) -> Metadata:
    """The metadata of a decoded ``Request`` (keys lowercased, values in wire order)."""
    return Metadata((kv.key, kv.value) for kv in req.metadata)


def encode_response(status_code: int, message: str, payload: bytes) -> bytes:
    """Serialize a ``Response`` envelope.

    An OK status is left out entirely, as upstream does, so an OK response with an
    empty payload encodes to zero bytes.
    """
    if status_code == 0:
        if not payload:
            return b""
        return ttrpc_pb2.Response(payload=payload).SerializeToString()
    resp = ttrpc_pb2.Response(payload=payload)
    resp.status.code = status_code
    resp.status.message = message
    return resp.SerializeToString()


def decode_response(data: bytes) -> ttrpc_pb2.Response:
    """Parse a ``Response`` envelope; raises :class:`ProtocolError` if it is not one."""
    resp = ttrpc_pb2.Response()
    if data:
        try:
            resp.ParseFromString(data)
        except DecodeError as exc:
            raise ProtocolError(f"cannot decode ttrpc Response ({len(data)} bytes): {exc}") from exc
    return resp
