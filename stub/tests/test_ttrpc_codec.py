"""Sans-IO ttRPC codec: golden bytes, incremental decoding, envelopes, upstream captures."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path

import pytest

from nri.ttrpc import (
    DEFAULT_MAX_MESSAGE_SIZE,
    HEADER_SIZE,
    Code,
    DeadlineExceededError,
    Message,
    MessageDecoder,
    MessageType,
    OversizedInboundMessageError,
    OversizedMessageError,
    ProtocolError,
    StatusError,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    encode_response,
    status_error,
)

CAPTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "captures"


def header(length: int, stream_id: int, mtype: int, flags: int = 0) -> bytes:
    """A ttRPC header built field by field from the spec."""
    return (
        length.to_bytes(4, "big") + stream_id.to_bytes(4, "big") + bytes([mtype]) + bytes([flags])
    )


# -- golden bytes ---------------------------------------------------------------------------


def test_constants() -> None:
    assert HEADER_SIZE == 10
    assert DEFAULT_MAX_MESSAGE_SIZE == 4 * 1024 * 1024
    assert [int(t) for t in MessageType] == [1, 2, 3]
    assert len(Code) == 17
    assert int(Code.OK) == 0
    assert int(Code.UNAUTHENTICATED) == 16


def test_header_golden() -> None:
    assert encode_message(1, MessageType.REQUEST, b"abc") == (
        b"\x00\x00\x00\x03" + b"\x00\x00\x00\x01" + b"\x01" + b"\x00" + b"abc"
    )
    assert encode_message(0x01020304, MessageType.DATA, b"", flags=0x5) == (
        b"\x00\x00\x00\x00\x01\x02\x03\x04\x03\x05"
    )


def test_ok_empty_response_is_header_only() -> None:
    assert encode_response(0, "", b"") == b""
    frame = encode_message(7, MessageType.RESPONSE, encode_response(Code.OK, "", b""))
    assert frame == b"\x00\x00\x00\x00" + b"\x00\x00\x00\x07" + b"\x02\x00"


def test_request_golden() -> None:
    body = encode_request("svc", "M", b"\x08\x01", timeout_nano=2_000_000_000)
    expected = (
        b"\x0a\x03svc"  # field 1 (service), length-delimited
        + b"\x12\x01M"  # field 2 (method)
        + b"\x1a\x02\x08\x01"  # field 3 (payload)
        + b"\x20\x80\xa8\xd6\xb9\x07"  # field 4 (timeout_nano) varint 2_000_000_000
    )
    assert body == expected
    # No deadline and no payload: those fields are absent.
    assert encode_request("s", "m", b"") == b"\x0a\x01s\x12\x01m"
    with_md = encode_request("s", "m", b"", metadata=[("k", "v")])
    assert with_md == b"\x0a\x01s\x12\x01m" + b"\x2a\x06" + b"\x0a\x01k\x12\x01v"


def test_response_golden() -> None:
    assert encode_response(0, "", b"\x08\x01") == b"\x12\x02\x08\x01"
    status = b"\x08\x0c" + b"\x12\x0amethod Foo"  # code 12, message
    assert encode_response(Code.UNIMPLEMENTED, "method Foo", b"") == (
        b"\x0a" + bytes([len(status)]) + status
    )
    # An OK status is never written, even with a message.
    assert encode_response(0, "ignored", b"") == b""


def test_envelope_round_trip() -> None:
    req = decode_request(encode_request("a.B", "C", b"xyz", timeout_nano=5, metadata=[("k", "v")]))
    assert (req.service, req.method, req.payload, req.timeout_nano) == ("a.B", "C", b"xyz", 5)
    assert [(kv.key, kv.value) for kv in req.metadata] == [("k", "v")]
    resp = decode_response(encode_response(Code.NOT_FOUND, "nope", b"p"))
    assert resp.HasField("status")
    assert (resp.status.code, resp.status.message, resp.payload) == (5, "nope", b"p")
    empty = decode_response(b"")
    assert not empty.HasField("status")
    assert empty.payload == b""


@pytest.mark.parametrize("data", [b"\xff", b"\x0a\x05ab", b"\x0a\x02\xff\xfe", b"\x1a\x80"])
def test_undecodable_envelopes(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="Request"):
        decode_request(data)
    with pytest.raises(ProtocolError, match="Response"):
        decode_response(data)


def test_encode_message_limits() -> None:
    with pytest.raises(OversizedMessageError) as info:
        encode_message(1, MessageType.REQUEST, b"x" * 11, max_message_size=10)
    assert (info.value.length, info.value.limit) == (11, 10)
    assert "11" in str(info.value)
    assert len(encode_message(1, MessageType.REQUEST, b"x" * 10, max_message_size=10)) == 20
    with pytest.raises(ValueError, match="stream id"):
        encode_message(1 << 32, MessageType.REQUEST, b"")
    with pytest.raises(ValueError, match="stream id"):
        encode_message(-1, MessageType.REQUEST, b"")
    with pytest.raises(ValueError, match="flags"):
        encode_message(1, MessageType.REQUEST, b"", flags=256)
    with pytest.raises(ValueError, match="max_message_size"):
        MessageDecoder(-1)


# -- decoder --------------------------------------------------------------------------------


def sample_stream() -> tuple[bytes, list[Message]]:
    messages = [
        Message(1, MessageType.REQUEST, 0, b"hello"),
        Message(1, MessageType.RESPONSE, 0, b""),
        Message(3, MessageType.DATA, 0x6, b"\x00" * 300),
        Message(0xFFFFFFFF, MessageType.RESPONSE, 0xFF, b"z"),
    ]
    blob = b"".join(encode_message(m.stream_id, m.type, m.data, m.flags) for m in messages)
    return blob, messages


def drain(decoder: MessageDecoder) -> list[Message]:
    out = []
    while (msg := decoder.next_message()) is not None:
        out.append(msg)
    return out


def test_decoder_one_blob() -> None:
    blob, messages = sample_stream()
    decoder = MessageDecoder()
    decoder.feed(blob)
    assert drain(decoder) == messages
    assert decoder.buffered == 0


def test_decoder_byte_at_a_time() -> None:
    blob, messages = sample_stream()
    decoder = MessageDecoder()
    got: list[Message] = []
    for i in range(len(blob)):
        decoder.feed(blob[i : i + 1])
        got.extend(drain(decoder))
    assert got == messages
    assert decoder.buffered == 0


def test_decoder_returns_exact_types() -> None:
    decoder = MessageDecoder()
    decoder.feed(bytearray(header(2, 5, 2, 1) + b"ab"))
    msg = decoder.next_message()
    assert msg == Message(5, MessageType.RESPONSE, 1, b"ab")
    assert msg is not None
    assert type(msg.data) is bytes
    assert msg.type is MessageType.RESPONSE


def test_decoder_skips_unknown_types() -> None:
    decoder = MessageDecoder()
    decoder.feed(header(3, 1, 9) + b"???" + header(0, 3, 0) + header(1, 5, 1) + b"x")
    assert drain(decoder) == [Message(5, MessageType.REQUEST, 0, b"x")]


def test_decoder_oversized_skips_without_buffering() -> None:
    limit = 100
    decoder = MessageDecoder(limit)
    claimed = 1_000_000
    decoder.feed(header(claimed, 7, 1) + b"a" * 50)
    with pytest.raises(OversizedInboundMessageError) as info:
        decoder.next_message()
    err = info.value
    assert (err.stream_id, err.message_type, err.length, err.limit) == (7, 1, claimed, limit)
    assert isinstance(err, OversizedMessageError)
    assert decoder.buffered == 0
    assert decoder.skipping == claimed - 50
    # Feed the rest of the oversized body in chunks, then a valid message.
    remaining = claimed - 50
    chunk = b"b" * 4096
    while remaining > len(chunk):
        decoder.feed(chunk)
        remaining -= len(chunk)
        assert decoder.next_message() is None
        assert decoder.buffered == 0
    decoder.feed(b"b" * remaining + encode_message(9, MessageType.REQUEST, b"ok"))
    assert drain(decoder) == [Message(9, MessageType.REQUEST, 0, b"ok")]
    assert decoder.skipping == 0


def test_decoder_oversized_body_already_buffered() -> None:
    decoder = MessageDecoder(4)
    decoder.feed(header(5, 1, 1) + b"12345" + header(1, 3, 1) + b"x")
    with pytest.raises(OversizedInboundMessageError):
        decoder.next_message()
    assert decoder.skipping == 0
    assert drain(decoder) == [Message(3, MessageType.REQUEST, 0, b"x")]


def test_decoder_accepts_max_size() -> None:
    decoder = MessageDecoder()
    data = bytes(DEFAULT_MAX_MESSAGE_SIZE)
    decoder.feed(encode_message(1, MessageType.REQUEST, data))
    msg = decoder.next_message()
    assert msg is not None
    assert len(msg.data) == DEFAULT_MAX_MESSAGE_SIZE
    decoder.feed(header(DEFAULT_MAX_MESSAGE_SIZE + 1, 3, 1))
    with pytest.raises(OversizedInboundMessageError):
        decoder.next_message()


def test_take_whole_decodes_exactly_one_message_without_buffering() -> None:
    decoder = MessageDecoder()
    assert decoder.take_whole(header(2, 5, 2, 1) + b"ab") == (5, MessageType.RESPONSE, b"ab")
    assert decoder.take_whole(header(0, 7, 1)) == (7, MessageType.REQUEST, b"")
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    "data",
    [
        header(3, 1, 1) + b"ab",  # part of a message
        header(1, 1, 1) + b"a" + header(1, 3, 1) + b"b",  # more than one
        header(1, 1, 9) + b"?",  # unknown type: the decoder skips it
        header(5, 1, 1) + b"12345",  # over the limit of 4
        header(0, 1, 1)[:6],  # not even a header
        bytearray(header(1, 1, 1) + b"a"),  # not immutable bytes
    ],
)
def test_take_whole_leaves_anything_else_to_feed(data: bytes) -> None:
    decoder = MessageDecoder(4)
    assert decoder.take_whole(data) is None
    assert decoder.buffered == 0


def test_take_whole_declines_while_something_is_buffered() -> None:
    decoder = MessageDecoder()
    first = encode_message(1, MessageType.REQUEST, b"first")
    decoder.feed(first[:4])
    second = encode_message(3, MessageType.REQUEST, b"second")
    assert decoder.take_whole(second) is None
    decoder.feed(first[4:] + second)
    assert drain(decoder) == [
        Message(1, MessageType.REQUEST, 0, b"first"),
        Message(3, MessageType.REQUEST, 0, b"second"),
    ]


# -- errors ---------------------------------------------------------------------------------


def test_status_errors() -> None:
    err = status_error(12, "service foo")
    assert type(err) is StatusError
    assert err.code is Code.UNIMPLEMENTED
    assert err.message == "service foo"
    assert str(err) == "rpc error: code = Unimplemented desc = service foo"
    deadline = status_error(4, "context deadline exceeded")
    assert isinstance(deadline, DeadlineExceededError)
    assert isinstance(deadline, TimeoutError)
    assert deadline.code is Code.DEADLINE_EXCEEDED
    assert str(deadline) == "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    odd = status_error(99, "what")
    assert odd.code is Code.UNKNOWN
    assert "99" in odd.message
    assert Code.CANCELLED.go_name == "Canceled"
    assert Code.OK.go_name == "OK"


# -- upstream captures ----------------------------------------------------------------------


def ttrpc_streams(capture: Path) -> dict[tuple[str, int], bytes]:
    """Undo the NRI mux framing of a capture: the ttRPC byte stream of each (dir, conn)."""
    chunks = json.loads(capture.read_text())["chunks"]
    raw: dict[str, bytearray] = defaultdict(bytearray)
    for chunk in chunks:
        raw[chunk["dir"]] += bytes.fromhex(chunk["hex"])
    streams: dict[tuple[str, int], bytearray] = defaultdict(bytearray)
    for direction, data in raw.items():
        pos = 0
        while pos < len(data):
            conn, length = struct.unpack_from(">II", data, pos)
            streams[direction, conn] += data[pos + 8 : pos + 8 + length]
            pos += 8 + length
    return {key: bytes(value) for key, value in streams.items()}


@pytest.mark.parametrize("capture", sorted(CAPTURES.glob("*.json")), ids=lambda p: p.stem)
def test_upstream_captures_decode_and_reencode(capture: Path) -> None:
    requests = responses = 0
    for (direction, conn), data in ttrpc_streams(capture).items():
        decoder = MessageDecoder()
        decoder.feed(data)
        messages = drain(decoder)
        assert decoder.buffered == 0
        assert messages, (direction, conn)
        for msg in messages:
            assert msg.flags == 0
            assert msg.stream_id % 2 == 1
            assert encode_message(msg.stream_id, msg.type, msg.data) in data
            if msg.type is MessageType.REQUEST:
                requests += 1
                req = decode_request(msg.data)
                assert req.service.startswith("nri.pkg.api.v1alpha1.")
                again = encode_request(
                    req.service, req.method, req.payload, timeout_nano=req.timeout_nano
                )
                assert again == msg.data
            else:
                assert msg.type is MessageType.RESPONSE
                responses += 1
                resp = decode_response(msg.data)
                code = resp.status.code if resp.HasField("status") else 0
                assert encode_response(code, resp.status.message, resp.payload) == msg.data
        ids = [m.stream_id for m in messages if m.type is MessageType.REQUEST]
        assert ids == sorted(ids)
    assert requests == responses > 0
