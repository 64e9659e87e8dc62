"""ttRPC client and server over real unix sockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import shutil
import socket
import tempfile
import warnings
from collections.abc import AsyncIterator

import pytest
from google.protobuf.message import Message as ProtoMessage

from nri.api import api_pb2 as pb
from nri.ttrpc import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Client,
    ClosedError,
    Code,
    DeadlineExceededError,
    MessageDecoder,
    MessageType,
    Method,
    OversizedMessageError,
    Server,
    StatusError,
    connect_unix,
    current_deadline,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    serve_unix,
)

SVC = "test.v1.Echo"


class EchoService:
    """Test service: echo, failures, and a handler that blocks on a gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = 0
        self.calls = 0
        self.deadlines: list[float | None] = []

    async def echo(self, req: pb.ConfigureRequest) -> pb.ConfigureRequest:
        self.calls += 1
        self.deadlines.append(current_deadline())
        for _ in range(random.randrange(3)):
            await asyncio.sleep(0)
        return req

    async def fail(self, req: pb.Empty) -> pb.Empty:
        raise ValueError("boom")

    async def status(self, req: pb.Empty) -> pb.Empty:
        raise StatusError(Code.NOT_FOUND, "no such pod")

    async def big(self, req: pb.Empty) -> pb.ConfigureRequest:
        return pb.ConfigureRequest(config="z" * 1000)

    async def wrong_type(self, req: pb.Empty) -> pb.Empty:
        return "not a message"  # type: ignore[return-value]

    async def block(self, req: pb.Empty) -> pb.Empty:
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return pb.Empty()

    def server(self, **kwargs: int) -> Server:
        server = Server(**kwargs)
        server.register(
            SVC,
            {
                "Echo": Method(pb.ConfigureRequest, self.echo),
                "Fail": Method(pb.Empty, self.fail),
                "Status": Method(pb.Empty, self.status),
                "WrongType": Method(pb.Empty, self.wrong_type),
                "Big": Method(pb.Empty, self.big),
                "Block": Method(pb.Empty, self.block),
            },
        )
        return server


@contextlib.asynccontextmanager
async def socket_dir() -> AsyncIterator[str]:
    # Short paths: sun_path is limited to 108 bytes.
    path = tempfile.mkdtemp(prefix="ttrpc-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    async with socket_dir() as directory:
        path = os.path.join(directory, "s.sock")
        await serve_unix(server, path)
        try:
            yield path
        finally:
            await server.close(grace=0)


@contextlib.asynccontextmanager
async def connected(server: Server) -> AsyncIterator[Client]:
    async with serving(server) as path:
        client = await connect_unix(path)
        try:
            yield client
        finally:
            client.close()
            await client.wait_closed()


class RawPeer:
    """A raw byte-level peer on a unix socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, stream_id: int, data: bytes, mtype: int = MessageType.REQUEST) -> None:
        self.writer.write(encode_message(stream_id, MessageType(mtype), data))
        await self.writer.drain()

    async def request(
        self, stream_id: int, method: str, payload: bytes = b"", timeout_nano: int = 0
    ) -> None:
        await self.send(stream_id, encode_request(SVC, method, payload, timeout_nano=timeout_nano))

    async def recv(self) -> tuple[int, int, int, bytes]:
        head = await self.reader.readexactly(10)
        length = int.from_bytes(head[:4], "big")
        sid = int.from_bytes(head[4:8], "big")
        return sid, head[8], head[9], await self.reader.readexactly(length)

    async def recv_status(self) -> tuple[int, Code, str]:
        sid, mtype, flags, data = await self.recv()
        assert (mtype, flags) == (MessageType.RESPONSE, 0)
        resp = decode_response(data)
        return sid, Code(resp.status.code), resp.status.message


@contextlib.asynccontextmanager
async def raw_peer(path: str) -> AsyncIterator[RawPeer]:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        yield RawPeer(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def failed_call(client: Client, method: str) -> tuple[Code, str]:
    """Call ``method`` with an Empty request expecting a StatusError; return its status."""
    with pytest.raises(StatusError) as info:
        await client.call(SVC, method, pb.Empty(), pb.Empty)
    return info.value.code, info.value.message


# -- calls ----------------------------------------------------------------------------------


async def test_many_concurrent_calls() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:

        async def one(i: int) -> None:
            req = pb.ConfigureRequest(config=f"cfg-{i}", request_timeout=i)
            resp = await client.call(SVC, "Echo", req, pb.ConfigureRequest)
            assert resp == req

        await asyncio.gather(*(one(i) for i in range(300)))
    assert svc.calls == 300
    assert svc.deadlines == [None] * 300


async def test_unknown_service_and_method() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        with pytest.raises(StatusError) as info:
            await client.call("no.such.Service", "Echo", pb.Empty(), pb.Empty)
        assert info.value.code is Code.UNIMPLEMENTED
        assert info.value.message == "service no.such.Service"
        with pytest.raises(StatusError) as info:
            await client.call(SVC, "Nope", pb.Empty(), pb.Empty)
        assert info.value.code is Code.UNIMPLEMENTED
        assert info.value.message == "method Nope"


async def test_handler_errors_become_statuses(caplog: pytest.LogCaptureFixture) -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        with caplog.at_level(logging.INFO, logger="nri.ttrpc"):
            assert await failed_call(client, "Fail") == (Code.UNKNOWN, "boom")
            assert await failed_call(client, "Status") == (Code.NOT_FOUND, "no such pod")
            code, message = await failed_call(client, "WrongType")
            assert code is Code.INTERNAL
            assert "str" in message
        # The server keeps serving on the same connection.
        req = pb.ConfigureRequest(runtime_name="still-here")
        assert await client.call(SVC, "Echo", req, pb.ConfigureRequest) == req
    failed = [r for r in caplog.records if "test.v1.Echo/Fail" in r.getMessage()]
    assert failed
    assert failed[0].levelno == logging.ERROR
    assert failed[0].exc_info is not None


async def test_empty_ok_response_is_header_only() -> None:
    svc = EchoService()
    svc.gate.set()
    async with serving(svc.server()) as path, raw_peer(path) as peer:
        await peer.request(1, "Block")
        assert await peer.recv() == (1, MessageType.RESPONSE, 0, b"")


# -- deadlines and cancellation -------------------------------------------------------------


async def test_client_timeout_sends_timeout_nano_and_raises() -> None:
    received: list[bytes] = []
    got_request = asyncio.Event()

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.append(data)
            got_request.set()

    async with socket_dir() as directory:
        path = os.path.join(directory, "sink.sock")
        loop = asyncio.get_running_loop()
        listener = await loop.create_unix_server(Sink, path)
        try:
            client = await connect_unix(path)
            with pytest.raises(DeadlineExceededError) as info:
                await client.call(SVC, "Echo", pb.Empty(), pb.Empty, timeout=0.05)
            assert isinstance(info.value, TimeoutError)
            assert info.value.code is Code.DEADLINE_EXCEEDED
            assert "test.v1.Echo/Echo" in info.value.message
            await got_request.wait()
            decoder = MessageDecoder()
            decoder.feed(b"".join(received))
            msg = decoder.next_message()
            assert msg is not None
            assert (msg.stream_id, msg.type, msg.flags) == (1, MessageType.REQUEST, 0)
            req = decode_request(msg.data)
            assert (req.service, req.method, req.timeout_nano) == (SVC, "Echo", 50_000_000)
            # A non-positive timeout fails at once, without sending anything.
            with pytest.raises(DeadlineExceededError):
                await client.call(SVC, "Echo", pb.Empty(), pb.Empty, timeout=0)
            assert not client.is_closed
            client.close()
            await client.wait_closed()
        finally:
            listener.close()
            await listener.wait_closed()


async def test_timed_out_call_then_late_response_dropped() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        with pytest.raises(DeadlineExceededError):
            await client.call(SVC, "Block", pb.Empty(), pb.Empty, timeout=0.05)
        # The server cancelled the handler at the same deadline and answered late.
        req = pb.ConfigureRequest(config="after")
        assert await client.call(SVC, "Echo", req, pb.ConfigureRequest, timeout=30) == req
        deadline = svc.deadlines[-1]
        assert deadline is not None
        assert deadline > asyncio.get_running_loop().time()


async def test_cancelled_call_is_forgotten() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        task = asyncio.create_task(client.call(SVC, "Block", pb.Empty(), pb.Empty))
        await svc.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client._pending == {}
        svc.gate.set()  # the handler answers; the client drops the late response
        req = pb.ConfigureRequest(config="next")
        assert await client.call(SVC, "Echo", req, pb.ConfigureRequest) == req


async def test_server_cancels_handler_at_deadline(caplog: pytest.LogCaptureFixture) -> None:
    svc = EchoService()
    async with serving(svc.server()) as path, raw_peer(path) as peer:
        with caplog.at_level(logging.WARNING, logger="nri.ttrpc"):
            await peer.request(1, "Block", timeout_nano=20_000_000)
            assert await peer.recv_status() == (
                1,
                Code.DEADLINE_EXCEEDED,
                "context deadline exceeded",
            )
        assert svc.cancelled == 1
        assert any("test.v1.Echo/Block" in r.getMessage() for r in caplog.records)
        # The handler saw the deadline; the connection still works.
        await peer.request(3, "Echo", timeout_nano=60_000_000_000)
        sid, _, _, data = await peer.recv()
        assert sid == 3
        assert not decode_response(data).HasField("status")
        assert svc.deadlines[-1] is not None


async def test_calls_with_mixed_timeouts_each_expire_at_their_own_deadline() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        loop = asyncio.get_running_loop()
        long_call = asyncio.create_task(client.call(SVC, "Block", pb.Empty(), pb.Empty, timeout=30))
        await svc.started.wait()
        # A shorter deadline after a longer one, then another after the first expired.
        for timeout in (0.05, 0.1):
            started = loop.time()
            with pytest.raises(DeadlineExceededError, match=f"timeout {timeout:g}s"):
                await client.call(SVC, "Block", pb.Empty(), pb.Empty, timeout=timeout)
            assert timeout <= loop.time() - started < 5
        assert not long_call.done()
        svc.gate.set()
        assert await long_call == pb.Empty()
        assert client._pending == {}


async def test_server_deadlines_of_concurrent_requests_are_independent() -> None:
    svc = EchoService()
    async with serving(svc.server()) as path, raw_peer(path) as peer:
        await peer.request(1, "Block", timeout_nano=30_000_000_000)
        await peer.request(3, "Block", timeout_nano=20_000_000)
        assert await peer.recv_status() == (3, Code.DEADLINE_EXCEEDED, "context deadline exceeded")
        assert svc.cancelled == 1
        svc.gate.set()
        assert await peer.recv() == (1, MessageType.RESPONSE, 0, b"")
        assert svc.cancelled == 1


async def test_handler_that_ignores_its_deadline_still_answers() -> None:
    async def stubborn(request: pb.Empty) -> pb.ConfigureRequest:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        await asyncio.sleep(0)  # the deadline's cancellation is not pending any more
        return pb.ConfigureRequest(config="late")

    server = Server()
    server.register(SVC, {"Stubborn": Method(pb.Empty, stubborn)})
    async with serving(server) as path, raw_peer(path) as peer:
        await peer.request(1, "Stubborn", timeout_nano=20_000_000)
        sid, _, _, data = await peer.recv()
        response = decode_response(data)
        assert (sid, response.HasField("status")) == (1, False)
        assert pb.ConfigureRequest.FromString(response.payload).config == "late"


# -- plain (not async) handlers -------------------------------------------------------------


async def test_plain_handlers_answer_without_a_task(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[asyncio.Task[object] | None, float | None]] = []

    def echo(request: pb.ConfigureRequest) -> pb.ConfigureRequest:
        seen.append((asyncio.current_task(), current_deadline()))
        return request

    def fail(request: pb.Empty) -> pb.Empty:
        raise ValueError("plain boom")

    def status(request: pb.Empty) -> pb.Empty:
        raise StatusError(Code.FAILED_PRECONDITION, "not now")

    def wrong(request: pb.Empty) -> pb.Empty:
        return 42  # type: ignore[return-value]

    def later(request: pb.Empty) -> asyncio.Future[pb.Empty]:
        future: asyncio.Future[pb.Empty] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, future.set_result, pb.Empty())
        return future

    server = Server()
    server.register(
        SVC,
        {
            "Echo": Method(pb.ConfigureRequest, echo),
            "Fail": Method(pb.Empty, fail),
            "Status": Method(pb.Empty, status),
            "Wrong": Method(pb.Empty, wrong),
            "Later": Method(pb.Empty, later),
        },
    )
    async with connected(server) as client:
        loop = asyncio.get_running_loop()
        req = pb.ConfigureRequest(config="plain")
        before = loop.time()
        assert await client.call(SVC, "Echo", req, pb.ConfigureRequest, timeout=30) == req
        assert await client.call(SVC, "Echo", req, pb.ConfigureRequest) == req
        (task, deadline), (_, no_deadline) = seen
        assert task is None
        assert deadline is not None and before + 29 < deadline < loop.time() + 31
        assert no_deadline is None
        assert current_deadline() is None  # not leaked into the caller's context
        with caplog.at_level(logging.INFO, logger="nri.ttrpc"):
            assert await failed_call(client, "Fail") == (Code.UNKNOWN, "plain boom")
            assert await failed_call(client, "Status") == (Code.FAILED_PRECONDITION, "not now")
            code, message = await failed_call(client, "Wrong")
            assert code is Code.INTERNAL
            assert "int" in message
        assert await client.call(SVC, "Later", pb.Empty(), pb.Empty) == pb.Empty()
    assert any("plain boom" in r.getMessage() for r in caplog.records)


async def test_handler_cancelled_before_it_started_leaves_no_unawaited_coroutine() -> None:
    started = []

    async def handler(request: pb.Empty) -> pb.Empty:
        started.append(request)
        return pb.Empty()

    server = Server()
    server.register(SVC, {"Slow": Method(pb.Empty, handler)})
    connection = server.connection()

    class Sink(asyncio.Transport):
        def write(self, data: bytes | bytearray | memoryview) -> None:
            pass

    connection.connection_made(Sink())
    connection.data_received(
        encode_message(1, MessageType.REQUEST, encode_request(SVC, "Slow", b""))
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        connection.connection_lost(None)  # before the handler's task ever ran
        for _ in range(3):
            await asyncio.sleep(0)
        del connection, server
        gc.collect()
    assert started == []
    assert not [w for w in caught if "never awaited" in str(w.message)]


# -- protocol enforcement -------------------------------------------------------------------


async def test_even_and_non_increasing_stream_ids_rejected() -> None:
    svc = EchoService()
    async with serving(svc.server()) as path, raw_peer(path) as peer:
        await peer.request(2, "Echo")
        assert await peer.recv_status() == (
            2,
            Code.INVALID_ARGUMENT,
            "StreamID must be odd for client initiated streams",
        )
        await peer.request(5, "Echo")
        assert (await peer.recv())[0] == 5
        for sid in (5, 3):
            await peer.request(sid, "Echo")
            assert await peer.recv_status() == (
                sid,
                Code.INVALID_ARGUMENT,
                "StreamID cannot be re-used and must increment",
            )
        await peer.send(7, b"", MessageType.DATA)
        assert (await peer.recv_status())[:2] == (7, Code.INVALID_ARGUMENT)
        await peer.request(9, "Echo")
        assert (await peer.recv())[0] == 9
    assert svc.calls == 2


async def test_undecodable_request_and_payload() -> None:
    svc = EchoService()
    async with serving(svc.server()) as path, raw_peer(path) as peer:
        await peer.send(1, b"\xff\xff")
        sid, code, message = await peer.recv_status()
        assert (sid, code) == (1, Code.INVALID_ARGUMENT)
        assert message.startswith("unmarshal request error")
        await peer.request(3, "Echo", payload=b"\x0a\x05ab")
        sid, code, message = await peer.recv_status()
        assert (sid, code) == (3, Code.INTERNAL)
        assert "unmarshalling payload" in message


async def test_oversized_request_refused_locally() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        big = pb.ConfigureRequest(config="x" * DEFAULT_MAX_MESSAGE_SIZE)
        with pytest.raises(OversizedMessageError) as info:
            await client.call(SVC, "Echo", big, pb.ConfigureRequest)
        assert info.value.limit == DEFAULT_MAX_MESSAGE_SIZE
        assert client._pending == {}
        assert svc.calls == 0
        # Nothing was written and no stream id was used: the next call is stream 1,
        # which the server would reject had a request with id 1 been seen before.
        assert client._next_id == 1
        req = pb.ConfigureRequest(config="small")
        assert await client.call(SVC, "Echo", req, pb.ConfigureRequest) == req


async def test_oversized_inbound_answered_resource_exhausted() -> None:
    svc = EchoService()
    async with serving(svc.server()) as path, raw_peer(path) as peer:
        length = DEFAULT_MAX_MESSAGE_SIZE + 1
        peer.writer.write(length.to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x01\x00")
        peer.writer.write(bytes(length))
        await peer.request(3, "Echo")
        sid, code, message = await peer.recv_status()
        assert (sid, code) == (1, Code.RESOURCE_EXHAUSTED)
        assert str(length) in message
        assert (await peer.recv())[0] == 3
        # A header claiming ~4 GiB is answered at once; the body is never awaited in full.
        peer.writer.write(b"\xff\xff\xff\xf0" + (5).to_bytes(4, "big") + b"\x01\x00" + b"abc")
        assert (await peer.recv_status())[:2] == (5, Code.RESOURCE_EXHAUSTED)


async def test_oversized_response_fails_only_that_call() -> None:
    svc = EchoService()
    async with serving(svc.server()) as path:
        client = await connect_unix(path, max_message_size=64)
        try:
            with pytest.raises(StatusError) as info:
                await client.call(SVC, "Big", pb.Empty(), pb.ConfigureRequest)
            assert info.value.code is Code.RESOURCE_EXHAUSTED
            req = pb.ConfigureRequest(config="ok")
            assert await client.call(SVC, "Echo", req, pb.ConfigureRequest) == req
        finally:
            client.close()


# -- closing --------------------------------------------------------------------------------


async def test_peer_close_fails_pending_calls() -> None:
    conns: list[asyncio.Transport] = []
    got_request = asyncio.Event()

    class CloseOnRequest(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            conns.append(transport)

        def data_received(self, data: bytes) -> None:
            got_request.set()

    async with socket_dir() as directory:
        path = os.path.join(directory, "c.sock")
        listener = await asyncio.get_running_loop().create_unix_server(CloseOnRequest, path)
        try:
            client = await connect_unix(path)
            calls = [
                asyncio.create_task(client.call(SVC, "Echo", pb.Empty(), pb.Empty))
                for _ in range(3)
            ]
            await got_request.wait()
            conns[0].close()
            for call in calls:
                with pytest.raises(ClosedError, match="closed by peer"):
                    await call
            await client.wait_closed()
            assert client.is_closed
            with pytest.raises(ClosedError):
                await client.call(SVC, "Echo", pb.Empty(), pb.Empty)
        finally:
            listener.close()
            await listener.wait_closed()


async def test_client_close_fails_pending_calls() -> None:
    svc = EchoService()
    async with connected(svc.server()) as client:
        task = asyncio.create_task(client.call(SVC, "Block", pb.Empty(), pb.Empty))
        await svc.started.wait()
        client.close()
        with pytest.raises(ClosedError, match="client closed"):
            await task
        await client.wait_closed()
        with pytest.raises(ClosedError):
            await client.call(SVC, "Echo", pb.Empty(), pb.Empty)


async def test_unconnected_client() -> None:
    client = Client()
    assert not client.is_closed
    with pytest.raises(ClosedError, match="not connected"):
        await client.call(SVC, "Echo", pb.Empty(), pb.Empty)
    client.close()
    await client.wait_closed()


async def test_graceful_close_waits_for_in_flight_handler() -> None:
    svc = EchoService()
    server = svc.server()
    async with serving(server) as path:
        client = await connect_unix(path)
        call = asyncio.create_task(client.call(SVC, "Block", pb.Empty(), pb.Empty))
        await svc.started.wait()
        closing = asyncio.create_task(server.close())
        # While closing, new requests are refused but the connection stays up.
        with pytest.raises(StatusError) as info:
            await client.call(SVC, "Echo", pb.Empty(), pb.Empty)
        assert info.value.code is Code.UNAVAILABLE
        assert not closing.done()
        assert not call.done()
        svc.gate.set()
        assert await call == pb.Empty()
        await closing
        await client.wait_closed()
        assert svc.cancelled == 0
        # Closed servers refuse new connections.
        with pytest.raises(OSError):
            await connect_unix(path)


async def test_close_cancels_handlers_after_grace() -> None:
    svc = EchoService()
    server = svc.server()
    async with serving(server) as path:
        client = await connect_unix(path)
        call = asyncio.create_task(client.call(SVC, "Block", pb.Empty(), pb.Empty))
        await svc.started.wait()
        await server.close(grace=0.01)
        assert svc.cancelled == 1
        with pytest.raises(ClosedError):
            await call
        await client.wait_closed()


async def test_server_validation() -> None:
    server = Server()
    server.register(SVC, {"Echo": Method(pb.Empty, EchoService().fail)})
    with pytest.raises(ValueError, match="duplicate"):
        server.register(SVC, {})
    bad: dict[str, object] = {"Echo": lambda req: req}
    with pytest.raises(TypeError, match="Method"):
        server.register("other", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_message_size"):
        Server(max_message_size=1 << 40)
    assert isinstance(server.connection(), asyncio.Protocol)
    assert isinstance(Client(), asyncio.Protocol)
    assert issubclass(ProtoMessage, object)


async def test_socketpair_transports() -> None:
    """Like a pre-installed plugin's socketpair: both ends made from existing sockets."""
    svc = EchoService()
    server = svc.server()
    loop = asyncio.get_running_loop()
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    await loop.connect_accepted_socket(server.connection, sock=left)
    _, client = await loop.create_unix_connection(Client, sock=right)
    req = pb.ConfigureRequest(config="pair")
    assert await client.call(SVC, "Echo", req, pb.ConfigureRequest, timeout=30) == req
    await server.close()
    await client.wait_closed()
    assert client.is_closed


async def test_server_stops_reading_while_max_concurrent_handlers_run() -> None:
    service = EchoService()
    entered = 0

    async def count(req: pb.Empty) -> pb.Empty:
        nonlocal entered
        entered += 1
        await service.gate.wait()
        return pb.Empty()

    server = Server(max_concurrent_requests=2)
    server.register(SVC, {"Count": Method(pb.Empty, count)})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        await serve_unix(server, path)
        client = await connect_unix(path)
        try:
            calls = [
                asyncio.ensure_future(client.call(SVC, "Count", pb.Empty(), pb.Empty))
                for _ in range(6)
            ]
            for _ in range(20):
                await asyncio.sleep(0.01)
            assert entered == 2  # the others wait unread
            service.gate.set()
            await asyncio.wait_for(asyncio.gather(*calls), 5)
            assert entered == 6
        finally:
            client.close()
            await server.close()


async def test_server_stops_reading_while_its_replies_are_not_read() -> None:
    server = Server(max_unsent=256 << 10)
    handled = 0

    def big(req: pb.Empty) -> pb.ConfigureRequest:
        nonlocal handled
        handled += 1
        return pb.ConfigureRequest(config="r" * 60_000)

    server.register(SVC, {"Big": Method(pb.Empty, big)})
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(server.connection, left)
    right.setblocking(False)
    try:
        wire = b"".join(
            encode_message(2 * i + 1, MessageType.REQUEST, encode_request(SVC, "Big", b""))
            for i in range(400)
        )
        await loop.sock_sendall(right, wire)  # and read nothing back
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert 0 < handled < 100
        assert transport.get_write_buffer_size() < 2 << 20
        # Reading the replies lets the server go on until all 400 are answered.
        decoder, answered = MessageDecoder(), 0
        while answered < 400:
            data = await asyncio.wait_for(loop.sock_recv(right, 1 << 20), 5)
            assert data
            decoder.feed(data)
            while decoder.next_message() is not None:
                answered += 1
        assert handled == 400
    finally:
        transport.close()
        right.close()
        await server.close()
