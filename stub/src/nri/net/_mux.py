"""asyncio multiplexer: many virtual connections over one stream socket (the trunk).

Mirrors upstream ``pkg/net/multiplex``: opening a conn ID sends nothing, frames for conn IDs
that are not open are dropped, and a per-conn read queue overflow closes the whole trunk.
Each virtual connection is an :class:`asyncio.Transport` driving an :class:`asyncio.Protocol`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from nri.net._frames import (
    DEFAULT_MAX_FRAME_PAYLOAD,
    DEFAULT_MAX_READ_PAYLOAD,
    FRAME_HEADER_SIZE,
    MAX_CONN_ID,
    RESERVED_CONN_ID,
    UPSTREAM_MAX_PAYLOAD,
    FrameDecoder,
    MuxProtocolError,
    encode_frames,
)

__all__ = [
    "DEFAULT_MAX_WRITE_BUFFER",
    "DEFAULT_READ_QUEUE_BYTES",
    "DEFAULT_READ_QUEUE_LENGTH",
    "Mux",
    "MuxClosedError",
]

logger = logging.getLogger("nri.net.mux")

#: Frames a virtual connection may hold while its reading is paused (upstream: 256).
DEFAULT_READ_QUEUE_LENGTH = 256
#: Bytes a virtual connection may hold while its reading is paused: two of the largest
#: frames upstream sends (256 frames alone could be 1 GiB).
DEFAULT_READ_QUEUE_BYTES = 2 * DEFAULT_MAX_READ_PAYLOAD
#: Unsent bytes on the trunk above which the peer counts as not reading and is dropped.
DEFAULT_MAX_WRITE_BUFFER = 4 * UPSTREAM_MAX_PAYLOAD

#: Size of the buffer the trunk is read into (one recv_into call reads at most this much).
_READ_CHUNK = 64 * 1024

_HEADER = struct.Struct(">II")
_UCRED = struct.Struct("3i")
# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_UNIX_PATH = 107

CloseCallback = Callable[[Exception | None], None]


class MuxClosedError(ConnectionError):
    """The mux trunk is gone; passed to each virtual protocol's ``connection_lost``."""


def _peer_pid(sock: socket.socket) -> int | None:
    if sock.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return None
    pid = int(_UCRED.unpack(raw)[0])
    return pid or None


class _VirtualTransport(asyncio.Transport):
    """The transport of one virtual connection of a :class:`Mux`."""

    __slots__ = (
        "_closing",
        "_conn_id",
        "_drain_pending",
        "_mux",
        "_paused",
        "_protocol",
        "_queue",
        "_queued_bytes",
    )

    def __init__(self, mux: Mux, conn_id: int, protocol: asyncio.BaseProtocol) -> None:
        super().__init__()
        self._mux = mux
        self._conn_id = conn_id
        self._protocol: Any = protocol
        self._closing = False
        self._paused = False
        self._drain_pending = False
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0

    def __repr__(self) -> str:
        state = "closing" if self._closing else ("paused" if self._paused else "open")
        return f"<mux conn {self._conn_id} {state}>"

    # -- asyncio.Transport API -------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` to the peer's conn with the same ID, split into frames as needed."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._closing:
            logger.debug(
                "write of %d bytes to closed mux conn %d dropped", len(data), self._conn_id
            )
            return
        if isinstance(data, memoryview):
            data = data.tobytes()
        if data:
            self._mux._write(self._conn_id, data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write the concatenation of ``list_of_data`` as one write."""
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        """Virtual connections cannot be half-closed."""
        return False

    def write_eof(self) -> None:
        """Not supported: the mux protocol has no per-connection EOF."""
        raise NotImplementedError("mux virtual connections cannot be half-closed")

    def close(self) -> None:
        """Detach locally (nothing is sent); ``connection_lost(None)`` follows via call_soon."""
        if not self._closing:
            self._mux._detach(self)
            self._lose(None)

    def abort(self) -> None:
        """Same as :meth:`close`: writes go straight to the trunk, nothing is buffered here."""
        self.close()

    def is_closing(self) -> bool:
        """Return True once closed locally or after trunk loss."""
        return self._closing

    def pause_reading(self) -> None:
        """Stop delivering frames; up to the read queue's length (and bytes) of them are
        queued meanwhile, and an overflow closes the trunk."""
        self._paused = True

    def resume_reading(self) -> None:
        """Resume delivery; queued frames are delivered soon (via call_soon)."""
        if not self._paused:
            return
        self._paused = False
        if self._queue and not self._drain_pending and not self._closing:
            self._drain_pending = True
            self._mux._loop.call_soon(self._drain)

    def is_reading(self) -> bool:
        """Return True if frames are being delivered to the protocol."""
        return not self._paused and not self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Replace the protocol that receives this connection's data."""
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        """Return the current protocol."""
        proto: asyncio.BaseProtocol = self._protocol
        return proto

    def get_write_buffer_size(self) -> int:
        """Return the trunk's write buffer size (shared by all virtual connections)."""
        trunk = self._mux._transport
        return trunk.get_write_buffer_size() if trunk is not None else 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """Return the trunk's (low, high) write buffer limits."""
        trunk = self._mux._transport
        return trunk.get_write_buffer_limits() if trunk is not None else (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the trunk's write buffer limits; this affects every virtual connection."""
        trunk = self._mux._transport
        if trunk is not None:
            trunk.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Return ``conn_id``, ``mux``, ``peer_pid``, or else the trunk transport's info."""
        if name == "conn_id":
            return self._conn_id
        if name == "mux":
            return self._mux
        if name == "peer_pid":
            return self._mux.peer_pid
        trunk = self._mux._transport
        return trunk.get_extra_info(name, default) if trunk is not None else default

    # -- driven by the Mux -----------------------------------------------------------------

    def _deliver(self, payload: bytes) -> None:
        if self._queue and not self._paused:
            self._drain()
        if self._paused or self._queue:
            if self._closing:
                return
            mux = self._mux
            if (
                len(self._queue) >= mux._read_queue_length
                or self._queued_bytes + len(payload) > mux._read_queue_bytes
            ):
                mux._fail(
                    MuxProtocolError(
                        f"read queue of mux conn {self._conn_id} overflowed: "
                        f"{len(self._queue)} frames ({self._queued_bytes} bytes) pending "
                        "while its reading is paused"
                    )
                )
                return
            self._queue.append(payload)
            self._queued_bytes += len(payload)
            return
        try:
            self._protocol.data_received(payload)
        except Exception as exc:
            self._fatal(exc)

    def _drain(self) -> None:
        self._drain_pending = False
        queue = self._queue
        while queue and not self._paused and not self._closing:
            payload = queue.popleft()
            self._queued_bytes -= len(payload)
            try:
                self._protocol.data_received(payload)
            except Exception as exc:
                self._fatal(exc)
                return

    def _fatal(self, exc: Exception) -> None:
        logger.error(
            "protocol of mux conn %d failed in data_received; closing the conn",
            self._conn_id,
            exc_info=exc,
        )
        if not self._closing:
            self._mux._detach(self)
            self._lose(exc)

    def _lose(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._queue.clear()
        self._queued_bytes = 0
        self._mux._loop.call_soon(self._protocol.connection_lost, exc)


class _TrunkProtocol(asyncio.BufferedProtocol):
    """Forwards trunk events to the owning :class:`Mux`.

    Reads go into one reused buffer (``recv_into``) instead of a freshly allocated
    256 KiB ``bytes`` per read, which a plain protocol gets from asyncio.
    """

    __slots__ = ("_mux", "_view")

    def __init__(self, mux: Mux) -> None:
        self._mux = mux
        self._view = memoryview(bytearray(_READ_CHUNK))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._mux._connection_made(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self._mux._data_received(self._view[:nbytes])

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._mux._connection_lost(exc)

    def pause_writing(self) -> None:
        self._mux._set_write_paused(True)

    def resume_writing(self) -> None:
        self._mux._set_write_paused(False)


class Mux:
    """A connection multiplexer over one connected stream socket (the trunk).

    Create one with :meth:`from_socket` or :meth:`dial`, then :meth:`open` virtual
    connections. Both ends must open the same conn IDs; nothing is sent when opening.
    Frames that arrive for conn IDs not open here are dropped, so open your conns before
    yielding to the event loop after creation, or pass ``blocked_read=True`` and call
    :meth:`unblock` once they are open.
    """

    def __init__(
        self,
        *,
        max_frame_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
        max_read_payload: int = DEFAULT_MAX_READ_PAYLOAD,
        read_queue_length: int = DEFAULT_READ_QUEUE_LENGTH,
        read_queue_bytes: int = DEFAULT_READ_QUEUE_BYTES,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
        blocked_read: bool = False,
    ) -> None:
        """Create an unattached mux; use :meth:`from_socket` or :meth:`dial` instead."""
        if max_frame_payload < 1:
            raise ValueError(f"max_frame_payload must be at least 1, got {max_frame_payload}")
        if read_queue_length < 1:
            raise ValueError(f"read_queue_length must be at least 1, got {read_queue_length}")
        if read_queue_bytes < 1:
            raise ValueError(f"read_queue_bytes must be at least 1, got {read_queue_bytes}")
        if max_write_buffer < 1:
            raise ValueError(f"max_write_buffer must be at least 1, got {max_write_buffer}")
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(max_read_payload)
        self._max_frame_payload = max_frame_payload
        self._read_queue_length = read_queue_length
        self._read_queue_bytes = read_queue_bytes
        self._max_write_buffer = max_write_buffer
        self._blocked = blocked_read
        self._transport: asyncio.Transport | None = None
        self._conns: dict[int, _VirtualTransport] = {}
        self._closing = False
        self._close_reason: Exception | None = None
        self._callbacks: list[CloseCallback] = []
        self._callbacks_done = False
        self._write_paused = False
        self._trunk_lost: asyncio.Future[None] = self._loop.create_future()
        self._peer_pid: int | None = None
        self._protocol = _TrunkProtocol(self)

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        return f"<Mux {state} conns={sorted(self._conns)} peer_pid={self._peer_pid}>"

    @classmethod
    async def from_socket(
        cls,
        sock: socket.socket,
        *,
        max_frame_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
        max_read_payload: int = DEFAULT_MAX_READ_PAYLOAD,
        read_queue_length: int = DEFAULT_READ_QUEUE_LENGTH,
        read_queue_bytes: int = DEFAULT_READ_QUEUE_BYTES,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
        blocked_read: bool = False,
    ) -> Mux:
        """Multiplex an already connected stream socket; the mux takes ownership of it.

        ``max_frame_payload`` caps the payload of each frame we send (upstream's Go reader
        needs ≤ 4096), ``max_read_payload`` caps the payload of frames we accept,
        ``read_queue_length`` and ``read_queue_bytes`` bound each conn's queue while its
        reading is paused (an overflow closes the trunk), ``max_write_buffer`` drops a peer
        that leaves more than that many bytes unread, and
        ``blocked_read`` keeps the trunk unread until :meth:`unblock`.
        """
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"mux trunk must be a stream socket, got {sock.type!r}")
        mux = cls(
            max_frame_payload=max_frame_payload,
            max_read_payload=max_read_payload,
            read_queue_length=read_queue_length,
            read_queue_bytes=read_queue_bytes,
            max_write_buffer=max_write_buffer,
            blocked_read=blocked_read,
        )
        mux._peer_pid = _peer_pid(sock)
        await mux._loop.create_connection(lambda: mux._protocol, sock=sock)
        return mux

    @classmethod
    async def dial(
        cls,
        path: str | os.PathLike[str],
        *,
        max_frame_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
        max_read_payload: int = DEFAULT_MAX_READ_PAYLOAD,
        read_queue_length: int = DEFAULT_READ_QUEUE_LENGTH,
        read_queue_bytes: int = DEFAULT_READ_QUEUE_BYTES,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
        blocked_read: bool = False,
    ) -> Mux:
        """Connect to the unix stream socket at ``path`` and multiplex it.

        Raises :class:`OSError` (e.g. FileNotFoundError, ConnectionRefusedError) naming the
        path when it cannot be connected, or ValueError for a path too long for AF_UNIX.
        """
        fspath = os.fspath(path)
        if len(os.fsencode(fspath)) > _MAX_UNIX_PATH:
            raise ValueError(
                f"unix socket path {fspath!r} is too long "
                f"({len(os.fsencode(fspath))} bytes, at most {_MAX_UNIX_PATH})"
            )
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, fspath)
            except OSError as exc:
                if exc.errno is None:
                    raise OSError(f"cannot connect to unix socket {fspath!r}: {exc}") from exc
                reason = exc.strerror or os.strerror(exc.errno)
                raise OSError(
                    exc.errno, f"cannot connect to unix socket: {reason}", fspath
                ) from exc
            return await cls.from_socket(
                sock,
                max_frame_payload=max_frame_payload,
                max_read_payload=max_read_payload,
                read_queue_length=read_queue_length,
                read_queue_bytes=read_queue_bytes,
                max_write_buffer=max_write_buffer,
                blocked_read=blocked_read,
            )
        except BaseException:
            sock.close()
            raise

    # -- public API ------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """True once the mux was closed locally, failed, or lost its trunk."""
        return self._closing

    @property
    def close_reason(self) -> Exception | None:
        """Why the mux closed: None while open or after a local close, else the error."""
        return self._close_reason

    @property
    def peer_pid(self) -> int | None:
        """PID of the trunk's peer from SO_PEERCRED (for logging), None if unknown."""
        return self._peer_pid

    @property
    def max_frame_payload(self) -> int:
        """Largest payload this mux puts in one outgoing frame."""
        return self._max_frame_payload

    def open(self, conn_id: int, protocol: asyncio.Protocol) -> asyncio.Transport:
        """Open virtual connection ``conn_id`` and call ``protocol.connection_made`` now.

        Raises ValueError for an invalid or already open ID, MuxClosedError if closed.
        """
        if not isinstance(conn_id, int) or isinstance(conn_id, bool):
            raise TypeError(f"conn id must be an int, not {type(conn_id).__name__}")
        if not 0 < conn_id <= MAX_CONN_ID:
            raise ValueError(f"conn id {conn_id} is out of range 1..{MAX_CONN_ID} (0 is reserved)")
        if self._closing:
            raise MuxClosedError(f"cannot open mux conn {conn_id}: the mux is closed")
        if conn_id in self._conns:
            raise ValueError(f"mux conn {conn_id} is already open")
        transport = _VirtualTransport(self, conn_id, protocol)
        self._conns[conn_id] = transport
        protocol.connection_made(transport)
        if self._write_paused and not transport.is_closing():
            protocol.pause_writing()
        return transport

    def unblock(self) -> None:
        """Start reading the trunk if the mux was created with ``blocked_read=True``."""
        if self._blocked:
            self._blocked = False
            if self._transport is not None and not self._closing:
                self._transport.resume_reading()

    def add_close_callback(self, callback: CloseCallback) -> None:
        """Call ``callback(close_reason)`` once when the mux closes (soon, if already closed)."""
        if self._callbacks_done:
            self._loop.call_soon(self._run_callback, callback)
        else:
            self._callbacks.append(callback)

    def close(self) -> None:
        """Close the trunk and every virtual connection (their connection_lost gets None)."""
        if self._closing:
            return
        self._shutdown(None, None)
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        """Wait until the trunk is closed and the close callbacks have run."""
        await asyncio.shield(self._trunk_lost)

    async def __aenter__(self) -> Mux:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()

    # -- internals -------------------------------------------------------------------------

    def _write(self, conn_id: int, data: bytes | bytearray) -> None:
        transport = self._transport
        if self._closing or transport is None:
            logger.debug("write of %d bytes to mux conn %d after close dropped", len(data), conn_id)
            return
        size = len(data)
        if size <= self._max_frame_payload:
            transport.write(_HEADER.pack(conn_id, size) + data)
        else:
            transport.write(encode_frames(conn_id, data, self._max_frame_payload))
        unsent = transport.get_write_buffer_size()
        if unsent > self._max_write_buffer:
            self._fail(
                MuxProtocolError(
                    f"peer is not reading: {unsent} bytes unsent on the trunk, "
                    f"more than {self._max_write_buffer}"
                )
            )

    def _detach(self, conn: _VirtualTransport) -> None:
        if self._conns.get(conn._conn_id) is conn:
            del self._conns[conn._conn_id]

    def _connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._blocked:
            transport.pause_reading()

    def _data_received(self, data: bytes | memoryview) -> None:
        decoder = self._decoder
        if not decoder.buffered:
            # The usual case: whole frames, taken straight from the read buffer without
            # going through the decoder's buffer; anything else is left to the decoder.
            pos, size, limit = 0, len(data), decoder.max_payload
            while size - pos >= FRAME_HEADER_SIZE and not self._closing:
                conn_id, length = _HEADER.unpack_from(data, pos)
                end = pos + FRAME_HEADER_SIZE + length
                if end > size or length > limit or conn_id == RESERVED_CONN_ID:
                    break
                self._deliver_frame(conn_id, bytes(data[pos + FRAME_HEADER_SIZE : end]))
                pos = end
            if pos == size or self._closing:
                return
            data = data[pos:]
        try:
            decoder.feed(data)
            while not self._closing:
                frame = decoder.next_frame()
                if frame is None:
                    return
                self._deliver_frame(frame.conn_id, frame.payload)
        except MuxProtocolError as exc:
            self._fail(exc)

    def _deliver_frame(self, conn_id: int, payload: bytes) -> None:
        conn = self._conns.get(conn_id)
        if conn is None:
            logger.debug("dropped %d-byte frame for unopened mux conn %d", len(payload), conn_id)
        elif payload:
            conn._deliver(payload)

    def _connection_lost(self, exc: Exception | None) -> None:
        if not self._closing:
            if exc is None:
                message = "mux trunk closed by peer"
                if self._decoder.buffered:
                    message += f" in the middle of a frame ({self._decoder.buffered} bytes pending)"
                error = MuxClosedError(message)
            else:
                error = MuxClosedError(f"mux trunk connection lost: {exc}")
                error.__cause__ = exc
            logger.debug("%s (peer pid %s)", error, self._peer_pid)
            self._shutdown(error, error)
        self._transport = None
        if not self._trunk_lost.done():
            # After the close callbacks, which _shutdown scheduled first.
            self._loop.call_soon(self._set_trunk_lost)

    def _set_trunk_lost(self) -> None:
        if not self._trunk_lost.done():
            self._trunk_lost.set_result(None)

    def _fail(self, reason: MuxProtocolError) -> None:
        if self._closing:
            return
        logger.warning("closing mux trunk (peer pid %s): %s", self._peer_pid, reason)
        error = MuxClosedError(f"mux trunk closed: {reason}")
        error.__cause__ = reason
        self._shutdown(reason, error)
        if self._transport is not None:
            self._transport.abort()

    def _shutdown(self, reason: Exception | None, conn_exc: Exception | None) -> None:
        self._closing = True
        self._close_reason = reason
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            conn._lose(conn_exc)
        self._loop.call_soon(self._run_callbacks)

    def _run_callbacks(self) -> None:
        self._callbacks_done = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._run_callback(callback)

    def _run_callback(self, callback: CloseCallback) -> None:
        try:
            callback(self._close_reason)
        except Exception:
            logger.exception("mux close callback %r failed", callback)

    def _set_write_paused(self, paused: bool) -> None:
        self._write_paused = paused
        for conn in list(self._conns.values()):
            protocol = conn._protocol
            try:
                if paused:
                    protocol.pause_writing()
                else:
                    protocol.resume_writing()
            except Exception:
                logger.exception("mux conn %d protocol failed in flow control", conn._conn_id)
