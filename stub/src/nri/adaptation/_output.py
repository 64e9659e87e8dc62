"""Relay what a launched plugin writes to its stdout/stderr into the runtime's log."""

from __future__ import annotations

import asyncio
import logging

__all__ = ["MAX_LINE", "log_output", "printable"]

logger = logging.getLogger("nri.adaptation.plugin")

#: Longest line logged as is; the rest of a longer line is dropped.
MAX_LINE = 4096

_READ = 64 * 1024
# C0 controls (but tab) and DEL would let a plugin forge or garble log lines.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F] if c != 0x09}


def printable(raw: bytes) -> str:
    """``raw`` as one log-safe line: undecodable bytes and control characters escaped."""
    return raw.decode("utf-8", "backslashreplace").translate(_ESCAPES)


async def log_output(name: str, stream: asyncio.StreamReader, *, max_line: int = MAX_LINE) -> None:
    """Log each line read from ``stream`` as ``[name] line`` until EOF.

    Memory stays bounded by ``max_line`` plus one read, however the plugin writes.
    """
    pending = bytearray()
    dropping = False  # inside a line that was already cut at max_line
    while chunk := await stream.read(_READ):
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            if dropping:
                dropping = False
            else:
                _emit(name, pending[: min(end, max_line)], truncated=end > max_line)
            del pending[: end + 1]
        if dropping:
            pending.clear()
        elif len(pending) > max_line:
            _emit(name, pending[:max_line], truncated=True)
            pending.clear()
            dropping = True
    if pending and not dropping:
        _emit(name, pending)


def _emit(name: str, raw: bytes | bytearray, *, truncated: bool = False) -> None:
    line = printable(bytes(raw).rstrip(b"\r"))
    if truncated:
        line += f" ... (line truncated at {len(raw)} bytes)"
    logger.info("[%s] %s", name, line)
