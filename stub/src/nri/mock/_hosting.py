"""Plugins a mock runtime starts itself: plugin commands on a socket pair, plugin objects
in the runtime's event loop, and what the commands write to stderr."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

from nri.adaptation import Adaptation, PluginInfo
from nri.net import (
    PLUGIN_IDX_ENV,
    PLUGIN_NAME_ENV,
    PLUGIN_SOCKET_ENV,
    PLUGIN_SOCKET_FD,
    socketpair,
    spawn_with_socket,
)
from nri.stub import Plugin, Stub

__all__ = [
    "PluginHost",
    "PluginLaunchError",
    "PluginProcess",
    "PreinstalledPlugin",
    "collect_lines",
    "collect_stderr",
    "find_command",
    "terminate",
]

logger = logging.getLogger("nri.mock")

_STDERR_TAIL = 4096
_LONGEST_LINE = 65536


class PluginLaunchError(Exception):
    """A plugin command could not be started or exited before it registered."""

    def __init__(self, command: Sequence[str], message: str, stderr: str = "") -> None:
        self.command = list(command)
        self.stderr = stderr
        text = f"plugin {shlex.join(self.command)!r}: {message}"
        if stderr.strip():
            text += "\n--- its stderr (tail) ---\n" + stderr.rstrip()
        super().__init__(text)


@dataclasses.dataclass
class PluginProcess:
    """A plugin command started by :meth:`MockRuntime.launch_plugin`."""

    command: list[str]
    process: asyncio.subprocess.Process
    info: PluginInfo
    stderr: bytearray = dataclasses.field(default_factory=bytearray)
    """What the plugin wrote to its stderr so far (the last few KiB)."""

    @property
    def pid(self) -> int:
        """The plugin's process ID."""
        return self.process.pid

    async def wait_for_output(self, text: str, timeout: float = 5.0) -> str:  # noqa: ASYNC109
        """Wait until ``text`` shows in the plugin's stderr and return that stderr.

        A plugin may log before it replies, but its stderr is read concurrently with the
        replies: wait here instead of reading :attr:`stderr` right after a call.
        Raises TimeoutError with the stderr tail if the text does not show in time.
        """
        try:
            async with asyncio.timeout(timeout):
                # Polling keeps the stderr reader a plain function shared with the CLI.
                while text not in (output := tail(self.stderr)):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise TimeoutError(
                f"{text!r} not in the stderr of {shlex.join(self.command)!r} after {timeout:g}s; "
                f"its stderr (tail):\n{tail(self.stderr)}"
            ) from None
        return output


def _mirror(source: str, target: str) -> list[tuple[PreinstalledPlugin, int]]:
    if not os.path.isdir(source):
        if os.path.exists(source):
            raise NotADirectoryError(f"plugin directory {source!r} is not a directory")
        raise FileNotFoundError(f"plugin directory {source!r} does not exist")
    out = []
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        try:
            if not entry.is_file() or not os.access(entry.path, os.X_OK):
                continue
        except OSError:
            continue
        plugin = PreinstalledPlugin(entry.name, os.path.abspath(entry.path))
        fifo = os.path.join(target, f".{entry.name}.out")
        os.mkfifo(fifo, 0o600)
        # Open for reading and writing: the pipe reports no end of file before the plugin
        # opened it; closing this end at the end stops the reader.
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        wrapper = os.path.join(target, entry.name)
        with open(wrapper, "w", encoding="utf-8") as f:
            f.write(f'#!/bin/sh\nexec {shlex.quote(plugin.path)} "$@" >{shlex.quote(fifo)} 2>&1\n')
        os.chmod(wrapper, 0o700)
        out.append((plugin, fd))
    return out


def find_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with a bare command name resolved on PATH or, failing that, beside the running
    Python (a virtual environment's ``bin``, when it is used without being activated)."""
    out = list(argv)
    if out and os.sep not in out[0] and shutil.which(out[0]) is None:
        beside = os.path.join(os.path.dirname(sys.executable), out[0])
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            out[0] = beside
    return out


@dataclasses.dataclass
class PreinstalledPlugin:
    """A plugin in the runtime's plugin directory, started by the adaptation.

    The adaptation starts it through a wrapper that sends its stdout and stderr to a pipe
    the mock runtime reads (real runtimes send them to /dev/null).
    """

    name: str
    """The file name, ``NN-name``."""
    path: str
    stderr: bytearray = dataclasses.field(default_factory=bytearray)
    """What it wrote so far (the last few KiB)."""


class PluginHost:
    """The plugins a runtime started itself: commands (:attr:`processes`) and in-process
    plugin objects (:attr:`stubs`), connected to ``adaptation`` before they register."""

    def __init__(self, adaptation: Adaptation) -> None:
        self.adaptation = adaptation
        self.processes: list[PluginProcess] = []
        self.stubs: list[Stub] = []
        self.preinstalled: list[PreinstalledPlugin] = []
        self._stub_runs: set[asyncio.Future[None]] = set()
        self._readers: set[asyncio.Future[None]] = set()
        self._pipes: list[int] = []

    def _read(
        self,
        stream: asyncio.StreamReader | asyncio.subprocess.Process,
        into: bytearray,
        on_output: Callable[[str], None] | None,
    ) -> asyncio.Future[None]:
        if isinstance(stream, asyncio.StreamReader):
            reader = asyncio.ensure_future(collect_lines(stream, into, on_output))
        else:
            reader = asyncio.ensure_future(collect_stderr(stream, into, on_output))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return reader

    async def mirror_plugin_dir(
        self,
        source: str,
        target: str,
        on_output: Callable[[str, str], None] | None = None,
    ) -> None:
        """Fill the empty directory ``target`` with a wrapper per executable file in
        ``source`` (same name) that runs it with stdout and stderr on a pipe read here.

        ``on_output`` gets (``NN-name``, line) for each line, as :meth:`launch`'s does.
        Raises NotADirectoryError or FileNotFoundError naming ``source``.
        """
        loop = asyncio.get_running_loop()
        for plugin, fd in _mirror(source, target):
            self._pipes.append(fd)
            stream = asyncio.StreamReader()
            await loop.connect_read_pipe(
                lambda s=stream: asyncio.StreamReaderProtocol(s),  # type: ignore[misc]
                os.fdopen(os.dup(fd), "rb", buffering=0),
            )
            self.preinstalled.append(plugin)
            sink = None if on_output is None else functools.partial(on_output, plugin.name)
            self._read(stream, plugin.stderr, sink)

    async def launch(
        self,
        command: str | Sequence[str],
        *,
        name: str | None = None,
        idx: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        on_output: Callable[[str], None] | None = None,
    ) -> PluginProcess:
        """Start a plugin command on a socket pair; see :meth:`MockRuntime.launch_plugin`."""
        if timeout is None:
            timeout = self.adaptation.config.registration_timeout
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            raise PluginLaunchError(argv, "empty command")
        environ = {**os.environ, **(env or {}), PLUGIN_SOCKET_ENV: str(PLUGIN_SOCKET_FD)}
        for var, value in ((PLUGIN_NAME_ENV, name), (PLUGIN_IDX_ENV, idx)):
            if value is not None:
                environ[var] = value
            else:
                environ.pop(var, None)
        ours, theirs = socketpair()
        try:
            process = await spawn_with_socket(
                find_command(argv),
                theirs,
                environ,
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            ours.close()
            raise PluginLaunchError(argv, f"cannot start: {exc}") from exc
        finally:
            theirs.close()
        stderr = bytearray()
        reader = self._read(process, stderr, on_output)
        connect = asyncio.ensure_future(self.adaptation.connect_plugin(ours, pid=process.pid))
        exited = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait(
                {connect, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if connect in done and connect.exception() is None:
                handle = PluginProcess(argv, process, connect.result(), stderr)
                self.processes.append(handle)
                return handle
            if exited in done or connect in done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 1.0)
                await asyncio.wait({reader}, timeout=1.0)
                why = (
                    f"exited with status {process.returncode} before registering"
                    if process.returncode is not None
                    else f"failed to register: {connect.exception()}"
                )
                raise PluginLaunchError(argv, why, tail(stderr))
            raise TimeoutError(
                f"plugin {shlex.join(argv)!r} did not register within {timeout:g}s"
                + (f"; its stderr:\n{tail(stderr)}" if stderr.strip() else "")
            )
        except BaseException:
            connect.cancel()
            await terminate(process)
            raise
        finally:
            exited.cancel()

    async def add(
        self,
        plugin: Plugin,
        *,
        name: str,
        idx: str,
        config: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Stub:
        """Run a plugin object in this event loop; see :meth:`MockRuntime.add_plugin`."""
        if timeout is None:
            timeout = self.adaptation.config.registration_timeout
        ours, theirs = socketpair()
        # The stub takes its end the way a launched plugin does: as an inherited fd.
        handover = {PLUGIN_SOCKET_ENV: str(theirs.detach())}
        stub = Stub(plugin, name=name, idx=idx, config=config, environ=handover)
        connect = asyncio.ensure_future(self.adaptation.connect_plugin(ours))
        running = asyncio.ensure_future(stub.run())
        try:
            async with asyncio.timeout(timeout):
                done, _ = await asyncio.wait(
                    {connect, running}, return_when=asyncio.FIRST_COMPLETED
                )
                if running in done:
                    running.result()
                    raise PluginLaunchError([type(plugin).__name__], "stopped before registering")
                await connect
        except BaseException:
            connect.cancel()
            await stub.stop()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            raise
        # Kept apart from the runtime's background work: it runs until the plugin stops.
        self._stub_runs.add(running)
        running.add_done_callback(self._stub_runs.discard)
        self.stubs.append(stub)
        return stub

    async def stop_stubs(self) -> None:
        """Stop the in-process plugins and wait until they are done."""
        for stub in self.stubs:
            await stub.stop()
        await asyncio.gather(*self._stub_runs, return_exceptions=True)

    async def stop_processes(self) -> None:
        """Terminate the plugin commands and read the rest of their stderr."""
        for proc in self.processes:
            await terminate(proc.process)
        if self._pipes:
            # The adaptation stopped the pre-installed plugins: what they wrote is in the pipes.
            await asyncio.sleep(0.05)
            for fd in self._pipes:
                os.close(fd)
            self._pipes.clear()
        if self._readers:
            await asyncio.wait(self._readers, timeout=1.0)


async def collect_stderr(
    process: asyncio.subprocess.Process,
    into: bytearray,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Read ``process``'s stderr until it closes: keep the last few KiB in ``into`` and pass
    each line to ``on_line`` (a line longer than 64 KiB is passed in pieces)."""
    if process.stderr is not None:
        await collect_lines(process.stderr, into, on_line)


async def collect_lines(
    stream: asyncio.StreamReader,
    into: bytearray,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Read ``stream`` until it closes, as :func:`collect_stderr` does."""
    partial = b""
    while chunk := await stream.read(4096):
        into += chunk
        if len(into) > _STDERR_TAIL:
            del into[: len(into) - _STDERR_TAIL]
        if on_line is None:
            continue
        *lines, partial = (partial + chunk).split(b"\n")
        if len(partial) > _LONGEST_LINE:
            lines.append(partial)
            partial = b""
        on_line = _deliver(lines, on_line)
    if on_line is not None and partial:
        _deliver([partial], on_line)


def _deliver(
    lines: Iterable[bytes], on_line: Callable[[str], None]
) -> Callable[[str], None] | None:
    """Pass lines on; a failing callback is logged and gets nothing more."""
    try:
        for line in lines:
            on_line(line.decode("utf-8", "replace").rstrip("\r"))
    except Exception:
        logger.exception("the plugin output callback failed; no more lines are passed on")
        return None
    return on_line


def tail(buf: bytearray) -> str:
    """The text of a stderr tail kept by :func:`collect_stderr`."""
    return bytes(buf).decode("utf-8", "replace")


async def terminate(process: asyncio.subprocess.Process) -> None:
    """Terminate a process and wait for it; kill it if it does not exit within 2 seconds."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 2.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
