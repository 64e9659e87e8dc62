"""Reading a ``/proc/PID/mountinfo`` file the way upstream's ``moby/sys/mountinfo`` does.

Only what the nsdelegate check needs: the mount point, file system type, source and super
block options of each line, with the same errors for malformed lines before the match.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "CGROUP_MOUNT_POINTS",
    "MAX_LINE",
    "MAX_SIZE",
    "MountInfo",
    "MountInfoError",
    "cgroup2_mount",
    "host_has_nsdelegate",
    "parse_line",
]

MAX_LINE = 64 * 1024
"""Go's ``bufio.Scanner`` buffer, which upstream reads with: a line must be shorter."""

MAX_SIZE = 16 << 20
"""Bytes read at most before giving up on finding the cgroup2 mount."""

CGROUP_MOUNT_POINTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
"""Where upstream looks for the host's cgroup2 mount (unified, or hybrid layout)."""


class MountInfoError(ValueError):
    """The mountinfo file cannot be read or has a malformed line (named in the message)."""


@dataclass(frozen=True, slots=True)
class MountInfo:
    """The fields of one mountinfo line the check needs."""

    mount_point: str
    fs_type: str
    source: str
    super_options: str
    """The per super block options (last field), e.g. ``rw,nsdelegate``."""

    @property
    def super_option_list(self) -> list[str]:
        """The super block options, split at ``,``."""
        return self.super_options.split(",")


def _unescape(field: bytes, what: str, line: int) -> str:
    if b"\\" not in field:
        return field.decode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] != b"\\":
            out.append(field[i])
            i += 1
            continue
        seq = field[i : i + 4]
        digits = seq[1:4]
        if len(seq) < 4 or not all(0x30 <= d <= 0x37 for d in digits):
            raise MountInfoError(f"line {line}: {what}: bad escape sequence {seq!r}")
        value = int(digits, 8)
        if value > 255:
            raise MountInfoError(f"line {line}: {what}: bad escape sequence {seq!r}: out of range")
        out.append(value)
        i += 4
    return out.decode("utf-8", "surrogateescape")


def parse_line(text: bytes, line: int = 1) -> MountInfo:
    """Parse one mountinfo line (without its newline); raises MountInfoError."""
    fields = text.split(b" ")
    if len(fields) < 10:
        raise MountInfoError(f"line {line}: not enough fields ({len(fields)})")
    sep = len(fields) - 4
    # Old kernels could leave a space in the last field: look further left for "-".
    while fields[sep] != b"-":
        sep -= 1
        if sep == 5:
            raise MountInfoError(f"line {line}: missing - separator")
    if len(fields[2].split(b":", 2)) != 2:
        raise MountInfoError(f"line {line}: unexpected major:minor pair {fields[2]!r}")
    info = MountInfo(
        mount_point=_unescape(fields[4], "mount point", line),
        fs_type=_unescape(fields[sep + 1], "fstype", line),
        source=_unescape(fields[sep + 2], "source", line),
        super_options=fields[sep + 3].decode("utf-8", "surrogateescape"),
    )
    _unescape(fields[3], "root", line)
    return info


def _lines(stream: BinaryIO, path: str) -> Iterator[tuple[int, bytes]]:
    total = 0
    number = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        total += len(raw)
        if total > MAX_SIZE:
            raise MountInfoError(f"{path}: more than {MAX_SIZE} bytes without a cgroup2 mount")
        text = raw.removesuffix(b"\n")
        if len(text) >= MAX_LINE:
            raise MountInfoError(f"{path}: line {number}: longer than {MAX_LINE - 1} bytes")
        yield number, text.removesuffix(b"\r")


def cgroup2_mount(path: str | os.PathLike[str]) -> MountInfo | None:
    """The first cgroup2 mount at a :data:`CGROUP_MOUNT_POINTS` path in ``path``, or None.

    Lines after that mount are not read, as upstream; a malformed line before it, or an
    unreadable file, raises MountInfoError naming the file.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            for number, text in _lines(stream, name):
                try:
                    info = parse_line(text, number)
                except MountInfoError as exc:
                    raise MountInfoError(f"{name}: {exc}") from None
                if info.fs_type == "cgroup2" and info.mount_point in CGROUP_MOUNT_POINTS:
                    return info
    except OSError as exc:
        raise MountInfoError(f"failed to open mount file {name!r}: {exc.strerror or exc}") from None
    return None


def host_has_nsdelegate(path: str | os.PathLike[str]) -> bool:
    """Whether the host's cgroup2 mount, per the mountinfo file, has ``nsdelegate``."""
    info = cgroup2_mount(path)
    return info is not None and "nsdelegate" in info.super_option_list
