"""Typed conversion of decoded values the way Go's ``encoding/json`` (after
``sigs.k8s.io/yaml`` for YAML) fills typed structs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nri.decode._base import DecodeError
from nri.decode._gofmt import format_float, go_float_string, json_literal
from nri.decode._json import JsonNumber, load_json
from nri.decode._yaml import load_yaml


class GoType:
    """A Go type that decoded values are converted to (the rules are in :mod:`nri.decode`)."""

    @property
    def name(self) -> str:
        """The Go spelling of the type, used in errors."""
        return "value"

    def zero(self) -> Any:
        """The Go zero value."""
        return None


@dataclass(frozen=True)
class Str(GoType):
    """A Go ``string``."""

    @property
    def name(self) -> str:
        return "string"

    def zero(self) -> Any:
        return ""


@dataclass(frozen=True)
class Bool(GoType):
    """A Go ``bool``."""

    @property
    def name(self) -> str:
        return "bool"

    def zero(self) -> Any:
        return False


@dataclass(frozen=True)
class Int(GoType):
    """A Go integer: ``Int(64)`` is ``int64``, ``Int(32, signed=False)`` is ``uint32``."""

    bits: int = 64
    signed: bool = True

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.bits}"

    def zero(self) -> Any:
        return 0


@dataclass(frozen=True)
class Float(GoType):
    """A Go ``float64`` (or ``float32``)."""

    bits: int = 64

    @property
    def name(self) -> str:
        return f"float{self.bits}"

    def zero(self) -> Any:
        return 0.0


@dataclass(frozen=True)
class Slice(GoType):
    """A Go slice ``[]elem``; ``null`` gives an empty list."""

    elem: GoType

    @property
    def name(self) -> str:
        return f"[]{self.elem.name}"

    def zero(self) -> Any:
        return []


@dataclass(frozen=True)
class Map(GoType):
    """A Go ``map[string]elem``."""

    elem: GoType

    @property
    def name(self) -> str:
        return f"map[string]{self.elem.name}"

    def zero(self) -> Any:
        return {}


@dataclass(frozen=True)
class Ptr(GoType):
    """A Go pointer ``*elem``: ``None`` when absent or ``null``."""

    elem: GoType

    @property
    def name(self) -> str:
        return f"*{self.elem.name}"


@dataclass(frozen=True)
class Raw(GoType):
    """A Go ``interface{}``/``json.RawMessage``: the value as decoded, unchanged."""

    @property
    def name(self) -> str:
        return "interface {}"


@dataclass(frozen=True)
class Struct(GoType):
    """A Go struct: *fields* maps each JSON field name to its type."""

    type_name: str
    fields: Mapping[str, GoType]

    @property
    def name(self) -> str:
        return self.type_name

    def zero(self) -> Any:
        return {key: kind.zero() for key, kind in self.fields.items()}

    def match(self, key: str) -> str | None:
        """The field a JSON key fills: exact match first, then case-insensitive."""
        if key in self.fields:
            return key
        folded = key.casefold()
        for name in self.fields:
            if name.casefold() == folded:
                return name
        return None


def describe(value: Any) -> str:
    """A decoded value in a few words for error messages.

    >>> describe(None), describe(True), describe(5), describe("x"), describe([]), describe({})
    ('null', 'boolean True', 'number 5', "string 'x'", 'a list', 'a mapping')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:60]!r}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def json_kind(value: Any) -> str:
    """The JSON kind of a decoded value as Go's errors name it (``number``, ``object``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass
class _Converter:
    source: str
    from_yaml: bool

    def fail(self, where: str, message: str) -> DecodeError:
        return DecodeError(self.source, f"{where}: {message}" if where else message)

    def mismatch(self, value: Any, kind: GoType, where: str) -> DecodeError:
        what = json_kind(value)
        if what == "number":
            what = f"number {self.literal(value)}"
        return self.fail(where, f"cannot unmarshal {what} into {kind.name}")

    def literal(self, value: float) -> str:
        if isinstance(value, JsonNumber):
            return value.literal
        if isinstance(value, int):
            return str(value)
        return json_literal(value)

    def convert(self, value: Any, kind: GoType, where: str) -> Any:
        if value is None:
            return kind.zero()
        if isinstance(value, float) and not math.isfinite(value) and not isinstance(kind, Str):
            raise self.unsupported(value, where)
        if isinstance(kind, Raw):
            self.check_finite(value, where)
            return value
        if isinstance(kind, Ptr):
            return self.convert(value, kind.elem, where)
        if isinstance(kind, Str):
            if isinstance(value, str):
                return value
            if self.from_yaml and isinstance(value, bool):
                return "true" if value else "false"
            if self.from_yaml and isinstance(value, int):
                return str(value)
            if self.from_yaml and isinstance(value, float):
                return go_float_string(value)
            raise self.mismatch(value, kind, where)
        if isinstance(kind, Bool):
            if isinstance(value, bool):
                return value
            raise self.mismatch(value, kind, where)
        if isinstance(kind, Int):
            return self.integer(value, kind, where)
        if isinstance(kind, Float):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(self.literal(value))
                if kind.bits == 32 and abs(number) > 3.4028234663852886e38:
                    raise self.mismatch(value, kind, where)
                return number
            raise self.mismatch(value, kind, where)
        if isinstance(kind, Slice):
            if not isinstance(value, list):
                raise self.mismatch(value, kind, where)
            return [self.convert(item, kind.elem, f"{where}[{i}]") for i, item in enumerate(value)]
        if isinstance(kind, Map):
            if not isinstance(value, dict):
                raise self.mismatch(value, kind, where)
            return {
                key: self.convert(item, kind.elem, f"{where}.{key}" if where else key)
                for key, item in self.ordered(value)
            }
        if isinstance(kind, Struct):
            if not isinstance(value, dict):
                raise self.mismatch(value, kind, where)
            result = kind.zero()
            for key, item in self.ordered(value):
                name = kind.match(key)
                if name is None:
                    self.check_finite(item, f"{where}.{key}" if where else key)
                    continue
                field_kind = kind.fields[name]
                if item is None and not isinstance(field_kind, (Ptr, Raw, Slice, Map)):
                    continue
                result[name] = self.convert(item, field_kind, f"{where}.{name}" if where else name)
            return result
        raise TypeError(f"unknown Go type {kind!r}")  # pragma: no cover

    def unsupported(self, value: float, where: str) -> DecodeError:
        # Go's JSON encoder refuses these before any field is decoded
        return self.fail(where, f"unsupported value {format_float(value, 'g', 64)}")

    def check_finite(self, value: Any, where: str) -> None:
        todo = [value]
        while todo:
            item = todo.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise self.unsupported(item, where)
            if isinstance(item, dict):
                todo.extend(item.values())
            elif isinstance(item, list):
                todo.extend(item)

    def ordered(self, value: dict[str, Any]) -> list[tuple[str, Any]]:
        # JSON from YAML is written with sorted keys; JSON text keeps its own order
        return sorted(value.items()) if self.from_yaml else list(value.items())

    def integer(self, value: Any, kind: Int, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.mismatch(value, kind, where)
        text = self.literal(value)
        match = re.fullmatch(r"-?[0-9]+" if kind.signed else r"[0-9]+", text)
        if match is None:
            raise self.mismatch(value, kind, where)
        number = int(text)
        low, high = (
            (-(1 << (kind.bits - 1)), (1 << (kind.bits - 1)) - 1)
            if kind.signed
            else (0, (1 << kind.bits) - 1)
        )
        if not low <= number <= high:
            raise self.mismatch(value, kind, where)
        return number


def from_yaml(value: Any, kind: GoType, *, source: str, where: str = "") -> Any:
    """Convert a :func:`load_yaml` value to *kind* as sigs.k8s.io/yaml + encoding/json would.

    >>> rlimit = Struct("rlimit", {"type": Str(), "soft": Int(64, signed=False)})
    >>> from_yaml({"Type": "nofile", "soft": 2e3}, rlimit, source="example")
    {'type': 'nofile', 'soft': 2000}
    """
    return _Converter(source, from_yaml=True).convert(value, kind, where)


def from_json(value: Any, kind: GoType, *, source: str, where: str = "") -> Any:
    """Convert a :func:`load_json` value to *kind* as Go's encoding/json would."""
    return _Converter(source, from_yaml=False).convert(value, kind, where)


def unmarshal_yaml(text: str | bytes, kind: GoType, *, source: str, **limits: int) -> Any:
    """:func:`load_yaml` then :func:`from_yaml`: upstream's ``yaml.Unmarshal(text, &v)``."""
    return from_yaml(load_yaml(text, source=source, **limits), kind, source=source)


def unmarshal_json(text: str | bytes, kind: GoType, *, source: str, **limits: int) -> Any:
    """:func:`load_json` then :func:`from_json`: upstream's ``json.Unmarshal(text, &v)``."""
    return from_json(load_json(text, source=source, **limits), kind, source=source)
