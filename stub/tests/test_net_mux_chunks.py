"""The mux's reader whatever the read boundaries: every split of the trunk's byte stream
(down to single bytes) gives the same frames, and a bad frame after good ones closes the
trunk after delivering exactly the good ones.

Reads are fed the way asyncio does it for the trunk: into the protocol's one reused read
buffer (``get_buffer``/``buffer_updated``), which is then scribbled over, so a frame that
kept a view of that buffer instead of a copy would show up as corrupted.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nri.net import Mux, MuxProtocolError, socketpair

LIMIT = 64
"""The max read payload of the muxes here."""


class Frames(asyncio.Protocol):
    """Records each payload delivered; optionally closes the mux at a marker payload."""

    def __init__(self, mux: Mux | None = None, close_at: bytes | None = None) -> None:
        self.payloads: list[bytes] = []
        self.mux = mux
        self.close_at = close_at

    def data_received(self, data: bytes) -> None:
        # Kept as given: a view of the read buffer would change when the buffer is reused.
        assert type(data) is bytes
        self.payloads.append(data)
        if self.mux is not None and data == self.close_at:
            self.mux.close()


def feed(mux: Mux, chunks: Iterable[bytes]) -> None:
    """Deliver ``chunks`` as separate reads through the trunk protocol's read buffer."""
    protocol = mux._protocol
    for chunk in chunks:
        if mux.is_closed:
            return
        buffer = protocol.get_buffer(len(chunk))
        assert len(buffer) >= len(chunk)
        buffer[: len(chunk)] = chunk
        protocol.buffer_updated(len(chunk))
        buffer[:] = b"\xee" * len(buffer)


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


async def run_mux(chunks: list[bytes], close_at: bytes | None = None) -> tuple[Mux, Frames, Frames]:
    left, right = socketpair()
    right.close()  # nothing is read from the socket: reads are fed by hand
    mux = await Mux.from_socket(left, max_read_payload=LIMIT)
    one, two = Frames(mux, close_at), Frames(mux, close_at)
    mux.open(1, one)
    mux.open(2, two)
    feed(mux, chunks)
    return mux, one, two


frames_st = st.lists(
    st.tuples(st.sampled_from([1, 2, 3]), st.binary(max_size=LIMIT)), min_size=1, max_size=8
)
bad_frames = [
    struct.pack(">II", 0, 3) + b"bad",  # the reserved conn id
    struct.pack(">II", 1, LIMIT + 1) + b"x" * (LIMIT + 1),  # above the limit
]


def wire_of(frames: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack(">II", conn, len(payload)) + payload for conn, payload in frames)


def expected(frames: list[tuple[int, bytes]], conn: int) -> list[bytes]:
    return [payload for c, payload in frames if c == conn and payload]


async def close(mux: Mux) -> None:
    mux.close()
    await mux.wait_closed()


@settings(max_examples=150, deadline=None)
@given(frames=frames_st, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_frames_arrive_whole_whatever_the_read_boundaries(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    async def check() -> None:
        wire = wire_of(frames)
        mux, one, two = await run_mux(split(wire, cuts))
        assert one.payloads == expected(frames, 1)
        assert two.payloads == expected(frames, 2)
        assert not mux.is_closed
        await close(mux)

    asyncio.run(check())


@settings(max_examples=150, deadline=None)
@given(
    before=frames_st,
    after=frames_st,
    bad=st.sampled_from(bad_frames),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_a_bad_frame_after_good_ones_whatever_the_read_boundaries(
    before: list[tuple[int, bytes]],
    after: list[tuple[int, bytes]],
    bad: bytes,
    cuts: list[int],
) -> None:
    async def check() -> None:
        wire = wire_of(before) + bad + wire_of(after)
        mux, one, two = await run_mux(split(wire, cuts))
        assert one.payloads == expected(before, 1)
        assert two.payloads == expected(before, 2)
        assert mux.is_closed
        assert isinstance(mux.close_reason, MuxProtocolError)
        await mux.wait_closed()

    asyncio.run(check())


async def test_every_single_split_and_byte_by_byte() -> None:
    frames = [(1, b"first"), (2, b""), (3, b"dropped"), (2, b"second"), (1, b"x" * LIMIT)]
    wire = wire_of(frames)
    splits = [[wire[:i], wire[i:]] for i in range(len(wire) + 1)]
    splits.append([wire[i : i + 1] for i in range(len(wire))])
    for chunks in splits:
        mux, one, two = await run_mux(chunks)
        assert one.payloads == expected(frames, 1), chunks
        assert two.payloads == expected(frames, 2), chunks
        await close(mux)


@pytest.mark.parametrize("cut", [None, 3, 20])
async def test_closing_the_mux_while_a_frame_is_delivered_stops_delivery(cut: int | None) -> None:
    frames = [(1, b"a"), (2, b"stop"), (1, b"b"), (2, b"c")]
    wire = wire_of(frames)
    mux, one, two = await run_mux([wire] if cut is None else [wire[:cut], wire[cut:]], b"stop")
    assert one.payloads == [b"a"]
    assert two.payloads == [b"stop"]
    assert mux.is_closed
    assert mux.close_reason is None
    await mux.wait_closed()
