"""Tests for the sans-IO mux frame codec (nri.net._frames)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nri.net import (
    DEFAULT_MAX_FRAME_PAYLOAD,
    DEFAULT_MAX_READ_PAYLOAD,
    FRAME_HEADER_SIZE,
    PLUGIN_SERVICE_CONN,
    RUNTIME_SERVICE_CONN,
    UPSTREAM_MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    MuxProtocolError,
    encode_frames,
)

CAPTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "captures"


def frame_sizes(data: bytes) -> list[tuple[int, int]]:
    """Walk raw frame bytes and return (conn id, payload length) per frame."""
    out = []
    pos = 0
    while pos < len(data):
        conn_id, length = struct.unpack_from(">II", data, pos)
        out.append((conn_id, length))
        pos += FRAME_HEADER_SIZE + length
    assert pos == len(data)
    return out


def test_constants() -> None:
    assert PLUGIN_SERVICE_CONN == 1
    assert RUNTIME_SERVICE_CONN == 2
    assert FRAME_HEADER_SIZE == 8
    assert DEFAULT_MAX_FRAME_PAYLOAD == 4096
    assert UPSTREAM_MAX_PAYLOAD == (4 << 20) + 10
    assert DEFAULT_MAX_READ_PAYLOAD > UPSTREAM_MAX_PAYLOAD


def test_encode_golden() -> None:
    assert encode_frames(2, b"hello") == bytes.fromhex("00000002 00000005") + b"hello"
    assert encode_frames(1, b"") == bytes.fromhex("0000000100000000")
    assert encode_frames(0xFFFFFFFF, b"\x00") == bytes.fromhex("ffffffff0000000100")
    assert encode_frames(1, memoryview(b"xy")) == bytes.fromhex("0000000100000002") + b"xy"
    assert encode_frames(1, bytearray(b"ab"), max_payload=1) == bytes.fromhex(
        "0000000100000001 61 0000000100000001 62"
    )


def test_decode_golden() -> None:
    data = bytes.fromhex("000000020000000a 0000000a000000010200 0000000100000000")
    assert FrameDecoder().frames(data) == [
        Frame(2, bytes.fromhex("0000000a000000010200")),
        Frame(1, b""),
    ]


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="conn id 0"):
        encode_frames(0, b"x")
    with pytest.raises(ValueError, match="conn id 4294967296"):
        encode_frames(1 << 32, b"x")
    with pytest.raises(TypeError, match="conn id"):
        encode_frames(True, b"x")
    with pytest.raises(ValueError, match="max frame payload 0"):
        encode_frames(1, b"x", max_payload=0)


def test_split_10080_byte_payload() -> None:
    payload = bytes(range(256)) * 39 + bytes(96)
    assert len(payload) == 10_080
    data = encode_frames(PLUGIN_SERVICE_CONN, payload)
    assert frame_sizes(data) == [(1, 4096), (1, 4096), (1, 1888)]
    frames = FrameDecoder().frames(data)
    assert b"".join(f.payload for f in frames) == payload
    assert {f.conn_id for f in frames} == {1}


def test_split_exact_multiple_and_custom_size() -> None:
    assert frame_sizes(encode_frames(1, bytes(8192))) == [(1, 4096), (1, 4096)]
    assert frame_sizes(encode_frames(1, bytes(4096))) == [(1, 4096)]
    assert frame_sizes(encode_frames(3, bytes(2500), max_payload=1000)) == [
        (3, 1000),
        (3, 1000),
        (3, 500),
    ]


def test_decode_go_sized_frames_4096_then_17144() -> None:
    payload = bytes(i % 251 for i in range(21_240))
    data = (
        struct.pack(">II", 1, 4096)
        + payload[:4096]
        + struct.pack(">II", 1, 17_144)
        + payload[4096:]
    )
    frames = FrameDecoder().frames(data)
    assert [len(f.payload) for f in frames] == [4096, 17_144]
    assert b"".join(f.payload for f in frames) == payload


def test_decode_upstream_capture_chunks() -> None:
    """Replay the raw read() chunks of a real Go runtime <-> Go plugin session."""
    capture = json.loads((CAPTURES / "bigsync-gobench.json").read_text())
    for direction in ("runtime->plugin", "plugin->runtime"):
        decoder = FrameDecoder()
        got = []
        for chunk in capture["chunks"]:
            if chunk["dir"] == direction:
                got += decoder.frames(bytes.fromhex(chunk["hex"]))
        want = [f for f in capture["decoded"]["mux_frames"] if f["dir"] == direction]
        assert [(f.conn_id, len(f.payload)) for f in got] == [
            (f["conn_id"], f["length"]) for f in want
        ]
        assert decoder.buffered == 0
        if direction == "runtime->plugin":
            # The 21 KB Synchronize that Go wrote as frames of 4096 and 17144 bytes.
            assert (1, 4096) in [(f.conn_id, len(f.payload)) for f in got]
            assert (1, 17_144) in [(f.conn_id, len(f.payload)) for f in got]


def test_byte_at_a_time() -> None:
    frames_in = [Frame(1, b"abc"), Frame(2, b""), Frame(7, bytes(5000))]
    data = b"".join(encode_frames(f.conn_id, f.payload, 10_000) for f in frames_in)
    decoder = FrameDecoder()
    out = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    assert out == frames_in
    assert decoder.buffered == 0


def test_partial_header_and_payload_wait_for_more() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x01\x00\x00")
    assert decoder.next_frame() is None
    decoder.feed(b"\x00\x03ab")
    assert decoder.next_frame() is None
    assert decoder.buffered == 10
    decoder.feed(b"c\x00")
    assert decoder.next_frame() == Frame(1, b"abc")
    assert decoder.next_frame() is None
    assert decoder.buffered == 1


def test_conn_id_zero_is_rejected() -> None:
    decoder = FrameDecoder()
    with pytest.raises(MuxProtocolError, match="reserved conn id 0"):
        decoder.frames(bytes.fromhex("0000000000000001") + b"x")
    # The decoder stays failed.
    with pytest.raises(MuxProtocolError, match="reserved conn id 0"):
        decoder.feed(encode_frames(1, b"ok"))
    with pytest.raises(MuxProtocolError, match="reserved conn id 0"):
        decoder.next_frame()


def test_oversized_length_rejected_from_header_alone() -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">II", 5, 0xFFFFFFFF))
    with pytest.raises(MuxProtocolError, match=r"conn id 5 .* 4294967295") as info:
        decoder.next_frame()
    assert str(DEFAULT_MAX_READ_PAYLOAD) in str(info.value)
    # Nothing was allocated for the claimed length.
    assert decoder.buffered == FRAME_HEADER_SIZE


def test_custom_read_limit() -> None:
    decoder = FrameDecoder(max_payload=16)
    assert decoder.frames(encode_frames(1, bytes(16))) == [Frame(1, bytes(16))]
    with pytest.raises(MuxProtocolError, match="payload length 17, above the limit of 16"):
        decoder.frames(encode_frames(1, bytes(17)))
    with pytest.raises(ValueError, match="max read payload"):
        FrameDecoder(max_payload=-1)


def test_default_limit_accepts_largest_upstream_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">II", 1, UPSTREAM_MAX_PAYLOAD))
    assert decoder.next_frame() is None


frame_lists = st.lists(st.tuples(st.integers(1, 0xFFFFFFFF), st.binary(max_size=300)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(frames=frame_lists, max_payload=st.integers(1, 64), cuts=st.lists(st.integers(0, 4000)))
def test_round_trip_property(
    frames: list[tuple[int, bytes]], max_payload: int, cuts: list[int]
) -> None:
    data = b"".join(encode_frames(c, p, max_payload) for c, p in frames)
    decoder = FrameDecoder()
    out: list[Frame] = []
    pos = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        out += decoder.frames(data[pos:cut])
        pos = cut
    out += decoder.frames(data[pos:])
    assert decoder.buffered == 0
    # Reassemble per run of same-conn frames of each original write.
    it = iter(out)
    for conn_id, payload in frames:
        n = max(1, -(-len(payload) // max_payload))
        pieces = [next(it) for _ in range(n)]
        assert all(f.conn_id == conn_id for f in pieces)
        assert all(len(f.payload) <= max_payload for f in pieces)
        assert b"".join(f.payload for f in pieces) == payload
    assert next(it, None) is None


def _decode_all(decoder: FrameDecoder, data: bytes) -> list[Frame]:
    try:
        return decoder.frames(data)
    except MuxProtocolError:
        return []


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), limit=st.integers(0, 512))
def test_random_input_only_raises_protocol_error(data: bytes, limit: int) -> None:
    decoder = FrameDecoder(max_payload=limit)
    frames = _decode_all(decoder, data)
    assert all(f.conn_id > 0 and len(f.payload) <= limit for f in frames)
    assert decoder.buffered <= len(data)


@settings(max_examples=150, deadline=None)
@given(
    frames=frame_lists,
    data=st.data(),
)
def test_corrupted_and_truncated_input(
    frames: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    raw = bytearray(b"".join(encode_frames(c, p) for c, p in frames))
    if raw:
        for _ in range(data.draw(st.integers(0, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    decoder = FrameDecoder(max_payload=1024)
    for frame in _decode_all(decoder, bytes(raw)):
        assert isinstance(frame.payload, bytes)
        assert len(frame.payload) <= 1024


@settings(max_examples=100, deadline=None)
@given(conn_id=st.integers(1, 0xFFFFFFFF), length=st.integers(1025, 0xFFFFFFFF))
def test_oversized_header_property(conn_id: int, length: int) -> None:
    decoder = FrameDecoder(max_payload=1024)
    with pytest.raises(MuxProtocolError, match=f"conn id {conn_id} claims payload length {length}"):
        decoder.frames(struct.pack(">II", conn_id, length) + b"x" * 10)
