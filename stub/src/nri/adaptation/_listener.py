"""The socket external plugins connect to: safe creation, stale-socket removal, accepting."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable

from nri.adaptation._config import AdaptationError
from nri.adaptation._trust import UntrustedPathError, check_directory

__all__ = ["accept_connections", "open_listener"]

logger = logging.getLogger("nri.adaptation")

# accept() errors that pass: fd or memory exhaustion, a connection aborted before accept.
_TRANSIENT_ACCEPT_ERRORS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EPROTO}
)
_ACCEPT_BACKOFF_MIN = 0.005
_ACCEPT_BACKOFF_MAX = 1.0


async def open_listener(path: str) -> socket.socket:
    """A non-blocking listening socket at ``path``, reachable by its owner only.

    The directory is created (0700, as upstream's MkdirAll) or must be ours alone; a stale
    socket is removed, a live one or a non-socket refused. Raises AdaptationError.
    """
    parent = os.path.dirname(path) or "."
    try:
        # An existing directory must be ours alone, or someone else could swap the socket
        # under the plugins.
        _make_dirs(parent, 0o700)
        check_directory(parent)
    except (OSError, UntrustedPathError) as exc:
        raise AdaptationError(f"failed to create socket {path!r}: {exc}") from exc
    await _remove_stale_socket(path)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            # Owner-only before listen(): nobody else can connect in between.
            os.chmod(path, 0o600)
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise AdaptationError(f"failed to create socket {path!r}: {exc}") from exc
    return sock


async def accept_connections(
    listener: socket.socket,
    handle: Callable[[socket.socket], Awaitable[None]],
    *,
    max_pending: int,
    spawn: Callable[[Awaitable[None]], None],
) -> None:
    """Accept connections on ``listener`` until it fails for good, ``spawn``-ing
    ``handle(conn)`` for each; at most ``max_pending`` handlers run at once (further
    connections wait in the listen backlog). Transient errors back off and retry."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(max_pending)
    delay = 0.0

    async def serve(conn: socket.socket) -> None:
        try:
            await handle(conn)
        finally:
            slots.release()

    while True:
        await slots.acquire()
        try:
            conn, _ = await loop.sock_accept(listener)
        except OSError as exc:
            slots.release()
            if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                logger.info("stopped accepting plugin connections (%s)", exc)
                return
            # Out of fds or memory, for now: back off and retry (as Go's net/http).
            if not delay:
                logger.warning(
                    "accepting plugin connections failed (%s); retrying with back-off", exc
                )
            delay = min(max(2 * delay, _ACCEPT_BACKOFF_MIN), _ACCEPT_BACKOFF_MAX)
            await asyncio.sleep(delay)
            continue
        if delay:
            logger.info("accepting plugin connections again")
            delay = 0.0
        spawn(serve(conn))


def _make_dirs(path: str, mode: int) -> None:
    """Create ``path`` and its missing parents, each with ``mode`` (as Go's MkdirAll;
    ``os.makedirs`` gives the parents the umask's default)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if parent != path:
        _make_dirs(parent, mode)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)


_FILE_KINDS = {
    stat.S_IFREG: "regular file",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symbolic link",
    stat.S_IFIFO: "named pipe",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


async def _remove_stale_socket(path: str) -> None:
    """Remove a leftover socket file; refuse one that something still accepts on."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AdaptationError(f"failed to create socket {path!r}: {exc}") from exc
    if not stat.S_ISSOCK(st.st_mode):
        # Upstream removes whatever is there; never remove (or follow) what is not a socket.
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "special file")
        raise AdaptationError(
            f"failed to create socket {path!r}: the path exists and is not a socket "
            f"(it is a {kind}); remove it or choose another socket path"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.setblocking(False)
    try:
        async with asyncio.timeout(1.0):
            await asyncio.get_running_loop().sock_connect(probe, path)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (
            errno.ECONNREFUSED,
            errno.ENOENT,
        ):
            logger.warning("probing existing socket %s failed (%s); replacing it", path, exc)
    else:
        raise AdaptationError(
            f"socket {path!r} is in use: another process accepts connections on it"
        )
    finally:
        probe.close()
    logger.info("removing stale NRI socket %s", path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
