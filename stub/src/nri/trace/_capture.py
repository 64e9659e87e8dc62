"""Recordings: the JSON capture format of ``tests/data/captures``, written as traffic passes.

A recording is one JSON object with ``description``, ``source``, ``notes`` and ``chunks``:
each chunk is ``{"i", "dir", "t_ns", "len", "hex"}``, the raw bytes of one read in one
direction, exactly as the captures of upstream's Go runtime and plugins hold them. A
recording made by ``nri-trace`` adds ``"session"`` to every chunk (the plugin connection it
belongs to, from 0) and, when the tracer stops cleanly, a ``sessions`` list naming the
plugin of each. Chunks are written and flushed one per line as they pass, so a recording cut
short by a crash still loads (:func:`load_capture` closes the open list).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import nri
from nri.trace._tap import FROM_PLUGIN, FROM_RUNTIME

__all__ = ["CaptureError", "Chunk", "Recorder", "Session", "load_capture", "sessions"]

#: Largest recording :func:`load_capture` reads.
MAX_CAPTURE_BYTES = 256 << 20

_NOTES = [
    "chunks: raw byte chunks as read by nri-trace (read() boundaries, not protocol "
    "boundaries), in observed order; session: the plugin connection a chunk belongs to",
    "mux frame header: 4-byte big-endian conn ID + 4-byte big-endian payload length",
    "mux conn 1: the runtime calls the plugin's nri.pkg.api.v1alpha1.Plugin service; "
    "conn 2: the plugin calls the runtime's nri.pkg.api.v1alpha1.Runtime service",
]


class CaptureError(ValueError):
    """A recording file that cannot be read; ``str()`` is one line naming the file."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One read's worth of bytes in one direction of one plugin connection."""

    session: int
    direction: str
    t_ns: int
    data: bytes


@dataclass(slots=True)
class Session:
    """The chunks of one plugin connection, in observed order."""

    session: int
    chunks: list[Chunk] = field(default_factory=list)


class Recorder:
    """Write a recording to ``path`` chunk by chunk; :meth:`close` finishes the JSON."""

    def __init__(self, path: str | os.PathLike[str], *, description: str) -> None:
        """Create (or truncate) ``path``; raises OSError if it cannot be written."""
        self._file: IO[str] | None = open(path, "w", encoding="utf-8")  # noqa: SIM115
        self._count = 0
        self._plugins: dict[int, str] = {}
        head = {
            "description": description,
            "source": f"nri-trace {nri.__version__}",
            "notes": _NOTES,
        }
        text = json.dumps(head, indent=1)
        self._file.write(text[: text.rindex("}")].rstrip() + ',\n "chunks": [\n')
        self._file.flush()

    def chunk(self, session: int, direction: str, t_ns: int, data: bytes) -> None:
        """Append one chunk and flush it to disk."""
        if self._file is None:
            return
        entry = {
            "i": self._count,
            "session": session,
            "dir": direction,
            "t_ns": t_ns,
            "len": len(data),
            "hex": data.hex(),
        }
        self._file.write(("  " if not self._count else ",\n  ") + json.dumps(entry))
        self._file.flush()
        self._count += 1

    def plugin(self, session: int, name: str) -> None:
        """Note the plugin name (``NN-name``) of ``session``, for the closing ``sessions``."""
        self._plugins[session] = name

    def close(self) -> None:
        """Finish the JSON document and close the file."""
        if self._file is None:
            return
        sessions = [{"session": s, "plugin": p} for s, p in sorted(self._plugins.items())]
        self._file.write(f'\n ],\n "sessions": {json.dumps(sessions)}\n}}\n')
        self._file.close()
        self._file = None


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        # A recording cut short: its chunk list is still open.
        body = text.rstrip().rstrip(",")
        if '"chunks": [' in text:
            for tail in ("\n ]\n}", "}\n ]\n}"):
                try:
                    return json.loads(body + tail)
                except json.JSONDecodeError:
                    continue
        raise CaptureError(
            f"{where}: not a JSON recording: line {first.lineno} column {first.colno}: {first.msg}"
        ) from None


def load_capture(path: str | os.PathLike[str]) -> list[Chunk]:
    """Read the chunks of a recording or capture file; raise :class:`CaptureError`."""
    where = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CAPTURE_BYTES + 1)
    except OSError as exc:
        raise CaptureError(f"{where}: cannot read recording: {exc.strerror or exc}") from None
    if len(raw) > MAX_CAPTURE_BYTES:
        raise CaptureError(f"{where}: recording is larger than {MAX_CAPTURE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptureError(f"{where}: recording is not UTF-8 (byte {exc.start})") from None
    doc = _parse(text, where)
    if not isinstance(doc, dict) or not isinstance(doc.get("chunks"), list):
        raise CaptureError(f"{where}: not a recording: no 'chunks' list")
    return list(_chunks(doc["chunks"], where))


def _chunks(items: list[Any], where: str) -> Iterator[Chunk]:
    for n, item in enumerate(items):
        spot = f"{where}: chunk #{n}"
        if not isinstance(item, dict):
            raise CaptureError(f"{spot}: not an object")
        direction = item.get("dir")
        if direction not in (FROM_PLUGIN, FROM_RUNTIME):
            raise CaptureError(
                f"{spot}: 'dir' must be {FROM_PLUGIN!r} or {FROM_RUNTIME!r}, got {direction!r}"
            )
        session, t_ns, hexdata = item.get("session", 0), item.get("t_ns", 0), item.get("hex")
        if not isinstance(session, int) or isinstance(session, bool) or session < 0:
            raise CaptureError(f"{spot}: 'session' must be a non-negative integer")
        if not isinstance(t_ns, int) or isinstance(t_ns, bool):
            raise CaptureError(f"{spot}: 't_ns' must be an integer")
        if not isinstance(hexdata, str):
            raise CaptureError(f"{spot}: 'hex' must be a string of hex digits")
        try:
            data = bytes.fromhex(hexdata)
        except ValueError:
            raise CaptureError(f"{spot}: 'hex' is not valid hex") from None
        if "len" in item and item["len"] != len(data):
            raise CaptureError(f"{spot}: 'len' is {item['len']!r} but 'hex' holds {len(data)}")
        yield Chunk(session, direction, t_ns, data)


def sessions(chunks: list[Chunk]) -> list[Session]:
    """Group ``chunks`` by plugin connection, in order of first appearance."""
    by_id: dict[int, Session] = {}
    for chunk in chunks:
        by_id.setdefault(chunk.session, Session(chunk.session)).chunks.append(chunk)
    return list(by_id.values())
