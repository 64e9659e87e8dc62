"""Field ownership of container adjustments (upstream ``pkg/api/owners.go``).

The runtime records which plugin set which field of which container while it merges the
plugins' replies to one event. A field is either *simple* (one owner per container, for
example ``MemLimit``) or *compound* (one owner per key, for example ``Env`` per variable
name). A second plugin claiming an owned field is a conflict that fails the event. A
removal marker records the owner as ``"-<plugin>"``: the entry is free again, but only for
that same plugin. OCI hooks never conflict; their owner accumulates as ``"a,b,..."``.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterator

from nri.api import api_pb2 as pb

__all__ = [
    "COMPOUND_FIELDS",
    "AdjustmentError",
    "ConflictError",
    "FieldOwners",
    "field_name",
    "go_quote",
]


def _field(name: str) -> int:
    return pb.Field.Value(name)


#: Fields that are owned per key (annotation key, mount destination, env name, ...).
COMPOUND_FIELDS: frozenset[int] = frozenset(
    _field(name)
    for name in (
        "Annotations",
        "Mounts",
        "Devices",
        "CdiDevices",
        "Env",
        "HugepageLimits",
        "CgroupsUnified",
        "Rlimits",
        "Namespace",
        "Sysctl",
        "LinuxNetDevices",
    )
)

_OCI_HOOKS = _field("OciHooks")
_RDT_FIELDS = (_field("RdtClosID"), _field("RdtSchemata"), _field("RdtEnableMonitoring"))


def field_name(field: int) -> str:
    """Return the upstream name of a ``pb.Field`` value (``6`` -> ``"Env"``)."""
    try:
        return pb.Field.Name(field)
    except ValueError:
        return f"Field({field})"


def go_quote(text: str) -> str:
    """Quote ``text`` the way Go's ``%q`` verb does (double quotes, Go escapes)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x80 or (ch != " " and unicodedata.category(ch)[0] not in "CZ"):
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


class AdjustmentError(Exception):
    """A plugin's reply cannot be merged; the event fails with this error."""


class ConflictError(AdjustmentError):
    """Two plugins tried to set the same field; the message is upstream's text.

    Example: ``plugins "31-logger" and "30-logger" both tried to set Env FOO``. For simple
    fields upstream leaves a trailing space after the field name, kept here for parity.
    """

    def __init__(self, field: int, plugin: str, other: str, key: str | None = None) -> None:
        self.field = field
        self.plugin = plugin
        self.other = other
        self.key = key
        what = field_name(field) + " " + ("" if key is None else key)
        super().__init__(
            f"plugins {go_quote(plugin)} and {go_quote(other)} both tried to set {what}"
        )


class _ContainerOwners:
    """Owners of one container's fields (upstream ``FieldOwners``)."""

    __slots__ = ("compound", "simple")

    def __init__(self) -> None:
        self.simple: dict[int, str] = {}
        self.compound: dict[int, dict[str, str]] = {}


def _check_key(field: int, key: str | None) -> None:
    if field in COMPOUND_FIELDS:
        if key is None:
            raise ValueError(f"field {field_name(field)} is owned per key, but no key was given")
    elif key is not None:
        raise ValueError(f"field {field_name(field)} is a simple field, but key {key!r} was given")


def _free_for(owner: str, plugin: str) -> str | None:
    """Return the conflicting owner, or None if ``plugin`` may take the field."""
    if owner.startswith("-"):
        clearer = owner[1:]
        return None if clearer == plugin else clearer
    return owner


class FieldOwners:
    """Ownership of container fields, per container ID (upstream ``OwningPlugins``).

    ``field`` arguments are ``pb.Field`` values; compound fields need a ``key``.
    """

    def __init__(self) -> None:
        self._owners: dict[str, _ContainerOwners] = {}

    def _for(self, container_id: str) -> _ContainerOwners:
        owners = self._owners.get(container_id)
        if owners is None:
            owners = self._owners[container_id] = _ContainerOwners()
        return owners

    def claim(self, container_id: str, field: int, plugin: str, key: str | None = None) -> None:
        """Record ``plugin`` as the owner; raise ConflictError if another plugin owns it.

        Claiming ``OciHooks`` never conflicts: the owners accumulate as ``"a,b"``. Note
        that, as upstream, a plugin claiming the same entry twice conflicts with itself.
        """
        # This runs for every claimed entry of every reply: the checks of _check_key and
        # _for are inlined.
        if (field in COMPOUND_FIELDS) is (key is None):
            _check_key(field, key)
        owners = self._owners.get(container_id)
        if key is None:
            if field == _OCI_HOOKS:
                self.accumulate(container_id, field, plugin)
                return
            if owners is None:
                owners = self._owners[container_id] = _ContainerOwners()
            current = owners.simple.get(field)
            if current is not None and (other := _free_for(current, plugin)) is not None:
                raise ConflictError(field, plugin, other)
            owners.simple[field] = plugin
            return
        if owners is None:
            owners = self._owners[container_id] = _ContainerOwners()
        entries = owners.compound.get(field)
        if entries is None:
            entries = owners.compound[field] = {}
        current = entries.get(key)
        if current is not None and (other := _free_for(current, plugin)) is not None:
            raise ConflictError(field, plugin, other, key)
        entries[key] = plugin

    def accumulate(self, container_id: str, field: int, plugin: str) -> None:
        """Add ``plugin`` to the owners of a simple field without conflict checks."""
        _check_key(field, None)
        owners = self._for(container_id)
        current = owners.simple.get(field)
        owners.simple[field] = plugin if current is None else current + "," + plugin

    def clear(self, container_id: str, field: int, plugin: str, key: str | None = None) -> None:
        """Mark the field (or key) removed by ``plugin``: only it may set it again."""
        _check_key(field, key)
        owners = self._for(container_id)
        if key is None:
            owners.simple[field] = "-" + plugin
        else:
            owners.compound.setdefault(field, {})[key] = "-" + plugin

    def clear_rdt(self, container_id: str, plugin: str) -> None:
        """Mark all RDT fields removed by ``plugin`` (upstream ``ClearRdt``)."""
        for field in _RDT_FIELDS:
            self.clear(container_id, field, plugin)

    def owner(self, container_id: str, field: int, key: str | None = None) -> str | None:
        """Return the recorded owner (possibly ``"-plugin"`` or ``"a,b"``) or None."""
        _check_key(field, key)
        owners = self._owners.get(container_id)
        if owners is None:
            return None
        if key is None:
            return owners.simple.get(field)
        return owners.compound.get(field, {}).get(key)

    def compound_owners(self, container_id: str, field: int) -> dict[str, str] | None:
        """Return a copy of the per-key owners of a compound field, None if never claimed."""
        owners = self._owners.get(container_id)
        if owners is None or field not in owners.compound:
            return None
        return dict(owners.compound[field])

    def container_ids(self) -> Iterator[str]:
        """Iterate over the IDs of containers with recorded owners."""
        return iter(list(self._owners))

    def snapshot(self, container_id: str) -> _ContainerOwners | None:
        """Return an opaque copy of one container's owners for :meth:`restore`."""
        owners = self._owners.get(container_id)
        return None if owners is None else copy.deepcopy(owners)

    def restore(self, container_id: str, snapshot: _ContainerOwners | None) -> None:
        """Put back one container's owners as :meth:`snapshot` saw them."""
        if snapshot is None:
            self._owners.pop(container_id, None)
        else:
            self._owners[container_id] = snapshot

    def to_proto(self) -> pb.OwningPlugins:
        """Return the owners as the ``OwningPlugins`` message validators receive."""
        msg = pb.OwningPlugins()
        for container_id, owners in self._owners.items():
            entry = msg.owners[container_id]
            entry.SetInParent()
            for field, plugin in owners.simple.items():
                entry.simple[field] = plugin
            for field, keys in owners.compound.items():
                compound = entry.compound[field]
                compound.SetInParent()
                for key, plugin in keys.items():
                    compound.owners[key] = plugin
        return msg

    @classmethod
    def from_proto(cls, msg: pb.OwningPlugins) -> FieldOwners:
        """Build owners from an ``OwningPlugins`` message (for validators)."""
        result = cls()
        for container_id, entry in msg.owners.items():
            owners = result._for(container_id)
            owners.simple.update(entry.simple.items())
            for field, compound in entry.compound.items():
                owners.compound[field] = dict(compound.owners.items())
        return result
