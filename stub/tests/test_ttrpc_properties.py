"""Property tests of the ttRPC codec: arbitrary input yields messages or specific errors only."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from nri.ttrpc import (
    Message,
    MessageDecoder,
    MessageType,
    OversizedInboundMessageError,
    ProtocolError,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    encode_response,
)

LIMIT = 256

messages_st = st.builds(
    Message,
    stream_id=st.integers(0, 0xFFFFFFFF),
    type=st.sampled_from(list(MessageType)),
    flags=st.integers(0, 0xFF),
    data=st.binary(max_size=LIMIT),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def decode_all(chunks: list[bytes], limit: int = LIMIT) -> tuple[list[Message], int]:
    """Decode chunk by chunk; return the messages and the number of oversize errors."""
    decoder = MessageDecoder(limit)
    out: list[Message] = []
    oversized = 0
    for chunk in chunks:
        decoder.feed(chunk)
        while True:
            try:
                msg = decoder.next_message()
            except OversizedInboundMessageError as exc:
                assert exc.length > limit
                oversized += 1
                continue
            if msg is None:
                break
            assert len(msg.data) <= limit
            out.append(msg)
        # Never more than one message plus the chunk stays buffered.
        assert decoder.buffered <= limit + 10 + len(chunk)
    return out, oversized


@given(st.lists(messages_st, max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
def test_round_trip_any_split(messages: list[Message], cuts: list[int]) -> None:
    blob = b"".join(encode_message(m.stream_id, m.type, m.data, m.flags) for m in messages)
    got, oversized = decode_all(split(blob, cuts))
    assert got == messages
    assert oversized == 0


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_never_crash(chunks: list[bytes]) -> None:
    decode_all(chunks)


@given(
    st.lists(messages_st, min_size=1, max_size=5),
    st.integers(0, 10_000),
    st.integers(0, 255),
    st.integers(0, 10_000),
)
def test_corrupted_and_truncated(
    messages: list[Message], index: int, value: int, truncate: int
) -> None:
    blob = bytearray(
        b"".join(encode_message(m.stream_id, m.type, m.data, m.flags) for m in messages)
    )
    blob[index % len(blob)] = value
    data = bytes(blob[: len(blob) - truncate % len(blob)])
    got, _ = decode_all([data])
    for msg in got:
        assert isinstance(msg.type, MessageType)


@given(st.integers(LIMIT + 1, 0xFFFFFFFF), st.integers(1, 0xFFFFFFFF), st.binary(max_size=300))
@settings(max_examples=50)
def test_oversized_header_allocates_nothing(length: int, stream_id: int, tail: bytes) -> None:
    data = length.to_bytes(4, "big") + stream_id.to_bytes(4, "big") + b"\x01\x00" + tail
    got, oversized = decode_all([data])
    assert got == []
    assert oversized == 1


@given(st.binary(max_size=200))
def test_envelope_decoders_only_raise_protocol_error(data: bytes) -> None:
    for decode in (decode_request, decode_response):
        with contextlib.suppress(ProtocolError):
            decode(data)


@given(
    st.text(max_size=40),
    st.text(max_size=40),
    st.binary(max_size=100),
    st.integers(-(2**63), 2**63 - 1),
    st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=3),
)
def test_request_round_trip(
    service: str, method: str, payload: bytes, timeout: int, metadata: list[tuple[str, str]]
) -> None:
    req = decode_request(
        encode_request(service, method, payload, timeout_nano=timeout, metadata=metadata)
    )
    assert (req.service, req.method, req.payload, req.timeout_nano) == (
        service,
        method,
        payload,
        timeout,
    )
    assert [(kv.key, kv.value) for kv in req.metadata] == metadata


@given(st.integers(0, 16), st.text(max_size=40), st.binary(max_size=100))
def test_response_round_trip(code: int, message: str, payload: bytes) -> None:
    resp = decode_response(encode_response(code, message, payload))
    assert resp.payload == payload
    assert resp.HasField("status") == (code != 0)
    if code:
        assert (resp.status.code, resp.status.message) == (code, message)
