"""Render NRI messages as readable YAML, the way upstream's logger dumps them."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import yaml
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def to_data(value: Any) -> Any:
    """Turn a message (or a list of them) into plain YAML-able data.

    Only fields that are set appear (as upstream's ``omitempty`` JSON), under their proto
    names; enums show by name and 64-bit integers stay numbers.
    """
    if isinstance(value, Message):
        return {field.name: _field(field, item) for field, item in value.ListFields()}
    if isinstance(value, list | tuple):
        return [to_data(item) for item in value]
    return value


def _field(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        return {key: _scalar(value_field, item) for key, item in sorted(value.items())}
    if field.is_repeated:
        return [_scalar(field, item) for item in value]
    return _scalar(field, value)


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if isinstance(value, Message):
        return to_data(value)
    if field.enum_type is not None:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def to_yaml(value: Any) -> str:
    """YAML text of a message, list of messages or plain value (keys sorted)."""
    return yaml.safe_dump(to_data(value), sort_keys=True, default_flow_style=False)


def dump_lines(prefix: str, pairs: Iterable[tuple[str, Any]]) -> list[str]:
    """Lines of upstream's ``dump``: ``"<prefix>: <tag>:"`` then indented YAML lines."""
    lines: list[str] = []
    for tag, obj in pairs:
        lines.append(f"{prefix}: {tag}:")
        text = to_yaml(obj).strip()
        lines.extend(f"{prefix}:    {line}" for line in text.splitlines())
    return lines
