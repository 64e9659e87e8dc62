"""Limits, the error type and the input checks shared by the YAML and JSON loaders."""

from __future__ import annotations

from typing import Final

MAX_BYTES: Final = 1 << 20
ANNOTATION_MAX_BYTES: Final = 256 * 1024
"""Size limit for one annotation value: Kubernetes limits all of a pod's annotations
together to 256 KiB, so a longer value cannot come from a valid pod."""
MAX_DEPTH: Final = 64
MAX_ALIAS_NODES: Final = 10_000


class DecodeError(ValueError):
    """Input that could not be decoded; ``str(exc)`` is one line naming source and place.

    ``source`` is the name given to the decoder and ``problem`` the rest of the message
    (with the line and column or the field where known).
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def checked_text(data: str | bytes, source: str, max_bytes: int) -> str:
    """*data* as text once it is within *max_bytes* as UTF-8 and valid UTF-8."""
    if isinstance(data, str):
        if len(data) > max_bytes:
            raise DecodeError(source, f"too large (over {max_bytes} bytes)")
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DecodeError(source, f"not valid UTF-8 (at character {exc.start})") from None
    else:
        raw = data
    if len(raw) > max_bytes:
        raise DecodeError(source, f"too large ({len(raw)} bytes, limit {max_bytes})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(source, f"not valid UTF-8 (at byte {exc.start})") from None
    return text.removeprefix("\ufeff")


def one_line(text: str) -> str:
    """*text* with every run of whitespace (newlines too) made one space."""
    return " ".join(str(text).split())
