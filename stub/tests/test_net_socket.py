"""Tests for the socketpair / inherited-fd helpers (nri.net._socket), with real children."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nri.net
from nri.net import (
    PLUGIN_IDX_ENV,
    PLUGIN_NAME_ENV,
    PLUGIN_SERVICE_CONN,
    PLUGIN_SOCKET_ENV,
    RUNTIME_SERVICE_CONN,
    Mux,
    MuxClosedError,
    SocketEnvError,
    plugin_environment,
    socket_from_env,
    socketpair,
    spawn_with_socket,
)

pytestmark = pytest.mark.timeout(30)

# The directory that holds the `nri` package, so children import the code under test.
SRC_DIR = str(Path(nri.net.__file__).resolve().parents[2])

PLUGIN_SCRIPT = textwrap.dedent(
    """
    import os, sys

    def is_open(fd):
        try:
            os.fstat(fd)
        except OSError:
            return False
        return True

    # Before anything else opens files: which fds did we inherit?
    inherited = [fd for fd in range(256) if is_open(fd)]
    with open("/proc/self/environ", "rb") as f:
        environ = sorted(e.decode() for e in f.read().split(b"\\0") if e)

    sys.path.insert(0, sys.argv[1])
    import asyncio, json
    from nri.net import Mux, MuxClosedError, socket_from_env

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
        def data_received(self, data):
            self.transport.write(data.upper())

    async def main():
        sock = socket_from_env()
        report = {
            "inherited": inherited,
            "environ": environ,
            "fileno": sock.fileno(),
            "inheritable": os.get_inheritable(sock.fileno()),
        }
        mux = await Mux.from_socket(sock)
        mux.open(1, Echo())
        mux.open(2, asyncio.Protocol()).write(json.dumps(report).encode())
        await mux.wait_closed()
        return 0 if isinstance(mux.close_reason, MuxClosedError) else 3

    sys.exit(asyncio.run(main()))
    """
)


class Collector(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.changed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    async def wait_until(self, size: int) -> bytes:
        while len(self.data) < size:
            self.changed.clear()
            await self.changed.wait()
        return bytes(self.data)

    async def wait_json(self) -> dict[str, object]:
        while True:
            try:
                value: dict[str, object] = json.loads(self.data)
            except ValueError:
                self.changed.clear()
                await self.changed.wait()
            else:
                return value


def test_socketpair_is_unix_stream_cloexec() -> None:
    a, b = socketpair()
    with a, b:
        for s in (a, b):
            assert s.family == socket.AF_UNIX
            assert s.type == socket.SOCK_STREAM
            assert fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"


def test_plugin_environment_is_exactly_upstreams() -> None:
    assert plugin_environment("logger", "10") == {
        "NRI_PLUGIN_NAME": "logger",
        "NRI_PLUGIN_IDX": "10",
        "NRI_PLUGIN_SOCKET": "3",
    }
    assert (PLUGIN_NAME_ENV, PLUGIN_IDX_ENV, PLUGIN_SOCKET_ENV) == (
        "NRI_PLUGIN_NAME",
        "NRI_PLUGIN_IDX",
        "NRI_PLUGIN_SOCKET",
    )


async def test_child_plugin_talks_over_fd3(tmp_path: Path) -> None:
    script = tmp_path / "10-child.py"
    script.write_text(PLUGIN_SCRIPT)
    ours, theirs = socketpair()
    with theirs:
        process = await spawn_with_socket(
            [sys.executable, str(script), SRC_DIR], theirs, plugin_environment("child", "10")
        )
    try:
        runtime = await Mux.from_socket(ours)
        plugin_conn, report_conn = Collector(), Collector()
        runtime.open(PLUGIN_SERVICE_CONN, plugin_conn)
        runtime.open(RUNTIME_SERVICE_CONN, report_conn)
        plugin_conn.transport.write(b"configure")
        assert await plugin_conn.wait_until(9) == b"CONFIGURE"
        report = await report_conn.wait_json()
        assert report["environ"] == sorted(
            ["NRI_PLUGIN_NAME=child", "NRI_PLUGIN_IDX=10", "NRI_PLUGIN_SOCKET=3"]
        )
        assert report["inherited"] == [0, 1, 2, 3]
        assert report["fileno"] == 3
        assert report["inheritable"] is False
        runtime.close()
        await runtime.wait_closed()
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_spawn_argument_errors() -> None:
    a, b = socketpair()
    with a, b:
        with pytest.raises(ValueError, match="NRI_PLUGIN_SOCKET=3"):
            await spawn_with_socket([sys.executable], b, {"NRI_PLUGIN_NAME": "x"})
        with pytest.raises(ValueError, match="argv must not be empty"):
            await spawn_with_socket([], b, plugin_environment("x", "10"))
        with pytest.raises(FileNotFoundError):
            await spawn_with_socket(["/nonexistent/10-plugin"], b, plugin_environment("x", "10"))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with udp, pytest.raises(ValueError, match="AF_UNIX stream socket"):
        await spawn_with_socket([sys.executable], udp, plugin_environment("x", "10"))


def test_spawn_when_fd3_is_free_in_the_parent(tmp_path: Path) -> None:
    """fd 3 free in the parent: a placeholder keeps subprocess's own pipes off it."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            sys.path.insert(0, sys.argv[1])
            from nri.net import _socket

            try:
                os.close(3)
            except OSError:
                pass
            with _socket._fd3_occupied():
                assert os.path.samestat(os.fstat(3), os.stat(os.devnull))
            try:
                os.fstat(3)
            except OSError:
                print("freed")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script), SRC_DIR], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "freed"


def test_socket_from_env_unset_or_empty() -> None:
    assert socket_from_env({}) is None
    assert socket_from_env({PLUGIN_SOCKET_ENV: ""}) is None


def test_socket_from_env_valid() -> None:
    a, b = socketpair()
    b.set_inheritable(True)
    with a:
        fd = b.fileno()
        sock = socket_from_env({PLUGIN_SOCKET_ENV: str(fd)})
        b.detach()
        assert sock is not None
        with sock:
            assert sock.fileno() == fd
            assert not sock.get_inheritable()
            sock.sendall(b"hi")
            assert a.recv(2) == b"hi"


@pytest.mark.parametrize("value", ["abc", "-1", " 3", "3.0", "+3", "٣", "0x3"])
def test_socket_from_env_not_a_number(value: str) -> None:
    with pytest.raises(SocketEnvError, match="not a file descriptor number") as info:
        socket_from_env({PLUGIN_SOCKET_ENV: value})
    assert PLUGIN_SOCKET_ENV in str(info.value)


def test_socket_from_env_closed_fd() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(SocketEnvError, match=f"fd {fd} is not an open file descriptor"):
        socket_from_env({PLUGIN_SOCKET_ENV: str(fd)})
    with pytest.raises(SocketEnvError, match="not an open file descriptor"):
        socket_from_env({PLUGIN_SOCKET_ENV: "99999999999999999999999"})


def test_socket_from_env_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with path.open() as f, pytest.raises(SocketEnvError, match=r"not a socket \(file mode -"):
        socket_from_env({PLUGIN_SOCKET_ENV: str(f.fileno())})
    r, w = os.pipe()
    try:
        with pytest.raises(SocketEnvError, match="is not a socket"):
            socket_from_env({PLUGIN_SOCKET_ENV: str(r)})
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    ("family", "kind"),
    [(socket.AF_UNIX, socket.SOCK_DGRAM), (socket.AF_INET, socket.SOCK_STREAM)],
)
def test_socket_from_env_wrong_socket_kind(family: int, kind: int) -> None:
    s = socket.socket(family, kind)
    with s:
        with pytest.raises(SocketEnvError, match="is not a unix stream socket"):
            socket_from_env({PLUGIN_SOCKET_ENV: str(s.fileno())})
        os.fstat(s.fileno())  # the fd was left alone


async def test_mux_rejects_closed_env_socket_peer() -> None:
    """A plugin whose runtime end is already gone sees trunk loss right away."""
    a, b = socketpair()
    a.close()
    b.set_inheritable(True)
    sock = socket_from_env({PLUGIN_SOCKET_ENV: str(b.detach())})
    assert sock is not None
    mux = await Mux.from_socket(sock)
    await mux.wait_closed()
    assert isinstance(mux.close_reason, MuxClosedError)
