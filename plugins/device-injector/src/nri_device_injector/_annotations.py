"""Find and parse the device-injector's pod annotations (upstream's keys, syntax, precedence).

Every kind of injection has a key prefix in the current ``noderesource.dev`` domain and one
in the deprecated ``nri.io`` domain. For a container ``NAME`` the first present key of

1. ``<kind>.noderesource.dev/container.NAME``
2. ``<kind>.nri.io/container.NAME``
3. ``<kind>.noderesource.dev/pod``
4. ``<kind>.nri.io/pod``
5. ``<kind>.noderesource.dev``
6. ``<kind>.nri.io``

is used and all others are ignored (even when the chosen one is empty); ``sysctl`` has no
``nri.io`` keys. Values are YAML, decoded by :mod:`nri.decode` with upstream's Go typing
(field names match case-insensitively, unknown fields are ignored, ``2e3`` fills an integer,
``123`` fills a string) and bounded to :data:`nri.decode.ANNOTATION_MAX_BYTES`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nri.api import pb
from nri.decode import (
    DecodeError,
    GoType,
    Int,
    Map,
    Ptr,
    Raw,
    Slice,
    Str,
    Struct,
    describe,
    from_yaml,
    load_annotation,
)

__all__ = [
    "CDI_DEVICES",
    "DEVICES",
    "DEVICE_TYPES",
    "IO_PRIORITY",
    "IO_PRIORITY_CLASSES",
    "KINDS",
    "MEMORY_POLICY",
    "MOUNTS",
    "NET_DEVICES",
    "NEW_DOMAIN",
    "OLD_DOMAIN",
    "SCHEDULING_POLICY",
    "SYSCTL",
    "AnnotationError",
    "DeviceEntry",
    "IOPriorityEntry",
    "MemoryPolicyEntry",
    "MountEntry",
    "NetDeviceEntry",
    "SchedulerEntry",
    "UdevMatch",
    "annotation_keys",
    "find_annotation",
    "parse_cdi_devices",
    "parse_devices",
    "parse_io_priority",
    "parse_memory_policy",
    "parse_mounts",
    "parse_net_devices",
    "parse_scheduler",
    "parse_sysctl",
]

log = logging.getLogger("nri.device_injector")

DEVICES = "devices"
MOUNTS = "mounts"
CDI_DEVICES = "cdi-devices"
IO_PRIORITY = "io-priority"
SCHEDULING_POLICY = "scheduling-policy"
NET_DEVICES = "network-devices"
SYSCTL = "sysctl"
MEMORY_POLICY = "memory-policy"
KINDS: tuple[str, ...] = (
    DEVICES,
    CDI_DEVICES,
    MOUNTS,
    IO_PRIORITY,
    SCHEDULING_POLICY,
    NET_DEVICES,
    SYSCTL,
    MEMORY_POLICY,
)
"""Annotation kinds, in the order upstream applies them."""
NO_OLD_DOMAIN = frozenset({SYSCTL})
"""Kinds upstream reads only under the current domain."""

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
    keys = (
        f"{new}/container.{container}",
        f"{old}/container.{container}",
        f"{new}/pod",
        f"{old}/pod",
        new,
        old,
    )
    if kind in NO_OLD_DOMAIN:
        return tuple(key for key in keys if not key.startswith(old))
    return keys


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


@dataclass(frozen=True, slots=True)
class NetDeviceEntry:
    """One entry of a network-device annotation: host interface and name in the container."""

    host_if: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class SchedulerEntry:
    """The scheduling-policy annotation, as names; :meth:`to_message` maps them."""

    policy: str = ""
    nice: int = 0
    priority: int = 0
    flags: tuple[str, ...] = ()
    runtime: int = 0
    deadline: int = 0
    period: int = 0

    def unknown_names(self) -> list[str]:
        """Policy and flag names that are not defined (upstream maps them to 0)."""
        policies, flags = dict(pb.LinuxSchedulerPolicy.items()), dict(pb.LinuxSchedulerFlag.items())
        names = [] if self.policy in policies else [self.policy]
        return names + [f for f in self.flags if f not in flags]

    def to_message(self) -> pb.LinuxScheduler:
        """The NRI LinuxScheduler; an unknown name becomes value 0, as upstream does."""
        policies, flags = dict(pb.LinuxSchedulerPolicy.items()), dict(pb.LinuxSchedulerFlag.items())
        return pb.LinuxScheduler(
            policy=policies.get(self.policy, 0),  # type: ignore[arg-type]
            nice=self.nice,
            priority=self.priority,
            flags=[flags.get(f, 0) for f in self.flags],  # type: ignore[misc]
            runtime=self.runtime,
            deadline=self.deadline,
            period=self.period,
        )


@dataclass(frozen=True, slots=True)
class MemoryPolicyEntry:
    """The memory-policy annotation with its mode and flags checked."""

    mode: pb.MpolMode
    nodes: str = ""
    flags: tuple[pb.MpolFlag, ...] = ()


# -- decoding -------------------------------------------------------------------------------

_DEVICE = Struct(
    "device",
    {
        "path": Str(),
        "type": Ptr(Str()),
        "major": Ptr(Int(64)),
        "minor": Ptr(Int(64)),
        "file_mode": Ptr(Int(32, signed=False)),
        "uid": Ptr(Int(32, signed=False)),
        "gid": Ptr(Int(32, signed=False)),
        "host_path": Ptr(Str()),
        "match": Ptr(Raw()),
    },
)
_MATCH = Struct(
    "match",
    {"subsystem": Ptr(Str()), "properties": Map(Str()), "attributes": Map(Str())},
)
_MOUNT = Struct(
    "mount",
    {"source": Str(), "destination": Str(), "type": Str(), "options": Slice(Str())},
)
_IO_PRIORITY = Struct("ioPrio", {"class": Str(), "priority": Int(32)})
_NET_DEVICE = Struct("netDevice", {"hostIf": Str(), "name": Str()})
_SCHEDULER = Struct(
    "scheduler",
    {
        "policy": Str(),
        "nice": Int(32),
        "priority": Int(32),
        "flags": Slice(Str()),
        "runtime": Int(64, signed=False),
        "deadline": Int(64, signed=False),
        "period": Int(64, signed=False),
    },
)
_MEMORY_POLICY = Struct("memoryPolicy", {"mode": Str(), "nodes": Str(), "flags": Slice(Str())})


def _load(key: str, text: str) -> Any:
    try:
        return load_annotation(key, text)
    except DecodeError as exc:
        raise AnnotationError(key, f"invalid YAML: {exc.problem}") from None


def _convert(key: str, value: Any, kind: GoType, index: int | None = None) -> Any:
    try:
        return from_yaml(value, kind, source=key)
    except DecodeError as exc:
        raise AnnotationError(key, exc.problem, index) from None


def _load_list(key: str, text: str, what: str) -> list[Any]:
    document = _load(key, text)
    if document is None:
        return []
    if not isinstance(document, list):
        raise AnnotationError(key, f"expected a YAML list of {what}, got {describe(document)}")
    return document


def _entry(key: str, index: int | None, item: Any, kind: Struct, what: str) -> dict[str, Any]:
    """Decode one mapping into ``kind``, warning about unknown fields like upstream ignores."""
    if not isinstance(item, dict):
        raise AnnotationError(key, f"expected a mapping ({what}), got {describe(item)}", index)
    for name in item:
        if kind.match(name) is None:
            where = f"entry #{index} of " if index is not None else ""
            log.warning("ignoring unknown field %r in %sannotation %r", name, where, key)
    result: dict[str, Any] = _convert(key, item, kind, index)
    return result


def _check_path(key: str, index: int | None, name: str, path: str) -> None:
    """A container path must be absolute and without ``..`` (the OCI spec wants full paths)."""
    if not path.startswith("/"):
        raise AnnotationError(key, f"{name} {path!r} must be an absolute path", index)
    if ".." in path.split("/"):
        raise AnnotationError(key, f"{name} {path!r} must not contain '..'", index)


def _parse_match(key: str, index: int, raw: Any) -> UdevMatch:
    if not isinstance(raw, dict):
        raise AnnotationError(
            key, f"expected a mapping (the udev match), got {describe(raw)}", index
        )
    unknown = [str(name) for name in raw if _MATCH.match(name) is None]
    if unknown:
        raise AnnotationError(
            key,
            f"unknown field(s) in 'match': {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_MATCH.fields))})",
            index,
        )
    fields = _convert(key, raw, _MATCH, index)
    match = UdevMatch(
        subsystem=fields["subsystem"],
        properties=fields["properties"],
        attributes=fields["attributes"],
    )
    if match.subsystem is None and not match.properties and not match.attributes:
        raise AnnotationError(
            key, "'match' needs at least one of subsystem, properties, attributes", index
        )
    return match


def parse_devices(key: str, text: str) -> list[DeviceEntry]:
    """Parse a device annotation value; raise AnnotationError naming ``key`` and the entry."""
    entries = []
    for index, item in enumerate(_load_list(key, text, "devices")):
        fields = _entry(key, index, item, _DEVICE, "a device")
        raw_match = fields.pop("match")
        entry = DeviceEntry(
            index=index,
            path=fields["path"] or None,
            type=fields["type"],
            major=fields["major"],
            minor=fields["minor"],
            file_mode=fields["file_mode"],
            uid=fields["uid"],
            gid=fields["gid"],
            host_path=fields["host_path"],
            match=_parse_match(key, index, raw_match) if raw_match is not None else None,
        )
        _check_device(key, entry)
        entries.append(entry)
    return entries


def _check_device(key: str, entry: DeviceEntry) -> None:
    index = entry.index
    given = [n for n in ("type", "major", "minor") if getattr(entry, n) is not None]
    if entry.match is not None:
        clash = [n for n in ("path", "host_path", *given) if getattr(entry, n) is not None]
        if clash:
            raise AnnotationError(key, f"'match' cannot be combined with {', '.join(clash)}", index)
        return
    if not entry.path:
        raise AnnotationError(key, "missing mandatory field 'path'", index)
    _check_path(key, index, "path", entry.path)
    if entry.host_path is not None:
        if given:
            raise AnnotationError(
                key, f"'host_path' cannot be combined with {', '.join(given)}", index
            )
        if not entry.host_path:
            raise AnnotationError(key, "field 'host_path' is empty", index)
        _check_path(key, index, "host_path", entry.host_path)
        return
    if given:
        # the OCI spec needs no numbers for a FIFO
        needed = ("type",) if entry.type == "p" else ("type", "major", "minor")
        missing = [n for n in needed if getattr(entry, n) is None]
        if missing:
            raise AnnotationError(key, f"missing mandatory field(s): {', '.join(missing)}", index)
        if entry.type not in DEVICE_TYPES:
            raise AnnotationError(
                key, f"invalid device type {entry.type!r} (expected one of c, b, u, p)", index
            )


_BIND_OPTIONS = frozenset({"bind", "rbind"})


def parse_mounts(key: str, text: str) -> list[MountEntry]:
    """Parse a mount annotation value; ``destination`` is mandatory and absolute."""
    entries = []
    for index, item in enumerate(_load_list(key, text, "mounts")):
        fields = _entry(key, index, item, _MOUNT, "a mount")
        destination, source = fields["destination"], fields["source"]
        if not destination:
            raise AnnotationError(key, "missing mandatory field 'destination'", index)
        _check_path(key, index, "destination", destination)
        if fields["type"] == "bind" or _BIND_OPTIONS & set(fields["options"]):
            _check_path(key, index, "bind mount source", source)
        elif source.startswith("/") and ".." in source.split("/"):
            raise AnnotationError(key, f"source {source!r} must not contain '..'", index)
        entries.append(
            MountEntry(
                destination=destination,
                source=source,
                type=fields["type"],
                options=tuple(fields["options"]),
            )
        )
    return entries


def parse_cdi_devices(key: str, text: str) -> list[str]:
    """Parse a CDI device annotation value: a list of fully qualified CDI device names."""
    document = _load_list(key, text, "CDI device names")
    names = []
    for index, item in enumerate(document):
        if isinstance(item, list | dict):
            raise AnnotationError(key, f"expected a CDI device name, got {describe(item)}", index)
        name = _convert(key, item, Str(), index)
        if not name:
            raise AnnotationError(key, "empty CDI device name", index)
        names.append(name)
    return names


def parse_io_priority(key: str, text: str) -> IOPriorityEntry:
    """Parse an I/O priority annotation value: ``{class: IOPRIO_CLASS_*, priority: N}``."""
    document = _load(key, text)
    if document is None:
        return IOPriorityEntry()
    fields = _entry(key, None, document, _IO_PRIORITY, "class and priority")
    return IOPriorityEntry(io_class=fields["class"], priority=fields["priority"])


def parse_net_devices(key: str, text: str) -> list[NetDeviceEntry]:
    """Parse a network-device annotation: a list of ``{hostIf, name}``."""
    entries = []
    for index, item in enumerate(_load_list(key, text, "network devices")):
        fields = _entry(key, index, item, _NET_DEVICE, "a network device")
        if not fields["hostIf"]:
            raise AnnotationError(key, "missing mandatory field 'hostIf'", index)
        entries.append(NetDeviceEntry(host_if=fields["hostIf"], name=fields["name"]))
    return entries


def parse_scheduler(key: str, text: str) -> SchedulerEntry:
    """Parse a scheduling-policy annotation (``policy``, ``nice``, ``priority``, ``flags``,
    ``runtime``, ``deadline``, ``period``); an empty value is the zero scheduler."""
    document = _load(key, text)
    if document is None:
        return SchedulerEntry()
    fields = _entry(key, None, document, _SCHEDULER, "scheduling attributes")
    fields["flags"] = tuple(fields["flags"])
    return SchedulerEntry(**fields)


def parse_sysctl(key: str, text: str) -> dict[str, str]:
    """Parse a sysctl annotation: a mapping of sysctl names to values (numbers allowed)."""
    document = _load(key, text)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise AnnotationError(key, f"expected a mapping of sysctls, got {describe(document)}")
    sysctls: dict[str, str] = _convert(key, document, Map(Str()))
    for name in sysctls:
        if not name:
            raise AnnotationError(key, "empty sysctl name")
    return sysctls


def parse_memory_policy(key: str, text: str) -> MemoryPolicyEntry:
    """Parse a memory-policy annotation ``{mode: MPOL_*, nodes: "0-3", flags: [MPOL_F_*]}``.

    As upstream, the mode must be a known MPOL mode (so an empty value is an error) and every
    flag a known MPOL flag.
    """
    document = _load(key, text)
    fields = _entry(key, None, {} if document is None else document, _MEMORY_POLICY, "a policy")
    modes, flags = dict(pb.MpolMode.items()), dict(pb.MpolFlag.items())
    if fields["mode"] not in modes:
        raise AnnotationError(key, f"invalid memory policy mode {fields['mode']!r}")
    for flag in fields["flags"]:
        if flag not in flags:
            raise AnnotationError(key, f"invalid memory policy flag {flag!r}")
    return MemoryPolicyEntry(
        mode=modes[fields["mode"]],  # type: ignore[arg-type]
        nodes=fields["nodes"],
        flags=tuple(flags[f] for f in fields["flags"]),  # type: ignore[misc]
    )
