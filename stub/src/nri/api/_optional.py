"""Conversion between Python values and the ``Optional*`` wrapper messages.

A wrapper field that is absent means "not set"; a present wrapper carries a value even
if that value is zero. ``get_optional``/``set_optional`` work on any wrapper field by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, TypeAlias

from google.protobuf.message import Message

from nri.api import api_pb2 as pb

__all__ = [
    "OptionalValue",
    "get_optional",
    "optional_bool",
    "optional_file_mode",
    "optional_int",
    "optional_int32",
    "optional_int64",
    "optional_repeated_string",
    "optional_string",
    "optional_uint32",
    "optional_uint64",
    "set_optional",
]

#: What an ``Optional*`` wrapper holds once unwrapped.
OptionalValue: TypeAlias = str | int | bool | list[str]

_INT32: Final = (-(1 << 31), (1 << 31) - 1)
_UINT32: Final = (0, (1 << 32) - 1)
_INT64: Final = (-(1 << 63), (1 << 63) - 1)
_UINT64: Final = (0, (1 << 64) - 1)


def _int(value: int, bounds: tuple[int, int], kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{kind} value must be an int, not {type(value).__name__}")
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{kind} value {value} out of range [{low}, {high}]")
    return value


def optional_string(value: str) -> pb.OptionalString:
    """Wrap a str in OptionalString."""
    if not isinstance(value, str):
        raise TypeError(f"string value must be a str, not {type(value).__name__}")
    return pb.OptionalString(value=value)


def optional_repeated_string(value: Iterable[str]) -> pb.OptionalRepeatedString:
    """Wrap a sequence of str in OptionalRepeatedString (an empty list is still 'set')."""
    if isinstance(value, str | bytes):
        raise TypeError("repeated string value must be an iterable of str, not a single str")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"repeated string item must be a str, not {type(item).__name__}")
    return pb.OptionalRepeatedString(value=items)


def optional_int(value: int) -> pb.OptionalInt:
    """Wrap an int (64-bit on the wire, Go ``int``) in OptionalInt."""
    return pb.OptionalInt(value=_int(value, _INT64, "int"))


def optional_int32(value: int) -> pb.OptionalInt32:
    """Wrap an int32 in OptionalInt32."""
    return pb.OptionalInt32(value=_int(value, _INT32, "int32"))


def optional_uint32(value: int) -> pb.OptionalUInt32:
    """Wrap a uint32 in OptionalUInt32."""
    return pb.OptionalUInt32(value=_int(value, _UINT32, "uint32"))


def optional_int64(value: int) -> pb.OptionalInt64:
    """Wrap an int64 in OptionalInt64."""
    return pb.OptionalInt64(value=_int(value, _INT64, "int64"))


def optional_uint64(value: int) -> pb.OptionalUInt64:
    """Wrap a uint64 in OptionalUInt64."""
    return pb.OptionalUInt64(value=_int(value, _UINT64, "uint64"))


def optional_bool(value: bool) -> pb.OptionalBool:
    """Wrap a bool in OptionalBool."""
    if not isinstance(value, bool):
        raise TypeError(f"bool value must be a bool, not {type(value).__name__}")
    return pb.OptionalBool(value=value)


def optional_file_mode(value: int) -> pb.OptionalFileMode:
    """Wrap a file mode (e.g. ``0o644``, uint32 like Go ``os.FileMode``) in OptionalFileMode."""
    return pb.OptionalFileMode(value=_int(value, _UINT32, "file mode"))


_PACKAGE: Final = "nri.pkg.api.v1alpha1."

_MAKERS: Final[dict[str, Callable[[OptionalValue], Message]]] = {
    _PACKAGE + "OptionalString": optional_string,  # type: ignore[dict-item]
    _PACKAGE + "OptionalRepeatedString": optional_repeated_string,  # type: ignore[dict-item]
    _PACKAGE + "OptionalInt": optional_int,  # type: ignore[dict-item]
    _PACKAGE + "OptionalInt32": optional_int32,  # type: ignore[dict-item]
    _PACKAGE + "OptionalUInt32": optional_uint32,  # type: ignore[dict-item]
    _PACKAGE + "OptionalInt64": optional_int64,  # type: ignore[dict-item]
    _PACKAGE + "OptionalUInt64": optional_uint64,  # type: ignore[dict-item]
    _PACKAGE + "OptionalBool": optional_bool,  # type: ignore[dict-item]
    _PACKAGE + "OptionalFileMode": optional_file_mode,  # type: ignore[dict-item]
}


def _wrapper_type(msg: Message, field: str) -> str:
    desc = msg.DESCRIPTOR
    fd = desc.fields_by_name.get(field)
    if fd is None:
        raise ValueError(f"{desc.name} has no field {field!r}")
    sub = fd.message_type
    if sub is None or sub.full_name not in _MAKERS:
        raise ValueError(f"{desc.name}.{field} is not an Optional* wrapper field")
    return str(sub.full_name)


def get_optional(msg: Message, field: str) -> OptionalValue | None:
    """Return the value of wrapper field ``field`` of ``msg``, or None if it is absent."""
    kind = _wrapper_type(msg, field)
    if not msg.HasField(field):
        return None
    value = getattr(msg, field).value
    if kind.endswith("OptionalRepeatedString"):
        return list(value)
    return value  # type: ignore[no-any-return]


def set_optional(msg: Message, field: str, value: OptionalValue | None) -> None:
    """Set wrapper field ``field`` of ``msg`` to ``value``; None clears it (absent)."""
    kind = _wrapper_type(msg, field)
    if value is None:
        msg.ClearField(field)
        return
    getattr(msg, field).CopyFrom(_MAKERS[kind](value))
