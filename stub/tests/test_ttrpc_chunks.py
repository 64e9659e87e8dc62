"""The ttRPC server and client whatever the read boundaries, with plain and async handlers.

Requests are fed to a server connection in arbitrary chunks (one message, several, or a
part of one per read); each request is answered exactly once and plain handlers answer in
request order, as they arrive. A handler that closes the connection stops the requests
after it in the same read.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nri.api import api_pb2 as pb
from nri.ttrpc import (
    Client,
    Code,
    MessageDecoder,
    MessageType,
    Method,
    Server,
    StatusError,
    decode_response,
    encode_message,
    encode_request,
    encode_response,
)

SVC = "test.v1.Chunks"


class Wire(asyncio.Transport):
    """A transport that records what the protocol writes."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "write after close"
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def responses(self) -> list[tuple[int, int, str, str]]:
        """(stream id, code, message, echoed config) of every response written."""
        decoder = MessageDecoder()
        decoder.feed(bytes(self.written))
        out = []
        while (msg := decoder.next_message()) is not None:
            assert msg.type is MessageType.RESPONSE
            resp = decode_response(msg.data)
            echoed = pb.ConfigureRequest.FromString(resp.payload).config
            out.append((msg.stream_id, resp.status.code, resp.status.message, echoed))
        return out


class Service:
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.wire: Wire | None = None

    def plain(self, req: pb.ConfigureRequest) -> pb.ConfigureRequest:
        self.ran.append(req.config)
        if req.config.startswith("fail"):
            raise ValueError(req.config)
        if req.config.startswith("close"):
            assert self.wire is not None
            self.wire.close()
        return req

    async def coroutine(self, req: pb.ConfigureRequest) -> pb.ConfigureRequest:
        self.ran.append(req.config)
        await asyncio.sleep(0)
        if req.config.startswith("fail"):
            raise ValueError(req.config)
        return req

    def server(self) -> Server:
        server = Server()
        server.register(
            SVC,
            {
                "Plain": Method(pb.ConfigureRequest, self.plain),
                "Async": Method(pb.ConfigureRequest, self.coroutine),
            },
        )
        return server


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def wire_of(calls: list[tuple[str, str]]) -> bytes:
    return b"".join(
        encode_message(
            2 * i + 1,
            MessageType.REQUEST,
            encode_request(SVC, method, pb.ConfigureRequest(config=config).SerializeToString()),
        )
        for i, (method, config) in enumerate(calls)
    )


async def serve(chunks: list[bytes], service: Service) -> Wire:
    protocol = service.server().connection()
    wire = Wire(protocol)
    service.wire = wire
    protocol.connection_made(wire)
    for chunk in chunks:
        protocol.data_received(chunk)
    for _ in range(5):  # the async handlers' steps
        await asyncio.sleep(0)
    return wire


calls_st = st.lists(
    st.tuples(
        st.sampled_from(["Plain", "Async"]),
        st.builds(lambda fail, n: f"{'fail' if fail else 'ok'}-{n}", st.booleans(), st.integers()),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(calls=calls_st, cuts=st.lists(st.integers(0, 10_000), max_size=10))
def test_every_request_is_answered_once_whatever_the_read_boundaries(
    calls: list[tuple[str, str]], cuts: list[int]
) -> None:
    async def check() -> None:
        service = Service()
        wire = await serve(split(wire_of(calls), cuts), service)
        responses = wire.responses()
        assert sorted(sid for sid, *_ in responses) == [2 * i + 1 for i in range(len(calls))]
        for sid, code, message, echoed in responses:
            _, config = calls[sid // 2]
            if config.startswith("fail"):
                assert (code, message, echoed) == (Code.UNKNOWN, config, "")
            else:
                assert (code, message, echoed) == (Code.OK, "", config)
        plain = [2 * i + 1 for i, (method, _) in enumerate(calls) if method == "Plain"]
        assert [sid for sid, *_ in responses if sid in plain] == plain
        assert sorted(service.ran) == sorted(config for _, config in calls)

    asyncio.run(check())


async def test_a_plain_handler_that_closes_the_connection_stops_the_rest_of_the_read() -> None:
    calls = [("Plain", "ok-1"), ("Plain", "close-2"), ("Plain", "ok-3"), ("Async", "ok-4")]
    service = Service()
    wire = await serve([wire_of(calls)], service)
    assert service.ran == ["ok-1", "close-2"]
    assert [sid for sid, *_ in wire.responses()] == [1]


class Replies(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False


@settings(max_examples=100, deadline=None)
@given(count=st.integers(1, 6), cuts=st.lists(st.integers(0, 10_000), max_size=10))
def test_client_completes_calls_whatever_the_read_boundaries(count: int, cuts: list[int]) -> None:
    async def check() -> None:
        client = Client()
        client.connection_made(Replies())
        calls = [
            asyncio.ensure_future(
                client.call(SVC, "Plain", pb.ConfigureRequest(config=str(i)), pb.ConfigureRequest)
            )
            for i in range(count)
        ]
        await asyncio.sleep(0)
        replies = b""
        for i in range(count):
            payload = pb.ConfigureRequest(config=str(i)).SerializeToString()
            code = Code.OK if i % 2 == 0 else Code.NOT_FOUND
            body = encode_response(code, "" if code == Code.OK else "gone", payload)
            replies += encode_message(2 * i + 1, MessageType.RESPONSE, body)
        for chunk in split(replies, cuts):
            client.data_received(chunk)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for i, result in enumerate(results):
            if i % 2 == 0:
                assert isinstance(result, pb.ConfigureRequest) and result.config == str(i)
            else:
                assert isinstance(result, StatusError) and result.code == Code.NOT_FOUND

    asyncio.run(check())
