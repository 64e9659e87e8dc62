"""Sans-IO codec for the NRI connection multiplexer (upstream ``pkg/net/multiplex``).

A trunk carries frames of ``conn id (u32 BE) | payload length (u32 BE) | payload``. This
module only converts between bytes and :class:`Frame` objects; it does no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_FRAME_PAYLOAD",
    "DEFAULT_MAX_READ_PAYLOAD",
    "FRAME_HEADER_SIZE",
    "MAX_CONN_ID",
    "PLUGIN_SERVICE_CONN",
    "RESERVED_CONN_ID",
    "RUNTIME_SERVICE_CONN",
    "UPSTREAM_MAX_PAYLOAD",
    "Frame",
    "FrameDecoder",
    "MuxProtocolError",
    "encode_frames",
]

#: Conn ID 0 is reserved by upstream and never valid on the wire.
RESERVED_CONN_ID = 0
#: Conn on which the runtime is the ttRPC client and the plugin serves ``Plugin``.
PLUGIN_SERVICE_CONN = 1
#: Conn on which the plugin is the ttRPC client and the runtime serves ``Runtime``.
RUNTIME_SERVICE_CONN = 2
#: Largest conn ID that fits the 32-bit header field.
MAX_CONN_ID = 0xFFFFFFFF

#: Size of a frame header: 4-byte conn ID and 4-byte payload length, both big-endian.
FRAME_HEADER_SIZE = 8

#: Largest payload we put in one frame. Upstream's Go ttRPC reader sits behind a 4096-byte
#: ``bufio.Reader`` and fails with ENOMEM on a larger frame that starts a ttRPC message.
DEFAULT_MAX_FRAME_PAYLOAD = 4096

#: Largest payload upstream's writer accepts in one frame (ttRPC header 10 + 4 MiB).
UPSTREAM_MAX_PAYLOAD = 10 + (4 << 20)

#: Default read limit: anything upstream can send, plus 64 KiB of slack.
DEFAULT_MAX_READ_PAYLOAD = UPSTREAM_MAX_PAYLOAD + (64 << 10)

_HEADER = struct.Struct(">II")
_U32_MAX = 0xFFFFFFFF


class MuxProtocolError(Exception):
    """The trunk carried bytes that violate the multiplexer protocol."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One multiplexer frame: the payload for virtual connection ``conn_id``."""

    conn_id: int
    payload: bytes


def encode_frames(
    conn_id: int,
    payload: bytes | bytearray | memoryview,
    max_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
) -> bytes:
    """Encode ``payload`` for ``conn_id`` as frames of at most ``max_payload`` bytes each.

    The frames are concatenated into one byte string. An empty payload yields a single
    header-only frame, as upstream's writer would send for an empty write.
    """
    if not isinstance(conn_id, int) or isinstance(conn_id, bool):
        raise TypeError(f"conn id must be an int, not {type(conn_id).__name__}")
    if not RESERVED_CONN_ID < conn_id <= MAX_CONN_ID:
        raise ValueError(f"conn id {conn_id} is out of range 1..{MAX_CONN_ID}")
    if not 1 <= max_payload <= _U32_MAX:
        raise ValueError(f"max frame payload {max_payload} is out of range 1..{_U32_MAX}")
    size = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
    if size <= max_payload:
        return _HEADER.pack(conn_id, size) + payload
    view = memoryview(payload).cast("B")
    parts: list[bytes | memoryview] = []
    for start in range(0, size, max_payload):
        chunk = view[start : start + max_payload]
        parts.append(_HEADER.pack(conn_id, len(chunk)))
        parts.append(chunk)
    return b"".join(parts)


class FrameDecoder:
    """Incremental frame decoder: :meth:`feed` bytes, then pull frames with :meth:`next_frame`.

    The header is checked as soon as its 8 bytes are available, so a bogus length is rejected
    before any payload is buffered; memory use is bounded by what has actually been fed.
    After a :class:`MuxProtocolError` the decoder is dead and re-raises that error.
    """

    __slots__ = ("_buf", "_error", "_max_payload")

    def __init__(self, max_payload: int = DEFAULT_MAX_READ_PAYLOAD) -> None:
        """Create a decoder accepting payloads of up to ``max_payload`` bytes per frame."""
        if not 0 <= max_payload <= _U32_MAX:
            raise ValueError(f"max read payload {max_payload} is out of range 0..{_U32_MAX}")
        self._max_payload = max_payload
        self._buf = bytearray()
        self._error: MuxProtocolError | None = None

    @property
    def max_payload(self) -> int:
        """Largest payload accepted in one frame."""
        return self._max_payload

    @property
    def buffered(self) -> int:
        """Number of bytes fed but not yet returned as frames."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the trunk."""
        if self._error is not None:
            raise self._error
        self._buf += data

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or ``None`` if more bytes are needed.

        Raises :class:`MuxProtocolError` for conn ID 0 or a length above the limit.
        """
        if self._error is not None:
            raise self._error
        buf = self._buf
        if len(buf) < FRAME_HEADER_SIZE:
            return None
        conn_id, length = _HEADER.unpack_from(buf)
        if conn_id == RESERVED_CONN_ID:
            self._error = MuxProtocolError(
                f"mux frame for reserved conn id 0 (payload length {length})"
            )
            raise self._error
        if length > self._max_payload:
            self._error = MuxProtocolError(
                f"mux frame for conn id {conn_id} claims payload length {length}, "
                f"above the limit of {self._max_payload} bytes"
            )
            raise self._error
        end = FRAME_HEADER_SIZE + length
        if len(buf) < end:
            return None
        payload = bytes(buf[FRAME_HEADER_SIZE:end])
        # Deleting a prefix of a bytearray is cheap in CPython (it moves a start pointer).
        del buf[:end]
        return Frame(conn_id, payload)

    def frames(self, data: bytes | bytearray | memoryview = b"") -> list[Frame]:
        """Feed ``data`` and return every frame that is now complete."""
        if data:
            self.feed(data)
        out: list[Frame] = []
        while (frame := self.next_frame()) is not None:
            out.append(frame)
        return out
