"""Replay real byte-level captures of upstream's Go runtime <-> Go plugin exchanges.

Every capture (tests/data/captures/*.json) is split with our sans-IO layers into mux frames,
ttRPC messages, envelopes and NRI messages; everything must decode with our schema, agree
with the capture's own decoded view, and re-encode to the very same bytes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from nri.api import api_pb2
from nri.net import FrameDecoder, encode_frames
from nri.ttrpc import (
    MessageDecoder,
    MessageType,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    encode_response,
)

CAPTURES = sorted((Path(__file__).parent / "data" / "captures").glob("*.json"))
POOL_PREFIX = "nri.pkg.api.v1alpha1."


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def message_class(full_name: str) -> type[Message]:
    assert full_name.startswith(POOL_PREFIX), full_name
    cls = getattr(api_pb2, full_name[len(POOL_PREFIX) :])
    assert isinstance(cls, type)
    return cls


def method_types(service: str, method: str) -> tuple[type[Message], type[Message]]:
    descriptor = api_pb2.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[-1]]
    method_descriptor = descriptor.methods_by_name[method]
    return (
        message_class(method_descriptor.input_type.full_name),
        message_class(method_descriptor.output_type.full_name),
    )


def has_multi_entry_map(message: Message) -> bool:
    """Whether ``message`` holds a map field with two or more entries, at any depth."""
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if len(value) > 1:
                return True
            entries = (
                value.values() if field.message_type.fields_by_name["value"].message_type else ()
            )
            if any(has_multi_entry_map(v) for v in entries):
                return True
        elif field.message_type is not None:
            items = value if field.is_repeated else [value]
            if any(has_multi_entry_map(v) for v in items):
                return True
    return False


@dataclass
class Replayed:
    frames: list[tuple[str, int, bytes, bytes]]  # direction, conn id, raw frame bytes, payload
    messages: list[tuple[str, int, Any]]  # direction, conn id, ttRPC message


def replay(capture: dict[str, Any]) -> Replayed:
    """Split both directions of a capture into frames and ttRPC messages, in observed order."""
    decoders: dict[str, FrameDecoder] = defaultdict(FrameDecoder)
    ttrpc: dict[tuple[str, int], MessageDecoder] = defaultdict(MessageDecoder)
    frames, messages = [], []
    for chunk in capture["chunks"]:
        direction = chunk["dir"]
        decoder = decoders[direction]
        decoder.feed(bytes.fromhex(chunk["hex"]))
        while (frame := decoder.next_frame()) is not None:
            header = (frame.conn_id).to_bytes(4, "big") + len(frame.payload).to_bytes(4, "big")
            frames.append((direction, frame.conn_id, header + frame.payload, frame.payload))
            stream = ttrpc[(direction, frame.conn_id)]
            stream.feed(frame.payload)
            while (message := stream.next_message()) is not None:
                messages.append((direction, frame.conn_id, message))
    for name, decoder in decoders.items():
        assert decoder.buffered == 0, f"{name}: {decoder.buffered} bytes left over"
    return Replayed(frames, messages)


@pytest.fixture(params=CAPTURES, ids=[p.stem for p in CAPTURES])
def capture(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_chunks_split_into_the_captured_mux_frames(capture: dict[str, Any]) -> None:
    replayed = replay(capture)
    expected = capture["decoded"]["mux_frames"]
    got = [(d, c, len(p)) for d, c, _, p in replayed.frames]
    want = [(f["dir"], f["conn_id"], f["length"]) for f in expected]
    assert sorted(got) == sorted(want)
    for direction in ("plugin->runtime", "runtime->plugin"):
        assert [g for g in got if g[0] == direction] == [w for w in want if w[0] == direction]


def test_frames_re_encode_to_the_same_bytes(capture: dict[str, Any]) -> None:
    for _, conn_id, raw, payload in replay(capture).frames:
        assert encode_frames(conn_id, payload, max_payload=max(len(payload), 1)) == raw


def test_ttrpc_messages_and_payloads_decode_and_re_encode(capture: dict[str, Any]) -> None:
    replayed = replay(capture)
    expected = capture["decoded"]["ttrpc_messages"]
    assert len(replayed.messages) == len(expected)
    requests: dict[tuple[int, int], tuple[str, str]] = {}
    by_key = {(m["dir"], m["mux_conn_id"], m["stream_id"], m["type"]): m for m in expected}
    for direction, conn_id, message in replayed.messages:
        want = by_key[(direction, conn_id, message.stream_id, int(message.type))]
        assert message.flags == want["flags"] == 0
        assert len(message.data) == want["length"]
        raw = encode_message(message.stream_id, message.type, message.data, message.flags)
        assert raw[:10].hex() == want["header_hex"]
        if message.type == MessageType.REQUEST:
            envelope = decode_request(message.data)
            assert (envelope.service, envelope.method) == (want["service"], want["method"])
            assert envelope.timeout_nano == want.get("timeout_nano", 0)
            assert not envelope.metadata
            assert (
                encode_request(
                    envelope.service,
                    envelope.method,
                    envelope.payload,
                    timeout_nano=envelope.timeout_nano,
                )
                == message.data
            )
            requests[(conn_id, message.stream_id)] = (envelope.service, envelope.method)
            payload_type, _ = method_types(envelope.service, envelope.method)
            payload = envelope.payload
        else:
            assert message.type == MessageType.RESPONSE
            envelope = decode_response(message.data)
            service, method = requests[(conn_id, message.stream_id)]
            assert (service, method) == (want["service"], want["method"])
            assert not envelope.HasField("status"), "upstream sends no status on success"
            assert encode_response(0, "", envelope.payload) == message.data
            _, payload_type = method_types(service, method)
            payload = envelope.payload
        assert payload_type.DESCRIPTOR.full_name == want["payload_type"]
        decoded = payload_type.FromString(payload)
        assert json_format.MessageToDict(decoded) == want["payload"]
        reencoded = decoded.SerializeToString()
        if has_multi_entry_map(decoded):
            # Go writes map entries in random order, so only size and content can match.
            assert len(reencoded) == len(payload)
            assert payload_type.FromString(reencoded) == decoded
        else:
            assert reencoded == payload


def test_empty_ok_responses_are_header_only(capture: dict[str, Any]) -> None:
    replayed = replay(capture)
    empties = [m for _, _, m in replayed.messages if m.type == MessageType.RESPONSE and not m.data]
    assert empties, "every capture has at least one empty OK response"
    for message in empties:
        assert encode_message(message.stream_id, message.type, b"") == (
            b"\x00\x00\x00\x00" + message.stream_id.to_bytes(4, "big") + b"\x02\x00"
        )


def test_large_messages_are_framed_for_the_go_reader() -> None:
    """Go's reader cannot take a first frame over 4096 bytes; our writer never sends one."""
    capture = load(Path(__file__).parent / "data" / "captures" / "bigsync-gobench.json")
    replayed = replay(capture)
    big = [m for d, _, m in replayed.messages if len(m.data) > 4096]
    assert big, "the capture carries a Synchronize larger than 4 KiB"
    go_frames = [len(p) for d, c, _, p in replayed.frames if len(p) > 1000]
    assert go_frames[:2] == [4096, 17144]
    for message in big:
        raw = encode_message(message.stream_id, message.type, message.data)
        ours = FrameDecoder().frames(encode_frames(1, raw))
        assert all(len(f.payload) <= 4096 for f in ours)
        assert b"".join(f.payload for f in ours) == raw


def test_subscription_masks_match_the_captures() -> None:
    """The masks upstream plugins announce: gobench 0x1FFF, template 0x7FF, device-injector 0x8."""
    expected = {"gobenchplugin": 0x1FFF, "template": 0x7FF, "device-injector": 0x8}
    for stem, mask in expected.items():
        replayed = replay(load(Path(__file__).parent / "data" / "captures" / f"{stem}.json"))
        configure_streams = set()
        for _, conn_id, message in replayed.messages:
            if message.type == MessageType.REQUEST:
                envelope = decode_request(message.data)
                if envelope.method == "Configure":
                    configure_streams.add((conn_id, message.stream_id))
            elif (conn_id, message.stream_id) in configure_streams:
                reply = api_pb2.ConfigureResponse.FromString(decode_response(message.data).payload)
                assert reply.events == mask, stem
                break
        else:
            pytest.fail(f"no Configure response in {stem}")
