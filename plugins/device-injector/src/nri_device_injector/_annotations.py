"""Find and parse the device-injector's pod annotations (upstream's keys, syntax, precedence).

Every kind of injection has a key prefix in the current ``noderesource.dev`` domain and one
in the deprecated ``nri.io`` domain. For a container ``NAME`` the first present key of

1. ``<kind>.noderesource.dev/container.NAME``
2. ``<kind>.nri.io/container.NAME``
3. ``<kind>.noderesource.dev/pod``
4. ``<kind>.nri.io/pod``
5. ``<kind>.noderesource.dev``
6. ``<kind>.nri.io``

is used and all others are ignored (even when the chosen one is empty). Values are YAML and
are read the way upstream's ``sigs.k8s.io/yaml`` reads them into Go structs: field names match
case-insensitively, unknown fields are ignored, ``null`` means "not given", and a value of the
wrong type is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from nri.api import pb

__all__ = [
    "CDI_DEVICES",
    "DEVICES",
    "DEVICE_TYPES",
    "IO_PRIORITY",
    "IO_PRIORITY_CLASSES",
    "KINDS",
    "MOUNTS",
    "NEW_DOMAIN",
    "OLD_DOMAIN",
    "AnnotationError",
    "DeviceEntry",
    "IOPriorityEntry",
    "MountEntry",
    "UdevMatch",
    "annotation_keys",
    "find_annotation",
    "parse_cdi_devices",
    "parse_devices",
    "parse_io_priority",
    "parse_mounts",
]

log = logging.getLogger("nri.device_injector")

DEVICES = "devices"
MOUNTS = "mounts"
CDI_DEVICES = "cdi-devices"
IO_PRIORITY = "io-priority"
KINDS: tuple[str, ...] = (DEVICES, CDI_DEVICES, MOUNTS, IO_PRIORITY)
"""Annotation kinds, in the order upstream applies them."""

NEW_DOMAIN = "noderesource.dev"
OLD_DOMAIN = "nri.io"

DEVICE_TYPES = frozenset({"c", "b", "u", "p"})
"""OCI device types: character, block, unbuffered character, FIFO."""

IO_PRIORITY_CLASSES: Mapping[str, int] = {
    "IOPRIO_CLASS_NONE": pb.IOPRIO_CLASS_NONE,
    "IOPRIO_CLASS_RT": pb.IOPRIO_CLASS_RT,
    "IOPRIO_CLASS_BE": pb.IOPRIO_CLASS_BE,
    "IOPRIO_CLASS_IDLE": pb.IOPRIO_CLASS_IDLE,
}

_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT32 = (-(1 << 31), (1 << 31) - 1)
_UINT32 = (0, (1 << 32) - 1)


class AnnotationError(ValueError):
    """An annotation value is invalid; the message names the key, the entry and the problem."""

    def __init__(self, key: str, problem: str, entry: int | None = None) -> None:
        self.key = key
        self.problem = problem
        self.entry = entry
        where = f"annotation {key!r}" + (f", entry #{entry}" if entry is not None else "")
        super().__init__(f"{where}: {problem}")


def annotation_keys(kind: str, container: str) -> tuple[str, ...]:
    """The keys looked up for ``kind`` and ``container``, most specific first."""
    new, old = f"{kind}.{NEW_DOMAIN}", f"{kind}.{OLD_DOMAIN}"
    return (
        f"{new}/container.{container}",
        f"{old}/container.{container}",
        f"{new}/pod",
        f"{old}/pod",
        new,
        old,
    )


def find_annotation(
    annotations: Mapping[str, str], kind: str, container: str
) -> tuple[str, str] | None:
    """Return ``(key, value)`` of the effective annotation of ``kind``, or None."""
    for key in annotation_keys(kind, container):
        if key in annotations:
            return key, annotations[key]
    return None


@dataclass(frozen=True, slots=True)
class UdevMatch:
    """Host devices to look up through udev (sysfs): every given criterion must match."""

    subsystem: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """A short human-readable form for logs and errors."""
        parts = []
        if self.subsystem is not None:
            parts.append(f"subsystem={self.subsystem}")
        parts += [f"property {k}={v}" for k, v in self.properties.items()]
        parts += [f"attribute {k}={v}" for k, v in self.attributes.items()]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One entry of a device annotation.

    Upstream's form gives ``path``, ``type``, ``major`` and ``minor`` (``file_mode``, ``uid``
    and ``gid`` optional). Beyond upstream, an entry with only ``path`` (and optionally
    ``host_path``) is looked up on the host, and an entry with ``match`` expands to every
    matching host device node.
    """

    index: int
    path: str | None = None
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    host_path: str | None = None
    match: UdevMatch | None = None

    @property
    def is_explicit(self) -> bool:
        """Whether the entry describes the device itself (upstream's form)."""
        return self.match is None and self.host_path is None and self.type is not None

    def describe(self) -> str:
        """A short human-readable form for logs and errors."""
        if self.match is not None:
            return f"match ({self.match.describe()})"
        if self.host_path is not None:
            return f"{self.path} (host {self.host_path})"
        return str(self.path)


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One entry of a mount annotation."""

    destination: str
    source: str = ""
    type: str = ""
    options: tuple[str, ...] = ()

    def to_message(self) -> pb.Mount:
        """The NRI Mount for this entry."""
        return pb.Mount(
            destination=self.destination,
            source=self.source,
            type=self.type,
            options=list(self.options),
        )


@dataclass(frozen=True, slots=True)
class IOPriorityEntry:
    """The I/O priority annotation: a class name and a priority level."""

    io_class: str = ""
    priority: int = 0

    def to_message(self) -> pb.LinuxIOPriority | None:
        """The NRI LinuxIOPriority, or None for an unknown class (upstream ignores those)."""
        value = IO_PRIORITY_CLASSES.get(self.io_class)
        if value is None:
            return None
        message = pb.LinuxIOPriority(priority=self.priority)
        setattr(message, "class", value)  # "class" is a Python keyword
        return message


# -- YAML reading with Go json semantics ---------------------------------------------------


def _load(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnnotationError(key, f"invalid YAML: {' '.join(str(exc).split())}") from exc


def _load_list(key: str, text: str, what: str) -> list[Any]:
    document = _load(key, text)
    if document is None:
        return []
    if not isinstance(document, list):
        raise AnnotationError(key, f"expected a YAML list of {what}, got {_kind(document)}")
    return document


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Fields:
    """The fields of one YAML mapping, matched case-insensitively like Go's encoding/json."""

    def __init__(self, key: str, index: int | None, value: Any, what: str) -> None:
        self.key = key
        self.index = index
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping ({what}), got {_kind(value)}")
        self.values = {str(k).lower(): v for k, v in value.items()}
        self.original = {str(k).lower(): str(k) for k in value}

    def error(self, problem: str) -> AnnotationError:
        return AnnotationError(self.key, problem, self.index)

    def unknown(self, known: set[str]) -> list[str]:
        return [self.original[k] for k in self.values if k not in known]

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"field {name!r} must be a string, got {_kind(value)}")
        return value

    def integer(self, name: str, bounds: tuple[int, int], what: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"field {name!r} must be an integer, got {_kind(value)}")
        low, high = bounds
        if not low <= value <= high:
            raise self.error(f"field {name!r} is out of range for {what}: {value}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(f"field {name!r} must be a list of strings, got {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"field {name!r} item {i} must be a string, got {_kind(item)}")
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.values.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"field {name!r} must be a mapping, got {_kind(value)}")
        result = {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.error(f"{name}.{k} must be a string (quote it in YAML), got {_kind(v)}")
            result[str(k)] = v
        return result


def _warn_unknown(fields: _Fields, known: set[str]) -> None:
    for name in fields.unknown(known):
        where = f"entry #{fields.index} of " if fields.index is not None else ""
        log.warning("ignoring unknown field %r in %sannotation %r", name, where, fields.key)


_DEVICE_FIELDS = {"path", "type", "major", "minor", "file_mode", "uid", "gid", "host_path", "match"}
_MATCH_FIELDS = {"subsystem", "properties", "attributes"}


def _parse_match(fields: _Fields) -> UdevMatch:
    inner = _Fields(fields.key, fields.index, fields.values["match"], "the udev match")
    unknown = inner.unknown(_MATCH_FIELDS)
    if unknown:
        raise fields.error(
            f"unknown field(s) in 'match': {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_MATCH_FIELDS))})"
        )
    match = UdevMatch(
        subsystem=inner.string("subsystem"),
        properties=inner.string_map("properties"),
        attributes=inner.string_map("attributes"),
    )
    if match.subsystem is None and not match.properties and not match.attributes:
        raise fields.error("'match' needs at least one of subsystem, properties, attributes")
    return match


def parse_devices(key: str, text: str) -> list[DeviceEntry]:
    """Parse a device annotation value; raise AnnotationError naming ``key`` and the entry."""
    entries = []
    for index, item in enumerate(_load_list(key, text, "devices")):
        fields = _Fields(key, index, item, "a device")
        _warn_unknown(fields, _DEVICE_FIELDS)
        entry = DeviceEntry(
            index=index,
            path=fields.string("path"),
            type=fields.string("type"),
            major=fields.integer("major", _INT64, "int64"),
            minor=fields.integer("minor", _INT64, "int64"),
            file_mode=fields.integer("file_mode", _UINT32, "uint32"),
            uid=fields.integer("uid", _UINT32, "uint32"),
            gid=fields.integer("gid", _UINT32, "uint32"),
            host_path=fields.string("host_path"),
            match=_parse_match(fields) if fields.values.get("match") is not None else None,
        )
        _check_device(fields, entry)
        entries.append(entry)
    return entries


def _check_device(fields: _Fields, entry: DeviceEntry) -> None:
    given = [n for n in ("type", "major", "minor") if getattr(entry, n) is not None]
    if entry.match is not None:
        clash = [n for n in ("path", "host_path", *given) if getattr(entry, n) is not None]
        if clash:
            raise fields.error(f"'match' cannot be combined with {', '.join(clash)}")
        return
    if not entry.path:
        raise fields.error("missing mandatory field 'path'")
    if entry.host_path is not None:
        if given:
            raise fields.error(f"'host_path' cannot be combined with {', '.join(given)}")
        if not entry.host_path:
            raise fields.error("field 'host_path' is empty")
        return
    if given:
        missing = [n for n in ("type", "major", "minor") if getattr(entry, n) is None]
        if missing:
            raise fields.error(f"missing mandatory field(s): {', '.join(missing)}")
        if entry.type not in DEVICE_TYPES:
            raise fields.error(f"invalid device type {entry.type!r} (expected one of c, b, u, p)")


_MOUNT_FIELDS = {"source", "destination", "type", "options"}


def parse_mounts(key: str, text: str) -> list[MountEntry]:
    """Parse a mount annotation value; ``destination`` is mandatory."""
    entries = []
    for index, item in enumerate(_load_list(key, text, "mounts")):
        fields = _Fields(key, index, item, "a mount")
        _warn_unknown(fields, _MOUNT_FIELDS)
        destination = fields.string("destination")
        if not destination:
            raise fields.error("missing mandatory field 'destination'")
        entries.append(
            MountEntry(
                destination=destination,
                source=fields.string("source") or "",
                type=fields.string("type") or "",
                options=fields.strings("options"),
            )
        )
    return entries


def parse_cdi_devices(key: str, text: str) -> list[str]:
    """Parse a CDI device annotation value: a list of fully qualified CDI device names."""
    names = []
    for index, item in enumerate(_load_list(key, text, "CDI device names")):
        if not isinstance(item, str):
            raise AnnotationError(key, f"expected a CDI device name, got {_kind(item)}", index)
        if not item:
            raise AnnotationError(key, "empty CDI device name", index)
        names.append(item)
    return names


def parse_io_priority(key: str, text: str) -> IOPriorityEntry:
    """Parse an I/O priority annotation value: ``{class: IOPRIO_CLASS_*, priority: N}``."""
    document = _load(key, text)
    if document is None:
        return IOPriorityEntry()
    fields = _Fields(key, None, document, "class and priority")
    _warn_unknown(fields, {"class", "priority"})
    return IOPriorityEntry(
        io_class=fields.string("class") or "",
        priority=fields.integer("priority", _INT32, "int32") or 0,
    )
