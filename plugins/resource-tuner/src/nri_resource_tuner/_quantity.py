"""Memory sizes written like Kubernetes quantities: ``512Mi``, ``2G``, ``1.5Gi`` or bytes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["parse_bytes"]

_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*")


def parse_bytes(value: object) -> int:
    """A byte count from an integer or a quantity string; raises ValueError saying why."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 512Mi or a number of bytes, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as 512Mi or a number of bytes, got {value!r}")
    match = _QUANTITY.fullmatch(value)
    if match is None or match.group(2) not in _SUFFIXES:
        known = ", ".join(s for s in _SUFFIXES if s)
        raise ValueError(f"invalid size {value!r} (expected a number with a suffix of {known})")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern only admits decimals
        raise ValueError(f"invalid size {value!r}") from None
    return int(number * _SUFFIXES[match.group(2)])
