"""The tracing proxy: accept plugin connections, dial the runtime for each, pass bytes on.

Bytes are forwarded in the chunks they are read in, before anything is decoded, so the
framing either side sees (mux frame sizes, including the at most 4096-byte first frame of a
ttRPC message upstream's Go reader needs) is exactly what the other side sent. Decoding
happens on the side with bounded buffers; a decode failure is reported and never stops the
forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import stat
import time
from collections.abc import Callable

from nri.trace._capture import Recorder
from nri.trace._tap import FROM_PLUGIN, FROM_RUNTIME, Record, Tap

__all__ = ["READ_SIZE", "TraceProxy", "check_runtime_socket"]

logger = logging.getLogger("nri.trace")

#: Largest chunk read (and forwarded) at once.
READ_SIZE = 64 << 10


def check_runtime_socket(path: str) -> str | None:
    """Why ``path`` cannot be the runtime's socket, or None if it looks like one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"runtime socket {path} does not exist"
    except OSError as exc:
        return f"runtime socket {path}: {exc.strerror or exc}"
    if not stat.S_ISSOCK(mode):
        return f"runtime socket {path} is not a socket"
    return None


class TraceProxy:
    """Listen on ``listen`` for plugins and connect each to the runtime at ``runtime``.

    Every decoded message goes to ``sink``; ``recorder`` (optional) gets every raw chunk.
    """

    def __init__(
        self,
        listen: str,
        runtime: str,
        sink: Callable[[Record], None],
        *,
        recorder: Recorder | None = None,
    ) -> None:
        """Prepare a proxy; :meth:`start` opens the listening socket."""
        self.listen = listen
        self.runtime = runtime
        self._sink = sink
        self._recorder = recorder
        self._ids = itertools.count()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on :attr:`listen`, replacing a stale socket file; raises OSError."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.listen).st_mode):
                os.unlink(self.listen)
        self._server = await asyncio.start_unix_server(self._accepted, path=self.listen)

    async def close(self) -> None:
        """Stop listening, drop every connection and remove the socket file."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.listen)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._session(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _session(
        self, plugin_r: asyncio.StreamReader, plugin_w: asyncio.StreamWriter
    ) -> None:
        session = next(self._ids)
        label = f"#{session}"
        try:
            runtime_r, runtime_w = await asyncio.open_unix_connection(self.runtime)
        except OSError as exc:
            logger.error(
                "connection %s: runtime %s not reachable: %s; closing the plugin's connection",
                label,
                self.runtime,
                exc.strerror or exc,
            )
            plugin_w.close()
            return
        logger.info("connection %s: plugin connected, forwarding to %s", label, self.runtime)
        tap = Tap(label)
        pumps = [
            asyncio.create_task(self._pump(session, tap, plugin_r, runtime_w, FROM_PLUGIN)),
            asyncio.create_task(self._pump(session, tap, runtime_r, plugin_w, FROM_RUNTIME)),
        ]
        try:
            await asyncio.gather(*pumps)
        finally:
            for task in pumps:
                task.cancel()
            for w in (plugin_w, runtime_w):
                w.close()
            logger.info("connection %s (%s): closed", label, tap.plugin)

    async def _pump(
        self,
        session: int,
        tap: Tap,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        try:
            while data := await src.read(READ_SIZE):
                t_ns = time.time_ns()
                dst.write(data)
                if self._recorder is not None:
                    self._recorder.chunk(session, direction, t_ns, data)
                self._decode(session, tap, direction, data, t_ns)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()
        except (ConnectionError, OSError) as exc:
            logger.info("connection #%d (%s): %s: %s", session, tap.plugin, direction, exc)
            dst.close()

    def _decode(self, session: int, tap: Tap, direction: str, data: bytes, t_ns: int) -> None:
        before = tap.plugin
        try:
            records = tap.feed(direction, data, t_ns)
        except Exception:  # the tracer's bug must not cut the connection
            logger.exception("connection #%d: decoding failed; still forwarding", session)
            return
        if tap.plugin != before and self._recorder is not None:
            self._recorder.plugin(session, tap.plugin)
        for rec in records:
            self._sink(rec)
