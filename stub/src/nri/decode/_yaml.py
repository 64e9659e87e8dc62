"""YAML loading with go.yaml.in/yaml/v2's scalar rules, built without recursion."""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from nri.decode._base import (
    ANNOTATION_MAX_BYTES,
    MAX_ALIAS_NODES,
    MAX_BYTES,
    MAX_DEPTH,
    DecodeError,
    checked_text,
    one_line,
)
from nri.decode._gofmt import go_float_string

try:
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL, _BINARY, _TIMESTAMP = (
    _TAG + name for name in ("str", "int", "float", "bool", "null", "binary", "timestamp")
)
_RESOLVABLE = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
_MERGE = object()  # the value of a plain "<<" key

_WORDS: dict[str, Any] = {}
for _value, _names in (
    (True, "y Y yes Yes YES true True TRUE on On ON"),
    (False, "n N no No NO false False FALSE off Off OFF"),
    (None, "~ null Null NULL"),
    (math.nan, ".nan .NaN .NAN"),
    (math.inf, ".inf .Inf .INF +.inf +.Inf +.INF"),
    (-math.inf, "-.inf -.Inf -.INF"),
):
    for _name in _names.split():
        _WORDS[_name] = _value
_WORDS[""] = None
_WORDS["<<"] = _MERGE

_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[bB](?P<bin>[01]+)|0[oO](?P<oct>[0-7]+)"
    r"|(?P<zoct>0[0-7]*)|(?P<dec>[1-9][0-9]*))"
)
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


def _go_parse_int(text: str) -> int | None:
    """Go's ``ParseInt(text, 0, 64)``, falling back to ``ParseUint`` (no sign) like yaml.v2."""
    m = _GO_INT.fullmatch(text)
    if m is None:
        return None
    for group, base in (("hex", 16), ("bin", 2), ("oct", 8), ("zoct", 8), ("dec", 10)):
        digits = m.group(group)
        if digits is not None:
            value = int(digits, base)
            break
    if m.group("sign") == "-":
        value = -value
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    if not m.group("sign") and value <= _UINT64_MAX:
        return value
    return None


def _float(text: str) -> float | None:
    value = float(text)
    return None if math.isinf(value) else value  # Go's ParseFloat fails on overflow


def _resolve_plain(text: str) -> Any:
    if text in _WORDS:
        return _WORDS[text]
    first = text[0]
    if first == ".":
        return _float(text) if _DOT_FLOAT.fullmatch(text) else text
    if first in "+-0123456789":
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT.fullmatch(plain):
            value = _float(plain)
            if value is not None:
                return value
    return text


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _kind_tag(value: Any) -> str:
    if value is None:
        return "!!null"
    if isinstance(value, bool):
        return "!!bool"
    if isinstance(value, int):
        return "!!int"
    if isinstance(value, float):
        return "!!float"
    return "!!str"


def _resolve_scalar(event: Any) -> Any:
    text: str = event.value
    tag: str | None = event.tag
    if tag is None or tag == "!":
        if tag is None and event.implicit[0]:
            return _resolve_plain(text)
        return text
    if tag == _BINARY:
        try:
            data = text.replace("\r", "").replace("\n", "")  # all Go's decoder skips
            return base64.b64decode(data, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise ValueError(f"!!binary value is not base64: {text[:40]!r}") from None
    if tag not in _RESOLVABLE or tag in (_STR, _TIMESTAMP):
        return text
    value = _resolve_plain(text)
    want = _short_tag(tag)
    if value is _MERGE:
        value = text
    got = _kind_tag(value)
    if got == want:
        return value
    if want == "!!float" and got == "!!int":
        return float(value)
    raise ValueError(f"cannot decode {got} `{text[:40]}` as a {want}")


def _key(value: Any) -> str:
    """A mapping key as sigs.k8s.io/yaml writes it into JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return str(value)
        raise ValueError(f"unsupported map key {value} (out of int64 range)")
    if isinstance(value, float):
        text = go_float_string(value)
        return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
    if value is None:
        raise ValueError("unsupported map key null")
    raise ValueError("unsupported map key (a collection)")


@dataclass
class _Frame:
    value: list[Any] | dict[str, Any]
    anchor: str | None
    nodes: int = 1  # expanded node count of this collection
    height: int = 1  # expanded nesting height
    key: Any = None
    has_key: bool = False


@dataclass
class _Anchor:
    value: Any
    nodes: int
    height: int


@dataclass
class _YamlBuilder:
    source: str
    max_depth: int
    max_alias_nodes: int
    stack: list[_Frame] = field(default_factory=list)
    anchors: dict[str, _Anchor | None] = field(default_factory=dict)
    alias_nodes: int = 0
    result: Any = None
    done: bool = False

    def add(self, value: Any, nodes: int, height: int, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = _Anchor(value, nodes, height)
        if not self.stack:
            self.result, self.done = ("<<" if value is _MERGE else value), True
            return
        top = self.stack[-1]
        top.nodes += nodes
        top.height = max(top.height, height + 1)
        if value is _MERGE and (top.has_key or isinstance(top.value, list)):
            value = "<<"  # only a key "<<" merges
        if isinstance(top.value, list):
            top.value.append(value)
        elif not top.has_key:
            if isinstance(value, (list, dict)):
                raise ValueError("unsupported map key (a collection)")
            top.key = value if value is _MERGE else _key(value)
            top.has_key = True
        else:
            self._set(top, value)
            top.has_key = False

    @staticmethod
    def _set(top: _Frame, value: Any) -> None:
        target = top.value
        assert isinstance(target, dict)
        if top.key is not _MERGE:
            target[top.key] = value
            return
        maps = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in maps):
            raise ValueError("map merge requires a map or a sequence of maps as the value")
        for item in reversed(maps):
            target.update(item)

    def open(self, value: list[Any] | dict[str, Any], event: Any) -> None:
        if len(self.stack) >= self.max_depth:
            raise ValueError(f"nesting deeper than {self.max_depth} levels")
        if event.anchor is not None:
            self.anchors[event.anchor] = None  # open: an alias to it is a cycle
        self.stack.append(_Frame(value, event.anchor))

    def close(self) -> None:
        frame = self.stack.pop()
        self.add(frame.value, frame.nodes, frame.height, frame.anchor)

    def alias(self, name: str) -> None:
        if name not in self.anchors:
            raise ValueError(f"unknown anchor {name!r} referenced")
        anchor = self.anchors[name]
        if anchor is None:
            raise ValueError(f"anchor {name!r} value contains itself")
        if len(self.stack) + anchor.height > self.max_depth:
            raise ValueError(f"nesting deeper than {self.max_depth} levels (through alias)")
        self.alias_nodes += anchor.nodes
        if self.alias_nodes > self.max_alias_nodes:
            raise ValueError(f"aliases expand to more than {self.max_alias_nodes} nodes")
        self.add(anchor.value, anchor.nodes, anchor.height, None)


def _yaml_error(source: str, exc: Exception, line: int | None, column: int | None) -> DecodeError:
    where = f"line {line + 1} column {(column or 0) + 1}: " if line is not None else ""
    return DecodeError(source, f"{where}{one_line(str(exc))}")


def load_yaml(
    text: str | bytes,
    *,
    source: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_alias_nodes: int = MAX_ALIAS_NODES,
) -> Any:
    """Decode the first YAML document of *text* within the bounds described in :mod:`nri.decode`.

    *source* names the input in errors (an annotation key, a file name).

    >>> load_yaml("soft: 1024.0\\nmode: 0o666\\non: yes\\n", source="example")
    {'soft': 1024.0, 'mode': 438, 'true': True}
    """
    data = checked_text(text, source, max_bytes)
    builder = _YamlBuilder(source, max_depth, max_alias_nodes)
    loader = _Loader(data)
    event: Any = None
    try:
        while not builder.done and loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.ScalarEvent):
                builder.add(_resolve_scalar(event), 1, 0, event.anchor)
            elif isinstance(event, yaml.SequenceStartEvent):
                builder.open([], event)
            elif isinstance(event, yaml.MappingStartEvent):
                builder.open({}, event)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                builder.close()
            elif isinstance(event, yaml.AliasEvent):
                builder.alias(str(event.anchor))
            elif isinstance(event, yaml.DocumentEndEvent):
                break
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, column = (mark.line, mark.column) if mark is not None else (None, None)
        raise _yaml_error(source, ValueError(problem), line, column) from None
    except yaml.reader.ReaderError as exc:
        problem = f"character {exc.position}: unacceptable character #x{exc.character:04x}"
        raise DecodeError(source, f"{problem} ({one_line(exc.reason)})") from None
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc, None, None) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        mark = getattr(event, "start_mark", None)
        line, column = (mark.line, mark.column) if mark is not None else (None, None)
        raise _yaml_error(source, exc, line, column) from None
    finally:
        loader.dispose()
    return builder.result


def load_annotation(key: str, value: str) -> Any:
    """:func:`load_yaml` for the value of the pod annotation *key*, within
    :data:`~nri.decode.ANNOTATION_MAX_BYTES`; errors name the key."""
    return load_yaml(value, source=key, max_bytes=ANNOTATION_MAX_BYTES)
