"""The mock runtime's history: one record per event, with which plugin changed what."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from typing import Any

from nri.adaptation import field_name
from nri.api import api_pb2 as pb

__all__ = ["EventRecord", "FieldChange", "changes_of", "owner_table"]


@dataclasses.dataclass
class FieldChange:
    """One field of one container that a plugin set (or removed, ``removed``)."""

    container_id: str
    field: str
    """Upstream's field name (``pb.Field``): ``Env``, ``Mounts``, ``CPUSetCPUs``, ..."""
    key: str | None
    """The entry of a per-key field: env name, mount destination, annotation key, ..."""
    plugin: str
    removed: bool = False

    def to_data(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EventRecord:
    """What happened at one event: who changed what, spec diffs, evictions, errors."""

    event: str
    pod_id: str | None = None
    container_id: str | None = None
    changes: list[FieldChange] = dataclasses.field(default_factory=list)
    specs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = dataclasses.field(
        default_factory=dict
    )
    """Container ID -> (spec before, spec after), for every container whose spec changed."""
    evicted: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(container ID, reason) of containers evicted at a plugin's request."""
    ignored_evictions: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(container ID, reason) of evictions plugins asked for and the runtime ignored, as
    containerd and CRI-O do (unless :attr:`MockRuntime.act_on_evictions`)."""
    error: str | None = None
    failed_updates: list[str] = dataclasses.field(default_factory=list)
    """IDs of containers whose update failed (unknown or removed containers)."""
    plugin: str | None = None
    """The plugin concerned (``NN-name``): who left, for ``PluginClosed``."""

    def to_data(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "event": self.event,
            "plugin": self.plugin,
            "pod_id": self.pod_id,
            "container_id": self.container_id,
            "changes": [c.to_data() for c in self.changes],
            "specs": {cid: {"before": b, "after": a} for cid, (b, a) in self.specs.items()},
            "evicted": [{"container_id": c, "reason": r} for c, r in self.evicted],
            "ignored_evictions": [
                {"container_id": c, "reason": r} for c, r in self.ignored_evictions
            ],
            "failed_updates": list(self.failed_updates),
            "error": self.error,
        }

    def note_spec(self, cid: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Record that the event changed container ``cid``'s spec (the first before is kept)."""
        if before == after:
            return
        first = self.specs.get(cid, (before, after))[0]
        self.specs[cid] = (first, copy.deepcopy(after))


def changes_of(owners: pb.OwningPlugins) -> list[FieldChange]:
    """The field changes the adaptation's merge result says plugins made."""
    out: list[FieldChange] = []
    for cid, entry in owners.owners.items():
        for field, plugin in sorted(entry.simple.items()):
            out.append(_change(cid, field, None, plugin))
        for field, compound in sorted(entry.compound.items()):
            for key, plugin in sorted(compound.owners.items()):
                out.append(_change(cid, field, key, plugin))
    return out


def _change(cid: str, field: int, key: str | None, plugin: str) -> FieldChange:
    removed = plugin.startswith("-")
    return FieldChange(cid, field_name(field), key, plugin.lstrip("-"), removed)


def owner_table(changes: Iterable[FieldChange]) -> dict[str, str]:
    """``Field`` or ``Field:key`` -> the plugin that set it (``-plugin``: removed it)."""
    return {
        (c.field if c.key is None else f"{c.field}:{c.key}"): ("-" if c.removed else "") + c.plugin
        for c in changes
    }
