"""Socket helpers for pre-installed (runtime-launched) plugins.

The runtime creates a socketpair, launches the plugin with the peer end as fd 3 and an
environment of exactly ``NRI_PLUGIN_NAME``, ``NRI_PLUGIN_IDX`` and ``NRI_PLUGIN_SOCKET=3``
(upstream ``pkg/adaptation/plugin.go`` newLaunchedPlugin). The plugin then picks the socket up
from ``NRI_PLUGIN_SOCKET`` (upstream ``pkg/stub/stub.go`` connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from nri.api._constants import PLUGIN_IDX_ENV_VAR, PLUGIN_NAME_ENV_VAR, PLUGIN_SOCKET_ENV_VAR

__all__ = [
    "PLUGIN_IDX_ENV",
    "PLUGIN_NAME_ENV",
    "PLUGIN_SOCKET_ENV",
    "PLUGIN_SOCKET_FD",
    "SocketEnvError",
    "plugin_environment",
    "socket_from_env",
    "socketpair",
    "spawn_with_socket",
]

logger = logging.getLogger("nri.net.socket")

# The variable names are defined once, in nri.api (as upstream's pkg/api does).
PLUGIN_SOCKET_ENV = PLUGIN_SOCKET_ENV_VAR
PLUGIN_NAME_ENV = PLUGIN_NAME_ENV_VAR
PLUGIN_IDX_ENV = PLUGIN_IDX_ENV_VAR
#: The fd on which a launched plugin finds its socket (Go's ExtraFiles[0]).
PLUGIN_SOCKET_FD = 3

_Redirect = int | IO[Any] | None


class SocketEnvError(ValueError):
    """``NRI_PLUGIN_SOCKET`` does not name an open unix stream socket."""


def socketpair() -> tuple[socket.socket, socket.socket]:
    """Return a connected pair of AF_UNIX stream sockets, both close-on-exec.

    Keep the first end; hand the second to the plugin with :func:`spawn_with_socket`.
    """
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)


def plugin_environment(name: str, idx: str) -> dict[str, str]:
    """Return the exact environment upstream gives a launched plugin."""
    return {PLUGIN_NAME_ENV: name, PLUGIN_IDX_ENV: idx, PLUGIN_SOCKET_ENV: str(PLUGIN_SOCKET_FD)}


def _fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            return False
        raise
    return True


@contextlib.contextmanager
def _fd3_occupied() -> Iterator[None]:
    # If fd 3 is free here, subprocess's internal pipes may land on it and our dup2 in the
    # child would clobber one of them (e.g. the exec error pipe); park /dev/null there.
    placeholder = -1
    if not _fd_is_open(PLUGIN_SOCKET_FD):
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if devnull == PLUGIN_SOCKET_FD:
            placeholder = devnull
        else:
            placeholder = os.dup2(devnull, PLUGIN_SOCKET_FD, inheritable=False)
            os.close(devnull)
    try:
        yield
    finally:
        if placeholder >= 0:
            os.close(placeholder)


async def spawn_with_socket(
    argv: Sequence[str],
    sock: socket.socket,
    env: Mapping[str, str],
    *,
    stdin: _Redirect = None,
    stdout: _Redirect = None,
    stderr: _Redirect = None,
    cwd: str | os.PathLike[str] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with ``sock`` as its fd 3 and ``env`` as its whole environment.

    ``env`` is passed verbatim and must say ``NRI_PLUGIN_SOCKET=3``; build it with
    :func:`plugin_environment` to match upstream. No other fds are inherited besides
    stdio. The caller still owns ``sock`` and should close it once the child is started.
    """
    if not argv:
        raise ValueError("argv must not be empty")
    if env.get(PLUGIN_SOCKET_ENV) != str(PLUGIN_SOCKET_FD):
        raise ValueError(
            f"env must set {PLUGIN_SOCKET_ENV}={PLUGIN_SOCKET_FD}, "
            f"got {env.get(PLUGIN_SOCKET_ENV)!r}"
        )
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f"plugin socket must be an AF_UNIX stream socket, got {sock!r}")
    fd = sock.fileno()
    if fd < 0:
        raise ValueError("plugin socket is closed")

    def put_socket_on_fd3() -> None:
        # Runs in the child between fork and exec; dup2 leaves the new fd inheritable.
        if fd != PLUGIN_SOCKET_FD:
            os.dup2(fd, PLUGIN_SOCKET_FD)
        else:
            os.set_inheritable(fd, True)

    with _fd3_occupied():
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=dict(env),
            close_fds=True,
            pass_fds=(PLUGIN_SOCKET_FD,),
            preexec_fn=put_socket_on_fd3,
        )
    logger.debug("started %s (pid %d) with socket on fd 3", argv[0], process.pid)
    return process


def socket_from_env(environ: Mapping[str, str] | None = None) -> socket.socket | None:
    """Return the socket named by ``NRI_PLUGIN_SOCKET``, or None when it is unset or empty.

    ``environ`` defaults to ``os.environ``. The returned socket owns the fd and is made
    close-on-exec. Raises :class:`SocketEnvError` if the value is not a decimal fd number,
    not an open fd, or not an AF_UNIX stream socket.
    """
    if environ is None:
        environ = os.environ
    value = environ.get(PLUGIN_SOCKET_ENV, "")
    if value == "":
        return None
    where = f"{PLUGIN_SOCKET_ENV}={value!r}"
    if not (value.isascii() and value.isdigit()):
        raise SocketEnvError(f"{where} is not a file descriptor number")
    fd = int(value)
    try:
        mode = os.fstat(fd).st_mode
    except (OSError, OverflowError) as exc:
        raise SocketEnvError(f"{where}: fd {fd} is not an open file descriptor ({exc})") from exc
    if not stat.S_ISSOCK(mode):
        raise SocketEnvError(f"{where}: fd {fd} is not a socket (file mode {stat.filemode(mode)})")
    sock = socket.socket(fileno=fd)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        description = f"family {sock.family!r}, type {sock.type!r}"
        sock.detach()
        raise SocketEnvError(f"{where}: fd {fd} is not a unix stream socket ({description})")
    sock.set_inheritable(False)
    return sock
