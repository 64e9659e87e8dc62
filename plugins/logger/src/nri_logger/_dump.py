"""Render NRI messages as readable YAML, the way upstream's logger dumps them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from nri.api import message_to_data

to_data = message_to_data
"""A message as plain YAML-able data (see :func:`nri.api.message_to_data`)."""


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
