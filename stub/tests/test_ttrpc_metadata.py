"""ttRPC request metadata: the Metadata type and its codec, against a known-good frame."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nri.api import api_pb2 as pb
from nri.ttrpc import (
    MessageDecoder,
    MessageType,
    Metadata,
    TraceContext,
    decode_request,
    encode_message,
    encode_request,
    request_metadata,
)

DATA = Path(__file__).parent / "data"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def captured_frame() -> bytes:
    return bytes.fromhex(
        json.loads((DATA / "ttrpc-request-traceparent.json").read_text())["frame_hex"]
    )


def test_keys_are_lowercased_and_values_kept_in_order() -> None:
    md = Metadata({"X-Tag": ["a", "b"], "Single": "1"})
    md.append("x-TAG", "c")
    assert md.get_all("x-tag") == ["a", "b", "c"]
    assert md.get("SINGLE") == "1"
    assert "single" in md and "Single" in md and "other" not in md
    assert md.keys() == list(md) == ["x-tag", "single"]
    assert list(md.items()) == [("x-tag", "a"), ("x-tag", "b"), ("x-tag", "c"), ("single", "1")]
    md.set("Single", "2", "3")
    assert md.get_all("single") == ["2", "3"]
    md.set("single")
    md.delete("absent")
    assert "single" not in md
    assert md.get("single") is None and md.get_all("single") == []


def test_copy_is_independent_and_equality_by_content() -> None:
    md = Metadata([("a", "1"), ("A", "2")])
    other = md.copy()
    other.append("a", "3")
    assert md.get_all("a") == ["1", "2"]
    assert other != md
    assert Metadata({"a": ["1", "2"]}) == md
    assert not Metadata() and len(md) == 1
    got = md.get_all("a")
    got.append("x")
    assert md.get_all("a") == ["1", "2"]


def test_request_round_trip_with_metadata() -> None:
    md = Metadata({"traceparent": TRACEPARENT, "x-tag": ["a", "b"]})
    data = encode_request("svc", "M", b"\x01", timeout_nano=5, metadata=md.items())
    req = decode_request(data)
    assert [(kv.key, kv.value) for kv in req.metadata] == list(md.items())
    assert request_metadata(req) == md
    assert req.service == "svc" and req.method == "M" and req.timeout_nano == 5


def test_request_without_metadata_has_no_field_5() -> None:
    data = encode_request("svc", "M", b"", metadata=Metadata().items())
    assert data == encode_request("svc", "M", b"")
    assert not request_metadata(decode_request(data))


def test_received_mixed_case_keys_are_lowercased() -> None:
    req = decode_request(encode_request("s", "m", b"", metadata=[("TraceParent", TRACEPARENT)]))
    assert request_metadata(req).keys() == ["traceparent"]


def test_decodes_a_known_good_request_frame_with_trace_metadata() -> None:
    decoder = MessageDecoder()
    decoder.feed(captured_frame())
    msg = decoder.next_message()
    assert msg is not None and decoder.next_message() is None
    assert (msg.stream_id, msg.type, msg.flags) == (3, MessageType.REQUEST, 0)
    req = decode_request(msg.data)
    assert (req.service, req.method, req.timeout_nano) == (
        "nri.pkg.api.v1alpha1.Plugin",
        "Configure",
        2_000_000_000,
    )
    configure = pb.ConfigureRequest.FromString(req.payload)
    assert (configure.runtime_name, configure.runtime_version) == ("containerd", "v2.0.0")
    md = request_metadata(req)
    assert list(md.items()) == [
        ("traceparent", TRACEPARENT),
        ("tracestate", TRACESTATE),
        ("x-tag", "a"),
        ("x-tag", "b"),
    ]
    assert TraceContext.from_metadata(md) == TraceContext(TRACEPARENT, TRACESTATE)


def test_encoder_reproduces_the_known_good_frame_byte_for_byte() -> None:
    payload = pb.ConfigureRequest(runtime_name="containerd", runtime_version="v2.0.0")
    md = Metadata({"traceparent": TRACEPARENT, "tracestate": TRACESTATE, "x-tag": ["a", "b"]})
    body = encode_request(
        "nri.pkg.api.v1alpha1.Plugin",
        "Configure",
        payload.SerializeToString(),
        timeout_nano=2_000_000_000,
        metadata=md.items(),
    )
    assert encode_message(3, MessageType.REQUEST, body) == captured_frame()


_keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_values = st.text(max_size=20)


@given(st.lists(st.tuples(_keys, _values), max_size=12))
def test_metadata_survives_the_codec(pairs: list[tuple[str, str]]) -> None:
    md = Metadata(pairs)
    req = decode_request(encode_request("s", "m", b"p", metadata=md.items()))
    assert request_metadata(req) == md
    for key, value in pairs:
        assert value in md.get_all(key.upper())


@given(st.lists(st.tuples(_keys, _values), max_size=12))
def test_pairs_keep_their_order_per_key(pairs: list[tuple[str, str]]) -> None:
    md = Metadata(pairs)
    for key in md:
        assert md.get_all(key) == [v for k, v in pairs if k.lower() == key]
