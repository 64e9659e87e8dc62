"""ttRPC interceptors and W3C trace context propagation, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence

import pytest
from google.protobuf.message import Message as ProtoMessage

from nri.adaptation._plugin import PluginConnection
from nri.api import api_pb2 as pb
from nri.stub import Plugin, Stub
from nri.ttrpc import (
    CallInfo,
    Client,
    Code,
    Interceptor,
    Metadata,
    Method,
    Next,
    Server,
    StatusError,
    TraceContext,
    client_trace_interceptor,
    connect_unix,
    current_metadata,
    current_trace_context,
    serve_unix,
    server_trace_interceptor,
    use_trace_context,
)

SVC = "test.v1.Echo"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "rojo=00f067aa0ba902b7"


def recorder(log: list[str], name: str) -> Interceptor:
    """An interceptor logging its entry and exit, tagging the metadata with its name."""

    async def intercept(
        info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
    ) -> ProtoMessage:
        log.append(f"{name}>{info.full_method}")
        metadata.append("x-seen", name)
        try:
            return await call_next(request, metadata)
        finally:
            log.append(f"<{name}")

    return intercept


@contextlib.asynccontextmanager
async def connected(server: Server, interceptors: Sequence[Interceptor]) -> AsyncIterator[Client]:
    directory = tempfile.mkdtemp(prefix="ttrpc-", dir="/tmp")
    path = os.path.join(directory, "s.sock")
    try:
        await serve_unix(server, path)
        client = await connect_unix(path, interceptors=interceptors)
        try:
            yield client
        finally:
            client.close()
            await client.wait_closed()
            await server.close(grace=0)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def echo_server(
    seen: list[Metadata], interceptors: Sequence[Interceptor] = (), *, sync: bool = False
) -> Server:
    async def echo(request: pb.ConfigureRequest) -> pb.ConfigureRequest:
        seen.append(current_metadata())
        return request

    def echo_now(request: pb.ConfigureRequest) -> pb.ConfigureRequest:
        seen.append(current_metadata())
        return request

    server = Server(interceptors=interceptors)
    server.register(SVC, {"Echo": Method(pb.ConfigureRequest, echo_now if sync else echo)})
    return server


async def test_interceptors_run_in_order_on_both_sides() -> None:
    log: list[str] = []
    seen: list[Metadata] = []

    async def handler(request: pb.ConfigureRequest) -> pb.ConfigureRequest:
        log.append("handler")
        seen.append(current_metadata())
        return request

    server = Server(interceptors=[recorder(log, "s1"), recorder(log, "s2")])
    server.register(SVC, {"Echo": Method(pb.ConfigureRequest, handler)})
    async with connected(server, [recorder(log, "c1"), recorder(log, "c2")]) as client:
        reply = await client.call(
            SVC,
            "Echo",
            pb.ConfigureRequest(config="x"),
            pb.ConfigureRequest,
            metadata=Metadata({"x-seen": "caller"}),
        )
    assert reply.config == "x"
    m = f"/{SVC}/Echo"
    assert log == [
        f"c1>{m}",
        f"c2>{m}",
        f"s1>{m}",
        f"s2>{m}",
        "handler",
        "<s2",
        "<s1",
        "<c2",
        "<c1",
    ]
    assert seen[0].get_all("x-seen") == ["caller", "c1", "c2", "s1", "s2"]


@pytest.mark.parametrize("sync", [False, True])
async def test_handlers_see_the_request_metadata_without_interceptors(sync: bool) -> None:
    seen: list[Metadata] = []
    async with connected(echo_server(seen, sync=sync), []) as client:
        md = Metadata({"Key": ["1", "2"]})
        await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest, metadata=md)
        await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest)
    assert seen == [Metadata({"key": ["1", "2"]}), Metadata()]
    assert current_metadata() == Metadata()


async def test_client_interceptors_change_a_copy_of_the_callers_metadata() -> None:
    seen: list[Metadata] = []
    log: list[str] = []
    md = Metadata({"a": "1"})
    async with connected(echo_server(seen), [recorder(log, "c")]) as client:
        await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest, metadata=md)
    assert md == Metadata({"a": "1"})
    assert seen == [Metadata({"a": "1", "x-seen": "c"})]


async def test_server_interceptor_can_refuse_or_answer_itself() -> None:
    seen: list[Metadata] = []

    async def gate(
        info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
    ) -> ProtoMessage:
        if metadata.get("token") != "ok":
            raise StatusError(Code.PERMISSION_DENIED, f"no token for {info.method}")
        if metadata.get("cached"):
            return pb.ConfigureRequest(config="cached")
        return await call_next(request, metadata)

    async with connected(echo_server(seen, [gate]), []) as client:
        with pytest.raises(StatusError) as refused:
            await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest)
        assert refused.value.code == Code.PERMISSION_DENIED
        assert "no token for Echo" in str(refused.value)
        cached = await client.call(
            SVC,
            "Echo",
            pb.ConfigureRequest(config="x"),
            pb.ConfigureRequest,
            metadata=Metadata({"token": "ok", "cached": "1"}),
        )
        assert cached.config == "cached"
        plain = await client.call(
            SVC,
            "Echo",
            pb.ConfigureRequest(config="x"),
            pb.ConfigureRequest,
            metadata=Metadata({"token": "ok"}),
        )
        assert plain.config == "x"
    assert len(seen) == 1


async def test_client_interceptor_returning_the_wrong_type_is_an_error() -> None:
    async def bad(
        info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
    ) -> ProtoMessage:
        return pb.Empty()

    async with connected(echo_server([]), [bad]) as client:
        with pytest.raises(TypeError, match="Echo returned Empty, not ConfigureRequest"):
            await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest)


def test_traceparent_validation() -> None:
    assert TraceContext.parse(TRACEPARENT) == TraceContext(TRACEPARENT)
    assert TraceContext.parse("01-" + TRACEPARENT[3:] + "-future") is not None
    for bad in (
        "",
        TRACEPARENT.upper(),
        "ff" + TRACEPARENT[2:],
        TRACEPARENT + "-extra",
        "00-" + "0" * 32 + TRACEPARENT[35:],
        TRACEPARENT[:36] + "0" * 16 + "-01",
    ):
        assert TraceContext.parse(bad) is None, bad
    two = Metadata({"traceparent": [TRACEPARENT, TRACEPARENT]})
    assert TraceContext.from_metadata(two) is None
    states = Metadata({"traceparent": TRACEPARENT, "tracestate": ["a=1", "b=2"]})
    assert TraceContext.from_metadata(states) == TraceContext(TRACEPARENT, "a=1,b=2")


async def test_trace_context_travels_from_client_to_handler() -> None:
    traces: list[TraceContext | None] = []

    async def handler(request: pb.ConfigureRequest) -> pb.ConfigureRequest:
        traces.append(current_trace_context())
        return request

    server = Server(interceptors=[server_trace_interceptor])
    server.register(SVC, {"Echo": Method(pb.ConfigureRequest, handler)})
    context = TraceContext(TRACEPARENT, TRACESTATE)
    explicit = TraceContext.parse("00-" + "1" * 32 + "-" + "2" * 16 + "-00")
    assert explicit is not None
    async with connected(server, [client_trace_interceptor]) as client:
        with use_trace_context(context):
            await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest)
            md = Metadata({"traceparent": explicit.traceparent})
            await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest, metadata=md)
        await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest)
        bad = Metadata({"traceparent": "not-a-trace"})
        await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest, metadata=bad)
    assert traces == [context, explicit, None, None]
    assert current_trace_context() is None


async def test_opentelemetry_spans_cross_the_connection() -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    spans: list[object] = []

    async def handler(request: pb.ConfigureRequest) -> pb.ConfigureRequest:
        spans.append(trace.get_current_span().get_span_context())
        return request

    server = Server(interceptors=[server_trace_interceptor])
    server.register(SVC, {"Echo": Method(pb.ConfigureRequest, handler)})
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=trace.TraceFlags(1),
        )
    )
    async with connected(server, [client_trace_interceptor]) as client:
        with (
            trace.use_span(span),
            use_trace_context(TraceContext("00-" + "1" * 32 + "-" + "2" * 16 + "-01")),
        ):
            await client.call(SVC, "Echo", pb.ConfigureRequest(), pb.ConfigureRequest)
    (remote,) = spans
    assert remote.is_remote  # type: ignore[attr-defined]
    assert remote.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736  # type: ignore[attr-defined]
    assert remote.span_id == 0x00F067AA0BA902B7  # type: ignore[attr-defined]
    assert not trace.get_current_span().get_span_context().is_valid


class TracedPlugin(Plugin):
    """Records the trace context and metadata each request of the runtime came with."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, TraceContext | None, Metadata]] = []

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        self.seen.append(("Configure", current_trace_context(), current_metadata()))

    def synchronize(self, pods: object, containers: object) -> None:
        self.seen.append(("Synchronize", current_trace_context(), current_metadata()))

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        return None


async def test_stub_plugin_continues_the_trace_of_the_adaptation() -> None:
    runtime_sock, plugin_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    registrations: list[Metadata] = []

    async def record(
        info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
    ) -> ProtoMessage:
        if info.method == "RegisterPlugin":
            registrations.append(metadata)
        return await call_next(request, metadata)

    async def tag(
        info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
    ) -> ProtoMessage:
        metadata.set("x-plugin", "traced")
        return await call_next(request, metadata)

    async def on_update(
        conn: PluginConnection, request: pb.UpdateContainersRequest
    ) -> list[pb.ContainerUpdate]:
        return []

    conn = PluginConnection(
        registration_timeout=5,
        request_timeout=5,
        on_update=on_update,
        on_close=lambda _: None,
        client_interceptors=[client_trace_interceptor],
        server_interceptors=[record],
    )
    await conn.connect(runtime_sock)
    plugin = TracedPlugin()
    stub = Stub(
        plugin,
        idx="10",
        name="traced",
        environ={"NRI_PLUGIN_SOCKET": str(plugin_sock.detach())},
        server_interceptors=[server_trace_interceptor],
        client_interceptors=[tag],
    )
    context = TraceContext(TRACEPARENT, TRACESTATE)

    async def runtime() -> None:
        with use_trace_context(context):
            await conn.start("containerd", "v2.0.0")
            await conn.synchronize([], [])

    try:
        await asyncio.wait_for(asyncio.gather(stub.start(), runtime()), 10)
    finally:
        await stub.stop()
        conn.close()
        await conn.wait_closed()
    assert [name for name, _, _ in plugin.seen] == ["Configure", "Synchronize"]
    for _, trace_context, metadata in plugin.seen:
        assert trace_context == context
        assert metadata.get("traceparent") == TRACEPARENT
        assert metadata.get("tracestate") == TRACESTATE
    assert [md.get("x-plugin") for md in registrations] == ["traced"]
