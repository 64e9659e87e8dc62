"""Sans-IO side decoder of one plugin connection: raw chunks in, decoded messages out.

A :class:`Tap` is fed the byte chunks that pass in each direction, splits them into mux
frames (:class:`nri.net.FrameDecoder`) and ttRPC messages (:class:`nri.ttrpc.MessageDecoder`),
decodes the envelopes and NRI payloads and pairs each response with its request. It never
raises for bad bytes: a direction whose framing breaks is reported once as an ``error``
record and no longer decoded, while the caller keeps forwarding it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from nri.api import api_pb2
from nri.net import (
    PLUGIN_SERVICE_CONN,
    RUNTIME_SERVICE_CONN,
    FrameDecoder,
    MuxProtocolError,
)
from nri.ttrpc import (
    MessageDecoder,
    MessageType,
    OversizedInboundMessageError,
    ProtocolError,
    decode_request,
    decode_response,
)

__all__ = [
    "FROM_PLUGIN",
    "FROM_RUNTIME",
    "MAX_PENDING",
    "Record",
    "Tap",
    "method_types",
]

#: Direction of bytes the plugin sends (the spelling of the captures).
FROM_PLUGIN = "plugin->runtime"
#: Direction of bytes the runtime sends.
FROM_RUNTIME = "runtime->plugin"
#: Requests awaiting a reply that are remembered per connection; older ones are forgotten.
MAX_PENDING = 1024

_API_PACKAGE = api_pb2.DESCRIPTOR.package + "."


def method_types(service: str, method: str) -> tuple[type[ProtoMessage], type[ProtoMessage]] | None:
    """The request and response classes of an NRI ttRPC method, or None if unknown."""
    if not service.startswith(_API_PACKAGE):
        return None
    svc = api_pb2.DESCRIPTOR.services_by_name.get(service[len(_API_PACKAGE) :])
    if svc is None or method not in svc.methods_by_name:
        return None
    desc = svc.methods_by_name[method]
    return (
        getattr(api_pb2, desc.input_type.name),
        getattr(api_pb2, desc.output_type.name),
    )


@dataclass(slots=True)
class Record:
    """One decoded ttRPC message (``kind`` request/response) or a decode ``error``."""

    t_ns: int
    direction: str
    kind: str
    plugin: str
    conn_id: int = 0
    stream_id: int = 0
    service: str = ""
    method: str = ""
    payload: ProtoMessage | None = None
    status_code: int = 0
    status_message: str = ""
    timeout_nano: int = 0
    latency_ns: int | None = None
    size: int = 0
    error: str = ""
    #: The ttRPC message data (the envelope) exactly as it passed.
    data: bytes = field(default=b"", repr=False)


@dataclass(slots=True)
class _Pending:
    service: str
    method: str
    t_ns: int


class Tap:
    """Decode both directions of one plugin connection on the side.

    ``label`` names the plugin until its RegisterPlugin request reveals ``NN-name``.
    """

    def __init__(self, label: str) -> None:
        """Start decoding a connection labelled ``label``."""
        self.plugin = label
        self._frames = {FROM_PLUGIN: FrameDecoder(), FROM_RUNTIME: FrameDecoder()}
        self._broken: set[str] = set()
        self._messages: dict[tuple[str, int], MessageDecoder] = {}
        self._pending: OrderedDict[tuple[int, int], _Pending] = OrderedDict()

    def feed(self, direction: str, data: bytes, t_ns: int) -> list[Record]:
        """Decode ``data`` that passed in ``direction`` at ``t_ns``; return what completed."""
        if direction in self._broken:
            return []
        frames = self._frames[direction]
        out: list[Record] = []
        try:
            frames.feed(data)
            while (frame := frames.next_frame()) is not None:
                self._feed_conn(direction, frame.conn_id, frame.payload, t_ns, out)
        except MuxProtocolError as exc:
            self._broken.add(direction)
            self._frames[direction] = FrameDecoder()  # drop what was buffered
            out.append(self._error(direction, t_ns, f"{exc}; no longer decoding {direction}"))
        return out

    def _feed_conn(
        self, direction: str, conn_id: int, payload: bytes, t_ns: int, out: list[Record]
    ) -> None:
        decoder = self._messages.get((direction, conn_id))
        if decoder is None:
            if conn_id not in (PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN):
                return  # upstream's reader drops frames of conns nobody opened
            decoder = self._messages[(direction, conn_id)] = MessageDecoder()
        decoder.feed(payload)
        while True:
            try:
                message = decoder.next_message()
            except OversizedInboundMessageError as exc:
                out.append(self._error(direction, t_ns, str(exc), conn_id))
                continue
            if message is None:
                return
            if message.type == MessageType.REQUEST:
                out.append(self._request(direction, conn_id, message.stream_id, message.data, t_ns))
            elif message.type == MessageType.RESPONSE:
                out.append(
                    self._response(direction, conn_id, message.stream_id, message.data, t_ns)
                )

    def _error(self, direction: str, t_ns: int, text: str, conn_id: int = 0) -> Record:
        return Record(t_ns, direction, "error", self.plugin, conn_id=conn_id, error=text)

    def _request(
        self, direction: str, conn_id: int, stream_id: int, data: bytes, t_ns: int
    ) -> Record:
        rec = Record(
            t_ns, direction, "request", self.plugin, conn_id, stream_id, size=len(data), data=data
        )
        try:
            envelope = decode_request(data)
        except ProtocolError as exc:
            rec.kind, rec.error = "error", str(exc)
            return rec
        rec.service, rec.method, rec.timeout_nano = (
            envelope.service,
            envelope.method,
            envelope.timeout_nano,
        )
        self._pending[(conn_id, stream_id)] = _Pending(envelope.service, envelope.method, t_ns)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        types = method_types(envelope.service, envelope.method)
        if types is None:
            rec.error = f"unknown method {envelope.service}/{envelope.method}"
            return rec
        rec.payload = _parse(types[0], envelope.payload, rec)
        if isinstance(rec.payload, api_pb2.RegisterPluginRequest):
            self.plugin = f"{rec.payload.plugin_idx}-{rec.payload.plugin_name}"
            rec.plugin = self.plugin
        return rec

    def _response(
        self, direction: str, conn_id: int, stream_id: int, data: bytes, t_ns: int
    ) -> Record:
        rec = Record(
            t_ns, direction, "response", self.plugin, conn_id, stream_id, size=len(data), data=data
        )
        pending = self._pending.pop((conn_id, stream_id), None)
        if pending is not None:
            rec.service, rec.method = pending.service, pending.method
            rec.latency_ns = t_ns - pending.t_ns
        try:
            envelope = decode_response(data)
        except ProtocolError as exc:
            rec.kind, rec.error = "error", str(exc)
            return rec
        if envelope.HasField("status"):
            rec.status_code, rec.status_message = envelope.status.code, envelope.status.message
        types = method_types(rec.service, rec.method) if pending is not None else None
        if types is None:
            if pending is None:
                rec.error = f"reply to unknown stream {stream_id} on conn {conn_id}"
            return rec
        rec.payload = _parse(types[1], envelope.payload, rec)
        return rec


def _parse(cls: type[ProtoMessage], payload: bytes, rec: Record) -> ProtoMessage | None:
    try:
        return cls.FromString(payload)
    except DecodeError as exc:
        rec.error = f"cannot decode {cls.DESCRIPTOR.name} ({len(payload)} bytes): {exc}"
        return None
