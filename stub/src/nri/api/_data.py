"""NRI messages as plain data (dicts, lists, scalars), for logging, YAML dumps and diffs."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = ["message_to_data"]


def message_to_data(value: Any) -> Any:
    """A message (or list of messages) as nested dicts and lists.

    Only set fields appear, under their proto names; map keys are sorted, enums show by name,
    64-bit integers stay numbers and bytes are base64 (as in protojson).
    """
    if isinstance(value, Message):
        return {field.name: _field(field, item) for field, item in value.ListFields()}
    if isinstance(value, list | tuple):
        return [message_to_data(item) for item in value]
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
        return message_to_data(value)
    if field.enum_type is not None:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
