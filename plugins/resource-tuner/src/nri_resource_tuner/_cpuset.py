"""Linux cpuset lists: ``"0-3,8,10-11"`` to a set of numbers and back."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CpusetError", "format_cpuset", "parse_cpuset"]


class CpusetError(ValueError):
    """A cpuset list is malformed; the message quotes it and names the bad part."""


def parse_cpuset(text: str) -> frozenset[int]:
    """The numbers in a Linux cpuset list such as ``"0-3,8"``; empty text is the empty set."""
    numbers: set[int] = set()
    for raw in text.strip().split(","):
        part = raw.strip()
        if not part:
            if text.strip():
                raise CpusetError(f"invalid cpuset {text!r}: empty element")
            continue
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise CpusetError(
                f"invalid cpuset {text!r}: {part!r} is not a number or a range N-M"
            ) from None
        if first < 0 or last < first:
            raise CpusetError(f"invalid cpuset {text!r}: bad range {part!r}")
        numbers.update(range(first, last + 1))
    return frozenset(numbers)


def format_cpuset(numbers: Iterable[int]) -> str:
    """The canonical cpuset list of ``numbers``: sorted, runs of two or more as ``N-M``."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            first, last = ordered[start], ordered[i - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = i
    return ",".join(parts)
