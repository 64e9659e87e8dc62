"""Replay the runtime side of a recording against a plugin and compare its answers.

For each plugin connection (session) of the recording, a plugin process is started, either
pre-connected (a socketpair on fd 3, as a runtime launches pre-installed plugins) or dialing
a socket we listen on. The recorded runtime requests on conn 1 (Configure, Synchronize, the
lifecycle events) are sent as recorded, one at a time, and each reply is compared with the
recorded reply; the plugin's own requests on conn 2 (RegisterPlugin, UpdateContainers) are
compared with the recorded ones and answered with the recorded responses. A runtime request
waits until the plugin requests recorded before it have arrived, as the runtime sends
Configure only after RegisterPlugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from nri.api import api_pb2
from nri.mock._hosting import collect_stderr, find_command, tail, terminate
from nri.net import (
    PLUGIN_SERVICE_CONN,
    RUNTIME_SERVICE_CONN,
    FrameDecoder,
    MuxProtocolError,
    encode_frames,
    plugin_environment,
    socketpair,
    spawn_with_socket,
)
from nri.trace._capture import Chunk, sessions
from nri.trace._tap import FROM_PLUGIN, FROM_RUNTIME, Record, Tap, method_types
from nri.ttrpc import (
    Code,
    MessageDecoder,
    MessageType,
    OversizedInboundMessageError,
    ProtocolError,
    decode_request,
    decode_response,
    encode_message,
)

__all__ = ["Difference", "ReplayError", "Report", "replay"]

#: Differing fields listed per message; the rest is counted.
MAX_FIELD_DIFFS = 8


class ReplayError(Exception):
    """The replay could not be done; ``status`` is the exit status (2 recording, 3 plugin)."""

    def __init__(self, status: int, message: str) -> None:
        """Carry a one-line ``message`` and the exit ``status``."""
        self.status = status
        super().__init__(message)


@dataclass(slots=True)
class Difference:
    """One message of the plugin that differs from the recording (or is missing/extra)."""

    session: int
    plugin: str
    method: str
    stream_id: int
    what: str
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)

    def line(self) -> str:
        """One line of text describing the difference."""
        head = f"session {self.session} ({self.plugin}): {self.method}"
        if self.stream_id:
            head += f" stream {self.stream_id}"
        text = f"{head}: {self.what}"
        shown = [
            f"{path}: recorded {_show(old)}, got {_show(new)}"
            for path, old, new in self.fields[:MAX_FIELD_DIFFS]
        ]
        if len(self.fields) > MAX_FIELD_DIFFS:
            shown.append(f"{len(self.fields) - MAX_FIELD_DIFFS} more")
        return f"{text}: {'; '.join(shown)}" if shown else text

    def data(self) -> dict[str, Any]:
        """The difference as a JSON object."""
        return {
            "session": self.session,
            "plugin": self.plugin,
            "method": self.method,
            "stream_id": self.stream_id,
            "what": self.what,
            "fields": [
                {"path": p, "recorded": _json(old), "got": _json(new)}
                for p, old, new in self.fields
            ],
        }


def _json(value: Any) -> Any:
    return None if value is _ABSENT else value


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "nothing"
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 120 else text[:119] + "…"


@dataclass(slots=True)
class Report:
    """What a replay found: how many plugin messages were compared and which differ."""

    sessions: int = 0
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    #: Field paths not compared: ``path`` or ``Method.path`` in protojson names.
    ignore: tuple[str, ...] = ()

    def ignored(self, method: str, path: str) -> bool:
        """Whether differences at ``path`` of ``method``'s message are to be ignored."""
        for name in (path, f"{method}.{path}"):
            for prefix in self.ignore:
                if name == prefix or name.startswith((prefix + ".", prefix + "[")):
                    return True
        return False

    def lines(self, *, as_json: bool = False) -> list[str]:
        """The differences and a closing summary, as text lines or JSON objects."""
        summary = (
            f"replayed {self.sessions} session(s): {self.compared} plugin message(s) compared, "
            f"{len(self.differences)} difference(s)"
        )
        if as_json:
            out = [json.dumps(d.data(), ensure_ascii=False) for d in self.differences]
            out.append(
                json.dumps(
                    {
                        "sessions": self.sessions,
                        "compared": self.compared,
                        "differences": len(self.differences),
                    }
                )
            )
            return out
        return [d.line() for d in self.differences] + [summary]


_ABSENT: Any = object()


def _field_diffs(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Paths where two protojson values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else key
            out.extend(_field_diffs(old.get(key, _ABSENT), new.get(key, _ABSENT), sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for n, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(_field_diffs(a, b, f"{path}[{n}]"))
        return out
    return [] if old == new else [(path or "(payload)", old, new)]


def _payload_diffs(
    cls: type[ProtoMessage], old: bytes, new: bytes
) -> list[tuple[str, Any, Any]] | None:
    """Field differences of two encoded ``cls`` payloads (None: they are equal)."""
    try:
        a, b = cls.FromString(old), cls.FromString(new)
    except DecodeError as exc:
        return [("(payload)", old.hex(), f"undecodable: {exc}")] if old != new else None
    if a == b:
        return None
    diffs = _field_diffs(json_format.MessageToDict(a), json_format.MessageToDict(b))
    return diffs or [("(payload)", old.hex(), new.hex())]


@dataclass(slots=True)
class _Exchange:
    request: Record
    response: Record | None = None
    after: int = 0  # plugin requests recorded before this runtime request
    matched: bool = False


@dataclass(slots=True)
class _Script:
    plugin: str
    name: str
    idx: str
    runtime_calls: list[_Exchange]
    plugin_calls: list[_Exchange]


def _script(session: int, chunks: Iterable[Chunk]) -> _Script:
    tap = Tap(f"#{session}")
    records: list[Record] = []
    for chunk in chunks:
        records.extend(tap.feed(chunk.direction, chunk.data, chunk.t_ns))
    runtime_calls: list[_Exchange] = []
    plugin_calls: list[_Exchange] = []
    open_calls: dict[tuple[int, int], _Exchange] = {}
    name = idx = ""
    for rec in records:
        if rec.kind == "error" or (rec.error and rec.payload is None and rec.kind == "request"):
            raise ReplayError(2, f"session {session}: cannot decode the recording: {rec.error}")
        if rec.kind == "request":
            ex = _Exchange(rec, after=len(plugin_calls))
            if rec.direction == FROM_RUNTIME and rec.conn_id == PLUGIN_SERVICE_CONN:
                runtime_calls.append(ex)
            elif rec.direction == FROM_PLUGIN and rec.conn_id == RUNTIME_SERVICE_CONN:
                plugin_calls.append(ex)
                if isinstance(rec.payload, api_pb2.RegisterPluginRequest):
                    name, idx = rec.payload.plugin_name, rec.payload.plugin_idx
            else:
                continue
            open_calls[(rec.conn_id, rec.stream_id)] = ex
        elif (done := open_calls.pop((rec.conn_id, rec.stream_id), None)) is not None:
            done.response = rec
    return _Script(tap.plugin, name, idx, runtime_calls, plugin_calls)


class _Link:
    """Our end of the plugin connection: send messages, receive and sort the plugin's."""

    def __init__(
        self,
        session: int,
        script: _Script,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        report: Report,
    ) -> None:
        self.session, self.script, self.report = session, script, report
        self.reader, self.writer = reader, writer
        self.replies: dict[int, asyncio.Future[bytes]] = {}
        self.received = 0  # plugin requests seen
        self.changed = asyncio.Event()
        self.closed = False
        self.anything = False

    def diff(self, method: str, stream_id: int, what: str, fields: Any = ()) -> None:
        if fields:
            fields = [f for f in fields if not self.report.ignored(method, f[0])]
            if not fields:
                return
        self.report.differences.append(
            Difference(self.session, self.script.plugin, method, stream_id, what, list(fields))
        )

    def send(self, conn_id: int, stream_id: int, mtype: MessageType, data: bytes) -> None:
        self.writer.write(encode_frames(conn_id, encode_message(stream_id, mtype, data)))

    async def read_loop(self) -> None:
        frames = FrameDecoder()
        conns = {PLUGIN_SERVICE_CONN: MessageDecoder(), RUNTIME_SERVICE_CONN: MessageDecoder()}
        try:
            while data := await self.reader.read(64 << 10):
                self.anything = True
                frames.feed(data)
                while (frame := frames.next_frame()) is not None:
                    decoder = conns.get(frame.conn_id)
                    if decoder is None:
                        continue
                    decoder.feed(frame.payload)
                    while (msg := decoder.next_message()) is not None:
                        self._received(frame.conn_id, msg.stream_id, msg.type, msg.data)
        except (MuxProtocolError, OversizedInboundMessageError) as exc:
            self.diff("-", 0, f"the plugin sent bytes that do not decode: {exc}")
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            for fut in self.replies.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))
            self.changed.set()

    def _received(self, conn_id: int, stream_id: int, mtype: MessageType, data: bytes) -> None:
        if conn_id == PLUGIN_SERVICE_CONN and mtype == MessageType.RESPONSE:
            fut = self.replies.pop(stream_id, None)
            if fut is not None and not fut.done():
                fut.set_result(data)
        elif conn_id == RUNTIME_SERVICE_CONN and mtype == MessageType.REQUEST:
            self._plugin_request(stream_id, data)

    def _plugin_request(self, stream_id: int, data: bytes) -> None:
        self.received += 1
        self.changed.set()
        try:
            envelope = decode_request(data)
        except ProtocolError as exc:
            self.diff("-", stream_id, f"undecodable request from the plugin: {exc}")
            self.send(RUNTIME_SERVICE_CONN, stream_id, MessageType.RESPONSE, b"")
            return
        method = envelope.method
        ex = next(
            (e for e in self.script.plugin_calls if not e.matched and e.request.method == method),
            None,
        )
        if ex is None:
            self.diff(method, stream_id, "request from the plugin that the recording does not have")
            self.send(RUNTIME_SERVICE_CONN, stream_id, MessageType.RESPONSE, b"")
            return
        ex.matched = True
        self.report.compared += 1
        recorded = decode_request(ex.request.data)
        types = method_types(envelope.service, method)
        if types is not None:
            diffs = _payload_diffs(types[0], recorded.payload, envelope.payload)
            if diffs:
                self.diff(method, stream_id, "request from the plugin differs", diffs)
        reply = ex.response.data if ex.response is not None else b""
        self.send(RUNTIME_SERVICE_CONN, stream_id, MessageType.RESPONSE, reply)

    async def wait_for_plugin_requests(self, count: int, timeout: float) -> bool:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.received < count and not self.closed:
            self.changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return self.received >= count

    async def run(self, timeout: float) -> None:  # noqa: ASYNC109
        for ex in self.script.runtime_calls:
            await self.wait_for_plugin_requests(ex.after, timeout)
            if self.closed:
                break
            req = ex.request
            fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self.replies[req.stream_id] = fut
            self.send(PLUGIN_SERVICE_CONN, req.stream_id, MessageType.REQUEST, req.data)
            await self.writer.drain()
            if ex.response is None:
                self.replies.pop(req.stream_id, None)
                continue
            self.report.compared += 1
            try:
                got = await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                self.replies.pop(req.stream_id, None)
                self.diff(req.method, req.stream_id, f"no reply within {timeout:g}s")
                continue
            except ConnectionError:
                self.diff(req.method, req.stream_id, "the plugin closed the connection")
                break
            self._compare_reply(ex, got)
        await self.wait_for_plugin_requests(len(self.script.plugin_calls), timeout)
        for ex in self.script.plugin_calls:
            if not ex.matched:
                self.diff(
                    ex.request.method,
                    ex.request.stream_id,
                    "recorded request that the plugin did not send",
                )

    def _compare_reply(self, ex: _Exchange, got: bytes) -> None:
        assert ex.response is not None
        req = ex.request
        try:
            new = decode_response(got)
        except ProtocolError as exc:
            self.diff(req.method, req.stream_id, f"undecodable reply: {exc}")
            return
        old = decode_response(ex.response.data)
        old_status = (old.status.code, old.status.message) if old.HasField("status") else (0, "")
        new_status = (new.status.code, new.status.message) if new.HasField("status") else (0, "")
        if old_status != new_status:
            self.diff(
                req.method,
                req.stream_id,
                "reply status differs",
                [("status", _status(*old_status), _status(*new_status))],
            )
            return
        types = method_types(req.service, req.method)
        if types is not None:
            diffs = _payload_diffs(types[1], old.payload, new.payload)
            if diffs:
                self.diff(req.method, req.stream_id, "reply differs", diffs)


def _status(code: int, message: str) -> str:
    if not code:
        return "OK"
    try:
        name = Code(code).name
    except ValueError:
        name = str(code)
    return f"{name}: {message}"


async def _start_preconnected(
    command: Sequence[str], script: _Script
) -> tuple[asyncio.subprocess.Process, socket.socket]:
    if not script.name or not script.idx:
        raise ReplayError(
            2,
            "the recording has no RegisterPlugin request to take the plugin's name and index "
            "from; use --socket to let the plugin connect by itself",
        )
    ours, theirs = socketpair()
    try:
        process = await spawn_with_socket(
            _resolve(command),
            theirs,
            plugin_environment(script.name, script.idx),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        ours.close()
        raise ReplayError(3, f"cannot start {command[0]}: {exc.strerror or exc}") from None
    finally:
        theirs.close()
    return process, ours


async def _start_dialing(
    command: Sequence[str],
    path: str,
    timeout: float,  # noqa: ASYNC109
    stderr: bytearray,
) -> tuple[asyncio.subprocess.Process, socket.socket]:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(1)
        listener.setblocking(False)
        argv = [arg.replace("{socket}", path) for arg in command]
        try:
            process = await asyncio.create_subprocess_exec(
                *find_command(argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ReplayError(3, f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        collector = asyncio.ensure_future(collect_stderr(process, stderr))
        accept = asyncio.ensure_future(asyncio.get_running_loop().sock_accept(listener))
        exited = asyncio.ensure_future(process.wait())
        done, _ = await asyncio.wait(
            {accept, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        exited.cancel()
        if accept not in done:
            accept.cancel()
            await terminate(process)
            await asyncio.wait({collector}, timeout=1)
            why = (
                f"exited with status {process.returncode}"
                if exited in done
                else f"did not connect to {path} within {timeout:g}s"
            )
            raise ReplayError(3, f"plugin {argv[0]} {why}{_stderr_tail(stderr)}")
        conn, _ = accept.result()
        return process, conn
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _resolve(command: Sequence[str]) -> list[str]:
    """``command`` with its program as a path: a launched plugin gets no ``PATH``."""
    argv = find_command(command)
    if os.sep not in argv[0]:
        argv[0] = shutil.which(argv[0]) or argv[0]
    return argv


def _stderr_tail(buf: bytearray) -> str:
    lines = [line for line in tail(buf).splitlines() if line.strip()]
    return f"; its last output: {lines[-1].strip()}" if lines else ""


async def _replay_session(
    session: int,
    script: _Script,
    command: Sequence[str],
    *,
    socket_path: str | None,
    timeout: float,  # noqa: ASYNC109
    report: Report,
) -> None:
    stderr = bytearray()
    if socket_path is None:
        process, sock = await _start_preconnected(command, script)
        collector = asyncio.ensure_future(collect_stderr(process, stderr))
    else:
        process, sock = await _start_dialing(command, socket_path, timeout, stderr)
        collector = None
    try:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        link = _Link(session, script, reader, writer, report)
        reading = asyncio.ensure_future(link.read_loop())
        try:
            await link.run(timeout)
            if not link.anything:
                await terminate(process)
                raise ReplayError(
                    3,
                    f"plugin {command[0]} sent nothing (exit status {process.returncode})"
                    f"{_stderr_tail(stderr)}",
                )
        finally:
            writer.close()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reading
    finally:
        await terminate(process)
        if collector is not None:
            await asyncio.wait({collector}, timeout=1)


async def replay(
    chunks: Sequence[Chunk],
    command: Sequence[str],
    *,
    socket_path: str | None = None,
    sessions: Sequence[int] | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109
    ignore: Sequence[str] = (),
) -> Report:
    """Replay ``chunks`` (from :func:`~nri.trace._capture.load_capture`) against ``command``.

    Raises :class:`ReplayError` when the recording has nothing to replay or the plugin cannot
    be started; differences are returned in the :class:`Report`, except those at the field
    paths in ``ignore`` (protojson names, e.g. ``NRIVersion`` or ``Configure.events``).
    """
    report = Report(ignore=tuple(ignore))
    chosen = _sessions(chunks, sessions)
    for number, session_chunks in chosen:
        script = _script(number, session_chunks)
        if not script.runtime_calls and not script.plugin_calls:
            raise ReplayError(2, f"session {number} of the recording holds no requests")
        await _replay_session(
            number, script, command, socket_path=socket_path, timeout=timeout, report=report
        )
        report.sessions += 1
    return report


def _sessions(
    chunks: Sequence[Chunk], wanted: Sequence[int] | None
) -> list[tuple[int, list[Chunk]]]:
    found = {s.session: s.chunks for s in sessions(list(chunks))}
    if not found:
        raise ReplayError(2, "the recording holds no chunks")
    if wanted is None:
        return list(found.items())
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ReplayError(
            2,
            f"the recording has no session {missing[0]} (it has {', '.join(map(str, found))})",
        )
    return [(n, found[n]) for n in wanted]
