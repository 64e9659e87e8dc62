"""Reading small text files (configuration, drop-ins) that may be hostile."""

from __future__ import annotations

import errno
import os
import stat

from nri.decode._base import MAX_BYTES

__all__ = ["TextFileError", "read_text_file"]


class TextFileError(ValueError):
    """A text file could not be used; ``str(exc)`` is one line naming the file.

    ``missing`` is true when the file does not exist (callers with optional files test it).
    """

    def __init__(self, message: str, *, path: str, missing: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.missing = missing


def read_text_file(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES, what: str = "file"
) -> str:
    """The text of the regular file ``path``: UTF-8, at most ``max_bytes`` bytes.

    A FIFO, device or directory is refused without opening it for reading in a way that
    could block; ``what`` names the file in the messages (``"config file"``). Raises
    :class:`TextFileError`.
    """
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise TextFileError(
            f"cannot read {what} {name}: {exc.strerror or exc}",
            path=name,
            missing=exc.errno == errno.ENOENT,
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise TextFileError(f"cannot read {what} {name}: Is a directory", path=name)
        if not stat.S_ISREG(mode):
            raise TextFileError(f"{what} {name} is not a regular file", path=name)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise TextFileError(
                f"cannot read {what} {name}: {exc.strerror or exc}", path=name
            ) from None
    if len(data) > max_bytes:
        raise TextFileError(f"{what} {name}: larger than {max_bytes} bytes", path=name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextFileError(
            f"{what} {name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            path=name,
        ) from None
