"""Resource limits of the runtime against hostile peers, with the runtime in its own process:
fd exhaustion in the accept loop, the cap on unregistered connections, and memory when a
peer writes without reading."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _adaptation_helpers import RawPlugin

from nri.net import RUNTIME_SERVICE_CONN

SERVE = Path(__file__).parent / "adaptation_plugins" / "serve.py"


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    socket_path: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    async def wait_for(self, lines: list[str], text: str, timeout: float = 10.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                for line in lines:
                    if text in line:
                        return line
                await asyncio.sleep(0.05)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace").rstrip("\n"))


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, *args: str) -> AsyncIterator[Served]:
    socket_path = str(tmp_path / "nri" / "nri.sock")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVE),
        "--socket",
        socket_path,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(proc, socket_path)
    assert proc.stdout is not None and proc.stderr is not None
    tasks = [
        asyncio.create_task(_collect(proc.stdout, served.stdout)),
        asyncio.create_task(_collect(proc.stderr, served.stderr)),
    ]
    try:
        await served.wait_for(served.stdout, "ready")
        yield served
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await asyncio.gather(*tasks, return_exceptions=True)


def silent_connections(path: str, count: int) -> list[socket.socket]:
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        conns.append(s)
    return conns


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_fd_exhaustion_backs_off_and_accepting_resumes(tmp_path: Path) -> None:
    async with serve(
        tmp_path, "--nofile", "64", "--max-unregistered", "1000", "--registration-timeout", "30"
    ) as served:
        conns = silent_connections(served.socket_path, 100)
        try:
            await served.wait_for(served.stderr, "Too many open files")
            assert served.fds() <= 64
        finally:
            for s in conns:
                s.close()
        # Once the fds are free again, a plugin gets in.
        async with RawPlugin(served.socket_path, name="late") as raw:
            await raw.register()
            await served.wait_for(served.stdout, "registered 50-late")
        assert not any("stopped accepting" in line for line in served.stderr)


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_unregistered_connections_are_capped(tmp_path: Path) -> None:
    async with serve(tmp_path, "--max-unregistered", "2", "--registration-timeout", "30") as served:
        await asyncio.sleep(0.2)
        baseline = served.fds()
        conns = silent_connections(served.socket_path, 10)
        try:
            await asyncio.sleep(0.5)
            assert served.fds() - baseline == 2
            async with RawPlugin(served.socket_path, name="waiting") as raw:
                registering = asyncio.create_task(raw.register())
                await asyncio.sleep(0.5)
                assert not registering.done()  # queued behind the silent ones
                for s in conns:
                    s.close()
                await asyncio.wait_for(registering, 10)
                await served.wait_for(served.stdout, "registered 50-waiting")
        finally:
            for s in conns:
                s.close()


def _flood_payload(total: int) -> bytes:
    """Requests with even stream ids, each answered with an error, packed in big frames."""
    message = struct.pack(">IIBB", 0, 2, 1, 0)  # header only: length 0, stream 2, request
    frame_body = message * ((4 << 20) // len(message))
    frame = struct.pack(">II", RUNTIME_SERVICE_CONN, len(frame_body)) + frame_body
    return frame * max(1, total // len(frame))


def _write_without_reading(path: str, data: bytes) -> tuple[int, str]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    sent = 0
    try:
        view = memoryview(data)
        while sent < len(data):
            sent += s.send(view[sent : sent + (1 << 20)])
    except (BrokenPipeError, ConnectionResetError) as exc:
        return sent, type(exc).__name__
    except TimeoutError:
        return sent, "timeout"
    finally:
        s.close()
    return sent, "all sent"


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_peer_writing_without_reading_is_dropped_with_bounded_memory(
    tmp_path: Path,
) -> None:
    data = _flood_payload(48 << 20)
    async with serve(tmp_path, "--registration-timeout", "60") as served:
        await asyncio.sleep(0.2)
        before = served.rss()
        sent, outcome = await asyncio.to_thread(_write_without_reading, served.socket_path, data)
        after = served.rss()
        print(f"flood: {sent} of {len(data)} bytes sent ({outcome}); RSS {before} -> {after}")
        assert outcome in ("BrokenPipeError", "ConnectionResetError"), (outcome, sent)
        assert sent < len(data)
        assert after - before < 40 << 20, (before, after, sent)
        # And the runtime still serves others.
        async with RawPlugin(served.socket_path, name="after") as raw:
            await raw.register()
            await served.wait_for(served.stdout, "registered 50-after")
