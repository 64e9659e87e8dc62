"""A hand-driven plugin peer for hostile-peer tests: mux and ttRPC bytes over a raw socket.

Unlike :class:`_adaptation_helpers.RawPlugin` nothing here runs a ttRPC server or client:
the test decides every byte that is sent, and reads the runtime's messages one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from google.protobuf.message import Message

from nri.api import api_pb2 as pb
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, FrameDecoder, encode_frames
from nri.ttrpc import (
    MessageDecoder,
    MessageType,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    encode_response,
    ttrpc_pb2,
)

RUNTIME = "nri.pkg.api.v1alpha1.Runtime"


def request_bytes(
    sid: int, method: str, message: Message, *, conn: int = RUNTIME_SERVICE_CONN
) -> bytes:
    """One mux-framed ttRPC request to the runtime's ``Runtime`` service."""
    body = encode_request(RUNTIME, method, message.SerializeToString())
    return encode_frames(conn, encode_message(sid, MessageType.REQUEST, body))


def register_bytes(sid: int = 1, name: str = "raw", idx: str = "50") -> bytes:
    """RegisterPlugin as a mux-framed request."""
    return request_bytes(
        sid, "RegisterPlugin", pb.RegisterPluginRequest(plugin_name=name, plugin_idx=idx)
    )


class RawWire:
    """The plugin end of one NRI connection, driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._frames = FrameDecoder()
        self._decoders = {
            PLUGIN_SERVICE_CONN: MessageDecoder(),
            RUNTIME_SERVICE_CONN: MessageDecoder(),
        }
        self._pending: deque[tuple[int, int, MessageType, bytes]] = deque()
        self.eof = False

    @classmethod
    async def connect(cls, path: str) -> RawWire:
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_message(self, timeout: float = 5.0) -> tuple[int, int, MessageType, bytes]:
        """The next ttRPC message from the runtime: (conn id, stream id, type, data)."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                chunk = await self.reader.read(65536)
                if not chunk:
                    self.eof = True
                    raise EOFError("runtime closed the connection")
                for frame in self._frames.frames(chunk):
                    decoder = self._decoders.get(frame.conn_id)
                    if decoder is None:
                        continue
                    decoder.feed(frame.payload)
                    while (msg := decoder.next_message()) is not None:
                        self._pending.append((frame.conn_id, msg.stream_id, msg.type, msg.data))
        return self._pending.popleft()

    async def response(self, sid: int, timeout: float = 5.0) -> ttrpc_pb2.Response:
        """Read until the response to our request ``sid`` on conn 2; answer nothing else."""
        while True:
            conn, stream, mtype, data = await self.next_message(timeout)
            if conn == RUNTIME_SERVICE_CONN and stream == sid and mtype is MessageType.RESPONSE:
                return decode_response(data)

    async def serve_handshake(self, events: int = 0, timeout: float = 5.0) -> list[str]:
        """Answer the runtime's Configure and Synchronize like a plugin would; return the
        methods seen (responses on conn 2 are kept for :meth:`response`)."""
        seen: list[str] = []
        kept: list[tuple[int, int, MessageType, bytes]] = []
        while "Synchronize" not in seen:
            item = await self.next_message(timeout)
            conn, sid, mtype, data = item
            if conn != PLUGIN_SERVICE_CONN or mtype is not MessageType.REQUEST:
                kept.append(item)
                continue
            method = decode_request(data).method
            seen.append(method)
            reply: Message
            if method == "Configure":
                reply = pb.ConfigureResponse(events=events)
            elif method == "Synchronize":
                reply = pb.SynchronizeResponse()
            else:
                reply = pb.Empty()
            answer = encode_message(
                sid, MessageType.RESPONSE, encode_response(0, "", reply.SerializeToString())
            )
            await self.send(encode_frames(PLUGIN_SERVICE_CONN, answer))
        self._pending.extendleft(reversed(kept))
        return seen

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Read (and drop) everything until the runtime closes the connection."""
        async with asyncio.timeout(timeout):
            while await self.reader.read(65536):
                pass
        self.eof = True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> RawWire:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
