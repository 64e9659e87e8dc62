"""Request metadata of ttRPC: multi-valued string pairs with lowercased keys."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

__all__ = ["Metadata"]


class Metadata:
    """The ``metadata`` of a ttRPC request: each key maps to one or more string values.

    Keys are lowercased on every access, as containerd/ttrpc's ``MD`` does in its
    ``Get``/``Set``/``Append``; received keys are lowercased too (Go keeps them as sent,
    where its lowercasing lookups could never reach a mixed-case one). Values keep their
    order; :meth:`items` gives the flat (key, value) pairs written to the wire::

        >>> from nri.ttrpc import Metadata
        >>> md = Metadata({"X-Tag": "a"})
        >>> md.append("x-TAG", "b")
        >>> md.get("x-tag"), md.get_all("X-Tag"), list(md.items())
        ('a', ['a', 'b'], [('x-tag', 'a'), ('x-tag', 'b')])
    """

    __slots__ = ("_data",)

    def __init__(
        self,
        initial: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Start empty, from a mapping (a value may be a list) or from (key, value) pairs."""
        self._data: dict[str, list[str]] = {}
        if initial is None:
            return
        if isinstance(initial, Mapping):
            for key, value in initial.items():
                if isinstance(value, str):
                    self.append(key, value)
                else:
                    self.append(key, *value)
        else:
            for key, value in initial:
                self.append(key, value)

    def get(self, key: str) -> str | None:
        """The first value of ``key``, or None."""
        values = self._data.get(key.lower())
        return values[0] if values else None

    def get_all(self, key: str) -> list[str]:
        """All values of ``key`` in order (a new list; empty if absent)."""
        return list(self._data.get(key.lower(), ()))

    def set(self, key: str, *values: str) -> None:
        """Replace the values of ``key`` (no values: remove it)."""
        key = key.lower()
        if values:
            self._data[key] = list(values)
        else:
            self._data.pop(key, None)

    def append(self, key: str, *values: str) -> None:
        """Add ``values`` after those ``key`` already has."""
        if values:
            self._data.setdefault(key.lower(), []).extend(values)

    def delete(self, key: str) -> None:
        """Remove ``key`` and its values, if present."""
        self._data.pop(key.lower(), None)

    def keys(self) -> list[str]:
        """The keys, in the order they were first added."""
        return list(self._data)

    def items(self) -> Iterator[tuple[str, str]]:
        """Every (key, value) pair, as sent on the wire."""
        for key, values in self._data.items():
            for value in values:
                yield key, value

    def copy(self) -> Metadata:
        """An independent copy."""
        new = Metadata()
        new._data = {key: list(values) for key, values in self._data.items()}
        return new

    def __iter__(self) -> Iterator[str]:
        """Iterate over the keys."""
        return iter(list(self._data))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metadata):
            return NotImplemented
        return self._data == other._data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Metadata({self._data!r})"
