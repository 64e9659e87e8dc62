"""Field readers shared by the parts of a rules file.

Each reader returns the value checked (and converted) or raises ``_Problem``: the field path
inside the rule and what is wrong, turned into a one-line RulesError by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from nri.decode import describe

_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "E": 1000**6,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
    "Pi": 1 << 50,
    "Ei": 1 << 60,
}
_QUANTITY = re.compile(r"([0-9]+)(|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64 = (0, (1 << 64) - 1)


class _Problem(ValueError):
    """A problem at a field path inside one rule (turned into a RulesError)."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def _mapping(value: Any, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Problem(where, f"expected a mapping ({what}), got {describe(value)}")
    return value


def _list(value: Any, where: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Problem(where, f"expected a list ({what}), got {describe(value)}")
    return value


def _check_keys(value: dict[str, Any], where: str, known: Sequence[str]) -> None:
    unknown = [k for k in value if k not in known]
    if unknown:
        raise _Problem(where, f"unknown key {unknown[0]!r} (known: {', '.join(known)})")


def _string(value: Any, where: str, *, numbers: bool = False, empty: bool = True) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and numbers:
        return str(value)
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, bool | int | float) else ""
        raise _Problem(where, f"expected a string, got {describe(value)}{hint}")
    if not empty and not value:
        raise _Problem(where, "must not be empty")
    return value


def _integer(value: Any, where: str, bounds: tuple[int, int] = _INT64) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(where, f"expected an integer, got {describe(value)}")
    low, high = bounds
    if not low <= value <= high:
        raise _Problem(where, f"must be between {low} and {high}, got {value}")
    return value


def _bytes(value: Any, where: str, bounds: tuple[int, int] = _INT64) -> int:
    """An integer number of bytes, or a quantity such as ``512Mi`` or ``1G``."""
    if isinstance(value, str):
        found = _QUANTITY.fullmatch(value.strip())
        if found is None:
            raise _Problem(where, f"expected bytes or a quantity such as 512Mi, got {value!r}")
        value = int(found.group(1)) * _UNITS[found.group(2)]
    return _integer(value, where, bounds)


def _name(key: str, where: str) -> str:
    """A key NRI passes on by name (env, annotation, sysctl): not empty, no leading ``-``
    (NRI's removal marker), no ``=``."""
    if not key:
        raise _Problem(where, "empty name")
    if key.startswith("-") or "=" in key:
        raise _Problem(where, f"invalid name {key!r} (no leading '-', no '=')")
    return key


def _string_map(
    value: Any, where: str, what: str, *, numbers: bool = False, names: bool = True
) -> list[tuple[str, str]]:
    items = []
    for key, item in _mapping(value, where, what).items():
        if names:
            _name(key, f"{where}.{key}" if key else where)
        elif not key:
            raise _Problem(where, "empty key")
        items.append((key, _string(item, f"{where}.{key}", numbers=numbers)))
    return items


def _name_list(value: Any, where: str, what: str) -> list[str]:
    names = _string_list(value, where, what)
    return [_name(name, f"{where}[{i}]") for i, name in enumerate(names)]


def _string_list(value: Any, where: str, what: str) -> list[str]:
    items = _list(value, where, what)
    return [_string(item, f"{where}[{i}]", empty=False) for i, item in enumerate(items)]


def _absolute(path: str, where: str) -> str:
    if not path.startswith("/") or ".." in path.split("/"):
        raise _Problem(where, f"{path!r} must be an absolute path without '..'")
    return path


_ID_LIST = re.compile(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")


def _id_list(value: Any, where: str) -> str:
    """A list of CPU or NUMA node numbers and ranges, such as ``0-3,7``."""
    text = _string(value, where, numbers=True, empty=False)
    if not _ID_LIST.fullmatch(text):
        raise _Problem(where, f"expected a list such as 0-3,7, got {text!r}")
    return text
