"""Plugin name and index rules (upstream ``pkg/api/plugin.go``).

A plugin index is exactly two ASCII digits, a plugin name is non-empty and uses only
``[a-zA-Z0-9_.+-]``, and the full name is ``idx + "-" + name``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "InvalidPluginIndexError",
    "InvalidPluginNameError",
    "full_name",
    "parse_plugin_name",
    "validate_plugin_index",
    "validate_plugin_name",
]

_NAME_CHAR: Final = re.compile(r"[A-Za-z0-9_.+\-]")
_DIGITS: Final = frozenset("0123456789")


class InvalidPluginNameError(ValueError):
    """A plugin name (or full ``NN-name``) breaks the naming rules."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        super().__init__(f"invalid plugin name {name!r}: {detail}")


class InvalidPluginIndexError(ValueError):
    """A plugin index is not exactly two ASCII digits."""

    def __init__(self, idx: str) -> None:
        self.idx = idx
        super().__init__(f"invalid plugin index {idx!r}: must be exactly 2 digits [0-9][0-9]")


def validate_plugin_index(idx: str) -> str:
    """Return ``idx`` if it is exactly two ASCII digits, else raise InvalidPluginIndexError."""
    if not isinstance(idx, str):
        raise TypeError(f"plugin index must be a str, not {type(idx).__name__}")
    if len(idx) != 2 or not set(idx) <= _DIGITS:
        raise InvalidPluginIndexError(idx)
    return idx


def validate_plugin_name(name: str) -> str:
    """Return ``name`` if it is non-empty and only uses ``[a-zA-Z0-9_.+-]``."""
    if not isinstance(name, str):
        raise TypeError(f"plugin name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidPluginNameError(name, "name is empty")
    for ch in name:
        if not _NAME_CHAR.fullmatch(ch):
            raise InvalidPluginNameError(name, f"contains invalid character {ch!r}")
    return name


def parse_plugin_name(full: str, *, check_name: bool = True) -> tuple[str, str]:
    """Split ``"NN-name"`` at the first ``-`` into ``(idx, name)`` and validate both parts.

    With ``check_name=False`` only the index is checked, exactly like upstream
    ``ParsePluginName`` (so ``"10-"`` gives ``("10", "")``).
    """
    idx, sep, name = full.partition("-")
    if not sep:
        raise InvalidPluginNameError(full, "idx-pluginname expected")
    validate_plugin_index(idx)
    if check_name:
        validate_plugin_name(name)
    return idx, name


def full_name(idx: str, name: str) -> str:
    """Return the validated full plugin name ``idx-name``."""
    return f"{validate_plugin_index(idx)}-{validate_plugin_name(name)}"
