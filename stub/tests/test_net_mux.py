"""Tests for the asyncio mux (nri.net._mux) over real unix sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nri.net import (
    DEFAULT_MAX_READ_PAYLOAD,
    DEFAULT_READ_QUEUE_BYTES,
    PLUGIN_SERVICE_CONN,
    RUNTIME_SERVICE_CONN,
    Frame,
    FrameDecoder,
    Mux,
    MuxClosedError,
    MuxProtocolError,
    encode_frames,
    socketpair,
)

pytestmark = pytest.mark.timeout(20)


class Recorder(asyncio.Protocol):
    """Collects received bytes and lifecycle events."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.chunks: list[bytes] = []
        self.events: list[str] = []
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self._changed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.chunks.append(data)
        self._changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)
        self._changed.set()

    def pause_writing(self) -> None:
        self.events.append("pause_writing")
        self._changed.set()

    def resume_writing(self) -> None:
        self.events.append("resume_writing")
        self._changed.set()

    async def wait_for(self, size: int) -> bytes:
        while len(self.data) < size:
            assert not self.lost.done(), f"connection lost: {self.lost.result()!r}"
            self._changed.clear()
            await self._changed.wait()
        return bytes(self.data)

    async def wait_event(self, name: str) -> None:
        while name not in self.events:
            self._changed.clear()
            await self._changed.wait()


class Echo(asyncio.Protocol):
    """Echoes every chunk back on the same virtual connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


@contextlib.asynccontextmanager
async def mux_pair() -> AsyncIterator[tuple[Mux, Mux]]:
    left, right = socketpair()
    a = await Mux.from_socket(left)
    b = await Mux.from_socket(right)
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        await a.wait_closed()
        await b.wait_closed()


@contextlib.asynccontextmanager
async def mux_and_raw(**limits: int) -> AsyncIterator[tuple[Mux, socket.socket]]:
    left, right = socketpair()
    right.setblocking(False)
    mux = await Mux.from_socket(left, **limits)  # type: ignore[arg-type]
    try:
        yield mux, right
    finally:
        mux.close()
        right.close()
        await mux.wait_closed()


async def read_frames(sock: socket.socket, decoder: FrameDecoder, count: int) -> list[Frame]:
    loop = asyncio.get_running_loop()
    frames: list[Frame] = []
    while len(frames) < count:
        data = await loop.sock_recv(sock, 65536)
        assert data, "unexpected EOF"
        frames += decoder.frames(data)
    return frames


def pattern(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) % 256 for i in range(size))


async def test_echo_both_directions_on_both_conns() -> None:
    async with mux_pair() as (runtime, plugin):
        # conn 1: runtime is the client; conn 2: plugin is the client (like NRI).
        r1, r2 = Recorder(), Echo()
        p1, p2 = Echo(), Recorder()
        runtime.open(PLUGIN_SERVICE_CONN, r1)
        runtime.open(RUNTIME_SERVICE_CONN, r2)
        plugin.open(PLUGIN_SERVICE_CONN, p1)
        plugin.open(RUNTIME_SERVICE_CONN, p2)
        msg1 = pattern(100_000, 1)
        msg2 = pattern(70_001, 2)
        assert r1.transport is not None and p2.transport is not None
        for i in range(0, len(msg1), 9000):
            r1.transport.write(msg1[i : i + 9000])
        p2.transport.write(msg2)
        p2.transport.writelines([b"tail-", memoryview(b"end")])
        got1, got2 = await asyncio.gather(r1.wait_for(len(msg1)), p2.wait_for(len(msg2) + 8))
        assert got1 == msg1
        assert got2 == msg2 + b"tail-end"
        # Frames are delivered one at a time and never exceed the 4096-byte emit limit.
        assert max(len(c) for c in r1.chunks + p2.chunks) <= 4096
        assert runtime.peer_pid == os.getpid()


async def test_over_unix_socket_path(tmp_path: Path) -> None:
    path = tmp_path / "nri.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        plugin, (accepted, _) = await asyncio.gather(Mux.dial(path), loop.sock_accept(listener))
    finally:
        listener.close()
    runtime = await Mux.from_socket(accepted)
    async with runtime, plugin:
        assert runtime.peer_pid == os.getpid()
        echo = Echo()
        runtime.open(RUNTIME_SERVICE_CONN, echo)
        client = Recorder()
        transport = plugin.open(RUNTIME_SERVICE_CONN, client)
        assert transport.get_extra_info("conn_id") == RUNTIME_SERVICE_CONN
        assert transport.get_extra_info("mux") is plugin
        assert transport.get_extra_info("peername") is not None
        transport.write(b"register")
        assert await client.wait_for(8) == b"register"
    assert runtime.is_closed and plugin.is_closed


async def test_writes_are_split_into_frames_of_at_most_4096() -> None:
    async with mux_and_raw() as (mux, raw):
        transport = mux.open(1, Recorder())
        payload = pattern(10_080, 3)
        transport.write(payload)
        transport.write(b"small")
        transport.writelines([b"a" * 10, b"b" * 10])
        frames = await read_frames(raw, FrameDecoder(), 5)
        assert [(f.conn_id, len(f.payload)) for f in frames] == [
            (1, 4096),
            (1, 4096),
            (1, 1888),
            (1, 5),
            (1, 20),
        ]
        assert b"".join(f.payload for f in frames[:3]) == payload


async def test_custom_max_frame_payload() -> None:
    async with mux_and_raw(max_frame_payload=1000) as (mux, raw):
        mux.open(2, Recorder()).write(bytes(2500))
        frames = await read_frames(raw, FrameDecoder(), 3)
        assert [len(f.payload) for f in frames] == [1000, 1000, 500]


async def test_accepts_large_go_style_frames() -> None:
    async with mux_and_raw() as (mux, raw):
        rec = Recorder()
        mux.open(1, rec)
        payload = pattern(21_240, 4)
        wire = struct.pack(">II", 1, 4096) + payload[:4096]
        wire += struct.pack(">II", 1, 17_144) + payload[4096:]
        await asyncio.get_running_loop().sock_sendall(raw, wire)
        assert await rec.wait_for(len(payload)) == payload
        assert [len(c) for c in rec.chunks] == [4096, 17_144]


async def test_frames_for_unopened_conns_are_dropped() -> None:
    async with mux_and_raw() as (mux, raw):
        rec = Recorder()
        mux.open(1, rec)
        wire = encode_frames(5, b"nobody") + encode_frames(2, b"nope") + encode_frames(1, b"yes")
        await asyncio.get_running_loop().sock_sendall(raw, wire)
        assert await rec.wait_for(3) == b"yes"
        assert not mux.is_closed


async def test_whole_and_split_frames_in_one_read_are_delivered_in_order() -> None:
    async with mux_and_raw() as (mux, raw):
        one, two = Recorder(), Recorder()
        mux.open(1, one)
        mux.open(2, two)
        loop = asyncio.get_running_loop()
        tail = encode_frames(1, b"-third")
        # Two whole frames and the start of a third arrive together; the rest comes later.
        await loop.sock_sendall(
            raw, encode_frames(1, b"first") + encode_frames(2, b"second") + tail[:11]
        )
        assert await two.wait_for(6) == b"second"
        await loop.sock_sendall(raw, tail[11:] + encode_frames(1, b"-fourth"))
        assert await one.wait_for(18) == b"first-third-fourth"
        assert one.chunks == [b"first", b"-third", b"-fourth"]
        assert not mux.is_closed


async def test_frames_before_a_bad_frame_are_delivered_then_the_trunk_closes() -> None:
    async with mux_and_raw() as (mux, raw):
        rec = Recorder()
        mux.open(1, rec)
        wire = encode_frames(1, b"good") + struct.pack(">II", 0, 4) + b"evil"
        await asyncio.get_running_loop().sock_sendall(raw, wire)
        exc = await rec.lost
        assert rec.chunks == [b"good"]
        assert isinstance(exc, MuxClosedError)
        assert "reserved conn id 0" in str(exc)
        await mux.wait_closed()
        assert isinstance(mux.close_reason, MuxProtocolError)


async def test_closing_a_virtual_conn_detaches_it() -> None:
    async with mux_pair() as (a, b):
        peer, peer_marker = Recorder(), Recorder()
        b.open(1, peer)
        b.open(2, peer_marker)
        rec, marker = Recorder(), Recorder()
        transport = a.open(1, rec)
        a.open(2, marker)
        transport.close()
        assert transport.is_closing()
        assert rec.events == ["made"]  # connection_lost comes via call_soon
        assert await rec.lost is None
        transport.write(b"dropped")  # ignored, like asyncio transports
        assert peer.transport is not None and peer_marker.transport is not None
        peer.transport.write(b"to nobody")
        peer_marker.transport.write(b"mark")
        await marker.wait_for(4)  # the frame for the closed conn was processed (dropped)
        # Reopening the id works, and the peer's conn never noticed anything.
        rec2 = Recorder()
        a.open(1, rec2)
        peer.transport.write(b"hello")
        assert await rec2.wait_for(5) == b"hello"
        assert rec.data == b""
        assert peer.data == b""
        assert not peer.transport.is_closing()


async def test_open_errors() -> None:
    async with mux_pair() as (a, _):
        a.open(1, Recorder())
        with pytest.raises(ValueError, match="mux conn 1 is already open"):
            a.open(1, Recorder())
        with pytest.raises(ValueError, match="conn id 0 is out of range"):
            a.open(0, Recorder())
        with pytest.raises(ValueError, match="out of range"):
            a.open(1 << 32, Recorder())
        a.close()
        with pytest.raises(MuxClosedError, match="cannot open mux conn 3"):
            a.open(3, Recorder())


async def test_pause_reading_queues_up_to_256_frames() -> None:
    async with mux_and_raw() as (mux, raw):
        rec, marker = Recorder(), Recorder()
        transport = mux.open(1, rec)
        mux.open(2, marker)
        transport.pause_reading()
        assert not transport.is_reading()
        wire = b"".join(encode_frames(1, b"%d," % i) for i in range(256))
        await asyncio.get_running_loop().sock_sendall(raw, wire + encode_frames(2, b"!"))
        await marker.wait_for(1)  # everything before the marker was processed
        assert rec.data == b""
        assert not mux.is_closed
        transport.resume_reading()
        expected = b"".join(b"%d," % i for i in range(256))
        assert await rec.wait_for(len(expected)) == expected


async def test_read_queue_overflow_closes_the_trunk() -> None:
    async with mux_and_raw() as (mux, raw):
        rec, other = Recorder(), Recorder()
        reasons: list[Exception | None] = []
        mux.add_close_callback(reasons.append)
        mux.open(1, rec).pause_reading()
        mux.open(2, other)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(raw, b"".join(encode_frames(1, b"x") for _ in range(257)))
        exc = await rec.lost
        assert isinstance(exc, MuxClosedError)
        assert isinstance(exc.__cause__, MuxProtocolError)
        assert "read queue of mux conn 1 overflowed" in str(exc)
        assert isinstance(await other.lost, MuxClosedError)
        await mux.wait_closed()
        assert mux.is_closed
        assert isinstance(mux.close_reason, MuxProtocolError)
        assert reasons == [mux.close_reason]
        assert rec.data == b""
        # The peer sees the trunk go away.
        assert await loop.sock_recv(raw, 100) == b""


async def test_peer_close_reports_trunk_loss() -> None:
    async with mux_pair() as (a, b):
        a_conns = [Recorder(), Recorder()]
        b_conns = [Recorder(), Recorder()]
        for i, rec in enumerate(a_conns, 1):
            a.open(i, rec)
        for i, rec in enumerate(b_conns, 1):
            b.open(i, rec)
        a_reasons: list[Exception | None] = []
        b_reasons: list[Exception | None] = []
        a.add_close_callback(a_reasons.append)
        b.add_close_callback(b_reasons.append)
        b.close()
        for rec in a_conns:
            exc = await rec.lost
            assert isinstance(exc, MuxClosedError)
            assert "closed by peer" in str(exc)
        for rec in b_conns:
            assert await rec.lost is None
        await a.wait_closed()
        await b.wait_closed()
        assert a.is_closed and isinstance(a.close_reason, MuxClosedError)
        assert b.is_closed and b.close_reason is None
        assert len(a_reasons) == 1 and a_reasons[0] is a.close_reason
        assert b_reasons == [None]
        # A late callback still runs exactly once.
        late: list[Exception | None] = []
        a.add_close_callback(late.append)
        a.close()
        await asyncio.sleep(0)
        assert late == [a.close_reason]
        assert len(a_reasons) == 1


async def test_protocol_error_from_peer_closes_the_trunk() -> None:
    async with mux_and_raw() as (mux, raw):
        rec = Recorder()
        mux.open(1, rec)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(raw, struct.pack(">II", 1, 0x7FFFFFFF))
        exc = await rec.lost
        assert isinstance(exc, MuxClosedError)
        assert "conn id 1 claims payload length 2147483647" in str(exc)
        await mux.wait_closed()
        assert isinstance(mux.close_reason, MuxProtocolError)


async def test_peer_abort_mid_frame() -> None:
    async with mux_and_raw() as (mux, raw):
        rec = Recorder()
        mux.open(1, rec)
        await asyncio.get_running_loop().sock_sendall(raw, encode_frames(1, b"abcdef")[:10])
        raw.close()
        exc = await rec.lost
        assert isinstance(exc, MuxClosedError)
        assert "in the middle of a frame" in str(exc)


async def test_protocol_exception_closes_only_that_conn() -> None:
    class Broken(Recorder):
        def data_received(self, data: bytes) -> None:
            raise RuntimeError("boom")

    async with mux_and_raw() as (mux, raw):
        broken, fine = Broken(), Recorder()
        mux.open(1, broken)
        mux.open(2, fine)
        wire = encode_frames(1, b"x") + encode_frames(2, b"ok")
        await asyncio.get_running_loop().sock_sendall(raw, wire)
        exc = await broken.lost
        assert isinstance(exc, RuntimeError)
        assert await fine.wait_for(2) == b"ok"
        assert not mux.is_closed


async def test_blocked_read_until_unblock() -> None:
    left, right = socketpair()
    right.setblocking(False)
    with right:
        mux = await Mux.from_socket(left, blocked_read=True)
        async with mux:
            await asyncio.get_running_loop().sock_sendall(right, encode_frames(1, b"early"))
            # Give the loop many chances to read; a blocked mux must not (it would drop it).
            for _ in range(20):
                await asyncio.sleep(0)
            rec = Recorder()
            mux.open(1, rec)
            mux.unblock()
            assert await rec.wait_for(5) == b"early"


async def test_write_flow_control_is_forwarded() -> None:
    left, right = socketpair()
    right.setblocking(False)
    with right:
        async with await Mux.from_socket(left) as mux:
            first, second = Recorder(), Recorder()
            transport = mux.open(1, first)
            mux.open(2, second)
            transport.set_write_buffer_limits(high=64 * 1024)
            assert transport.get_write_buffer_limits()[1] == 64 * 1024
            chunk = bytes(1 << 20)
            while "pause_writing" not in first.events:
                transport.write(chunk)
            assert "pause_writing" in second.events
            assert transport.get_write_buffer_size() > 0
            late = Recorder()
            mux.open(3, late)  # opened while paused: told so right away
            assert late.events == ["made", "pause_writing"]
            loop = asyncio.get_running_loop()

            async def drain() -> None:
                while "resume_writing" not in first.events:
                    await loop.sock_recv(right, 1 << 20)

            await drain()
            assert "resume_writing" in second.events
            assert "resume_writing" in late.events


async def test_transport_api() -> None:
    async with mux_pair() as (a, _):
        rec = Recorder()
        transport = a.open(1, rec)
        assert transport.get_protocol() is rec
        other = Recorder()
        transport.set_protocol(other)
        assert transport.get_protocol() is other
        assert transport.get_write_buffer_size() == 0
        assert transport.get_extra_info("missing", "dflt") == "dflt"
        assert transport.get_extra_info("peer_pid") == os.getpid()
        assert not transport.can_write_eof()
        with pytest.raises(NotImplementedError):
            transport.write_eof()
        with pytest.raises(TypeError, match="bytes-like"):
            transport.write("text")  # type: ignore[arg-type]
        transport.abort()
        assert transport.is_closing() and not transport.is_reading()
        assert await other.lost is None
        assert not rec.lost.done()


async def test_dial_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    with pytest.raises(FileNotFoundError, match=r"missing\.sock") as info:
        await Mux.dial(missing)
    assert "cannot connect to unix socket" in str(info.value)

    stale = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()  # the file stays but nobody listens
    with pytest.raises(ConnectionRefusedError, match=r"stale\.sock"):
        await Mux.dial(str(stale))

    with pytest.raises(ValueError, match="too long"):
        await Mux.dial("/tmp/" + "x" * 200)


async def test_from_socket_rejects_datagram_socket() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right, pytest.raises(ValueError, match="stream socket"):
        await Mux.from_socket(left)


async def test_read_queue_is_bounded_in_bytes_too() -> None:
    # 256 frames of 4 MiB would be 1 GiB: the queue also stops at its byte bound.
    async with mux_and_raw(read_queue_bytes=10_000) as (mux, raw):
        rec = Recorder()
        mux.open(1, rec).pause_reading()
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(raw, b"".join(encode_frames(1, b"x" * 4000) for _ in range(2)))
        await asyncio.sleep(0.05)
        assert not mux.is_closed  # 8000 bytes fit
        await loop.sock_sendall(raw, encode_frames(1, b"x" * 4000))
        exc = await rec.lost
        assert "read queue of mux conn 1 overflowed: 2 frames (8000 bytes)" in str(exc)
        await mux.wait_closed()


async def test_default_read_queue_byte_bound_holds_two_largest_frames() -> None:
    assert DEFAULT_READ_QUEUE_BYTES == 2 * DEFAULT_MAX_READ_PAYLOAD


async def test_peer_that_does_not_read_is_dropped() -> None:
    async with mux_and_raw(max_write_buffer=1 << 20) as (mux, _raw):
        rec = Recorder()
        transport = mux.open(1, rec)
        for _ in range(64):  # 4 MiB, the peer reads none of it
            transport.write(b"y" * 65536)
            if mux.is_closed:
                break
        assert mux.is_closed
        assert isinstance(mux.close_reason, MuxProtocolError)
        assert "peer is not reading" in str(mux.close_reason)
        assert isinstance(await rec.lost, MuxClosedError)
        await mux.wait_closed()


async def test_a_slow_reader_within_the_write_bound_gets_everything() -> None:
    async with mux_and_raw(max_write_buffer=8 << 20) as (mux, raw):
        transport = mux.open(1, Recorder())
        payload = pattern(4 << 20, 3)
        transport.write(payload)
        frames = await read_frames(raw, FrameDecoder(), (4 << 20) // 4096)
        assert b"".join(f.payload for f in frames) == payload
        assert not mux.is_closed
