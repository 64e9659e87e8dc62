"""NRI messages as plain data and YAML, and the differences between two such snapshots."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from nri.api import message_to_data

to_data = message_to_data
"""A message as nested dicts/lists (see :func:`nri.api.message_to_data`)."""


def to_yaml(data: Any) -> str:
    """YAML text of plain data, keys sorted."""
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed leaf: ``kind`` is ``create``, ``update`` or ``delete`` (as upstream)."""

    kind: str
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: From: {_show(self.old)} -> To: {_show(self.new)}"


def _show(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


_MISSING = object()


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """The leaves that differ between two snapshots, with dotted/indexed paths."""
    return list(_changes(old, new, path))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _changes(old: Any, new: Any, path: str) -> Iterator[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _changes(old.get(key, _MISSING), new.get(key, _MISSING), _join(path, key))
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            yield from _changes(
                old[i] if i < len(old) else _MISSING,
                new[i] if i < len(new) else _MISSING,
                f"{path}[{i}]",
            )
    elif old is _MISSING:
        for leaf, value in _leaves(new, path):
            yield FieldChange("create", leaf, None, value)
    elif new is _MISSING:
        for leaf, value in _leaves(old, path):
            yield FieldChange("delete", leaf, value, None)
    elif old != new:
        yield FieldChange("update", path, old, new)


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _leaves(value[key], _join(path, key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def yaml_diff(old: Any, new: Any, old_label: str, new_label: str) -> list[str]:
    """A unified diff of the YAML of two snapshots; empty when they are equal."""
    return list(
        difflib.unified_diff(
            to_yaml(old).splitlines(),
            to_yaml(new).splitlines(),
            fromfile=old_label,
            tofile=new_label,
            lineterm="",
            n=2,
        )
    )
