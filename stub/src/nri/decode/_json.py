"""JSON loading within the same bounds, keeping number literals for Go-like typing."""

from __future__ import annotations

import json
import math
from typing import Any

from nri.decode._base import MAX_BYTES, MAX_DEPTH, DecodeError, checked_text, one_line


class JsonNumber(float):
    """A JSON number with a fraction or exponent, keeping its literal for typed decoding."""

    literal: str

    def __new__(cls, literal: str) -> JsonNumber:
        """Parse *literal*; Go refuses a literal that overflows float64, and so do we."""
        self = super().__new__(cls, literal)
        if math.isinf(self):
            raise ValueError(f"number {literal} out of range")
        self.literal = literal
        return self


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        depth += 1
        deepest = max(deepest, depth)
        todo.extend((child, depth) for child in item)
    return deepest


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Go's encoding/json applies keys in document order; remember that order and repeats
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.pop(key, None)
        result[key] = value
    return result


def load_json(
    text: str | bytes,
    *,
    source: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Decode a JSON document within the bounds (size, UTF-8, depth) of :func:`load_yaml`.

    Numbers with a fraction or exponent are :class:`JsonNumber` (a ``float``) so that
    :func:`from_json` can refuse ``1.0`` for an integer as Go does; ``NaN`` is refused.
    """
    data = checked_text(text, source, max_bytes)
    try:
        value = json.loads(
            data,
            parse_float=JsonNumber,
            parse_constant=_no_constant,
            object_pairs_hook=_json_pairs,
        )
    except json.JSONDecodeError as exc:
        raise DecodeError(source, f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise DecodeError(source, f"nesting deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise DecodeError(source, f"{one_line(str(exc))}") from None
    if _depth(value) > max_depth:
        raise DecodeError(source, f"nesting deeper than {max_depth} levels")
    return value
