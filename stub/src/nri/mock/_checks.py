"""Checks of scenario expectations: a value in an OCI spec, addressed by a JSON pointer."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CHECK_OPERATORS", "Check", "resolve_pointer"]

CHECK_OPERATORS: Final = ("equals", "contains", "matches", "absent")
"""How a check compares: exactly one per check."""


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of a value in an OCI spec, addressed by a JSON pointer."""

    path: str
    operator: str
    """One of :data:`CHECK_OPERATORS`."""
    expected: Any
    where: str = ""
    """Where the check is written in the scenario, e.g. ``steps[2].expect.spec[0]``."""

    def describe(self) -> str:
        """The check in words, e.g. ``/process/env contains "FOO=bar"``."""
        if self.operator == "absent":
            return f"{self.path} is {'absent' if self.expected else 'present'}"
        return f"{self.path} {self.operator} {_show(self.expected)}"

    def failure(self, document: Any) -> str | None:
        """Why ``document`` fails the check, or None if it passes."""
        found, actual = resolve_pointer(document, self.path)
        if self.operator == "absent":
            if found != self.expected:
                return None
            return f"it is {_show(actual)}" if found else "it is missing"
        if not found:
            return "it is missing"
        if self.operator == "equals":
            ok = _same(actual, self.expected)
        elif self.operator == "matches":
            if not isinstance(actual, str):
                return f"it is not a string but {_show(actual)}"
            ok = re.search(self.expected, actual) is not None
        else:
            ok = _contains(actual, self.expected)
        return None if ok else f"it is {_show(actual)}"


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """``(True, value)`` at a JSON pointer in ``document``, ``(False, None)`` if nothing is
    (or ``pointer`` is not one: neither empty nor starting with ``/``)."""
    if pointer and not pointer.startswith("/"):
        return False, None
    value = document
    for escaped in pointer.split("/")[1:]:
        token = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return False, None
    return True, value


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list):
        return any(_same(item, expected) or _subset(expected, item) for item in actual)
    return _subset(expected, actual)


def _subset(part: Any, whole: Any) -> bool:
    if not isinstance(part, Mapping) or not isinstance(whole, Mapping):
        return False
    return all(key in whole and _same(whole[key], value) for key, value in part.items())


def _show(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
