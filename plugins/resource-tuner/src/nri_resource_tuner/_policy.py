"""The configuration: reserved CPUs, named resource classes, and which class a container gets.

A container's class comes from the pod annotation ``class.resource-tuner.noderesource.dev``
(``/container.NAME`` for one container, ``/pod`` or the bare key for every container of
the pod; the most specific key present wins), else from ``default-class``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nri.adaptation import effective_annotation
from nri.api import get_optional, pb
from nri.stub import ConfigError
from nri_resource_tuner._allocator import NUMA_POLICIES, CpuRequest
from nri_resource_tuner._cpuset import CpusetError, parse_cpuset
from nri_resource_tuner._quantity import parse_bytes

__all__ = [
    "CLASS_ANNOTATION",
    "SHARED_CLASS",
    "ClassSelectionError",
    "Config",
    "MemoryAmount",
    "Policy",
    "PolicyError",
    "ResourceClass",
]

CLASS_ANNOTATION = "class.resource-tuner.noderesource.dev"
"""Pod annotation naming a container's class; with ``/container.NAME`` or ``/pod``."""

SHARED_CLASS = "shared"
"""The class that always exists unless configured otherwise: the shared pool, no tuning."""

DEFAULT_CPU_PERIOD = 100_000
"""CFS period (µs) assumed when a container has a quota but no period."""

_MIN_SHARES = 2
_MIN_QUOTA = 1000


class PolicyError(ConfigError):
    """The configuration is invalid; the message names the source and the key."""


class ClassSelectionError(ValueError):
    """A pod's annotation names a class that does not exist."""


@dataclass
class Config:
    """Configuration of the resource-tuner (YAML, keys with ``-`` or ``_``)."""

    reserved_cpus: str | int = ""
    """CPUs for system work (a cpuset list such as ``"0-1"``): never given to containers."""
    min_shared_cpus: int = 1
    """CPUs that always stay in the shared pool, whatever exclusive requests come."""
    default_class: str = SHARED_CLASS
    """The class of containers without a class annotation."""
    classes: dict[str, Any] = field(default_factory=dict)
    """Class name to its settings (see README.md)."""
    host: str | dict[str, Any] | None = None
    """A host description: a file (YAML/JSON) or an inline mapping; None reads the host."""
    verbose: bool = False
    """Log every placement at info level."""


@dataclass(frozen=True, slots=True)
class MemoryAmount:
    """A memory setting: a byte count (``-1``: unlimited) or a fraction of node memory."""

    bytes: int | None = None
    fraction: float | None = None

    def resolve(self, node_memory: int) -> int:
        """The byte value on a node with ``node_memory`` bytes."""
        if self.fraction is not None:
            return int(node_memory * self.fraction)
        assert self.bytes is not None
        return self.bytes


@dataclass(frozen=True)
class ResourceClass:
    """What containers of one class get."""

    name: str
    exclusive_cpus: int | None = None
    """A fixed number of exclusive CPUs; None: shared pool (unless ``exclusive_from_quota``)."""
    exclusive_from_quota: bool = False
    """Take ``quota / period`` exclusive CPUs when that is a whole number, else shared."""
    whole_cores: bool = False
    numa: str = "prefer"
    fallback_to_shared: bool = False
    """Place the container in the shared pool when its exclusive CPUs are not available."""
    memory_pinning: bool = True
    """Set the container's memory nodes to the NUMA nodes of its CPUs."""
    cpu_shares_scale: float | None = None
    cpu_quota_scale: float | None = None
    memory_limit: MemoryAmount | None = None
    memory_reservation: MemoryAmount | None = None
    memory_swap: MemoryAmount | None = None
    memory_swappiness: int | None = None

    @property
    def exclusive(self) -> bool:
        """Whether containers of the class ask for exclusive CPUs."""
        return self.exclusive_cpus is not None or self.exclusive_from_quota

    def cpu_request(self, resources: pb.LinuxResources | None) -> CpuRequest | None:
        """The exclusive CPUs a container with ``resources`` asks for; None: shared pool."""
        count = self.exclusive_cpus
        if count is None and self.exclusive_from_quota:
            count = cpus_from_quota(resources)
        if count is None:
            return None
        return CpuRequest(count, whole_cores=self.whole_cores, numa=self.numa)

    def tune_cpu(self, resources: pb.LinuxResources | None) -> tuple[int | None, int | None]:
        """The scaled (shares, quota) of a container, None where nothing changes."""
        shares = quota = None
        if resources is not None and resources.HasField("cpu"):
            current_shares = get_optional(resources.cpu, "shares")
            if self.cpu_shares_scale is not None and isinstance(current_shares, int):
                shares = max(int(current_shares * self.cpu_shares_scale), _MIN_SHARES)
            current_quota = get_optional(resources.cpu, "quota")
            scale = self.cpu_quota_scale
            if scale is not None and isinstance(current_quota, int) and current_quota > 0:
                quota = max(int(current_quota * scale), _MIN_QUOTA)
        return shares, quota


def cpus_from_quota(resources: pb.LinuxResources | None) -> int | None:
    """``quota / period`` when a positive whole number (Kubernetes' integer CPU limit)."""
    if resources is None or not resources.HasField("cpu"):
        return None
    quota = get_optional(resources.cpu, "quota")
    period = get_optional(resources.cpu, "period") or DEFAULT_CPU_PERIOD
    if not isinstance(quota, int) or not isinstance(period, int) or quota <= 0:
        return None
    count, rest = divmod(quota, period)
    return count if count >= 1 and rest == 0 else None


@dataclass(frozen=True)
class Policy:
    """A validated configuration."""

    reserved: frozenset[int]
    min_shared: int
    default_class: str
    classes: Mapping[str, ResourceClass]
    host: str | dict[str, Any] | None
    verbose: bool

    @classmethod
    def from_config(cls, config: Config, *, source: str = "configuration") -> Policy:
        """Check ``config``; PolicyError names ``source`` and the offending key."""
        reserved_text = str(config.reserved_cpus)
        try:
            reserved = parse_cpuset(reserved_text)
        except CpusetError as exc:
            raise PolicyError(f"{source}: reserved-cpus: {exc}") from None
        if config.min_shared_cpus < 1:
            # An empty pool would leave shared containers with no CPU to run on.
            raise PolicyError(
                f"{source}: min-shared-cpus: must be at least 1, got {config.min_shared_cpus}"
            )
        classes = {SHARED_CLASS: ResourceClass(SHARED_CLASS)}
        for name, settings in config.classes.items():
            classes[name] = _parse_class(name, settings, f"{source}: classes.{name}")
        if config.default_class not in classes:
            raise PolicyError(
                f"{source}: default-class: class {config.default_class!r} is not defined "
                f"(classes: {', '.join(sorted(classes))})"
            )
        return cls(
            reserved=reserved,
            min_shared=config.min_shared_cpus,
            default_class=config.default_class,
            classes=classes,
            host=config.host,
            verbose=config.verbose,
        )

    def class_for(self, pod: pb.PodSandbox, container: str) -> ResourceClass:
        """The class of ``container`` in ``pod``; ClassSelectionError for an unknown name."""
        value = effective_annotation(pod, CLASS_ANNOTATION, container)
        if value is None:
            return self.classes[self.default_class]
        name = value.strip()
        if name in self.classes:
            return self.classes[name]
        keys = sorted(
            k for k, v in pod.annotations.items() if k.startswith(CLASS_ANNOTATION) and v == value
        )
        raise ClassSelectionError(
            f"annotation {', '.join(map(repr, keys))}: class {name!r} is not defined "
            f"(classes: {', '.join(sorted(self.classes))})"
        )


_CLASS_KEYS = (
    "exclusive-cpus",
    "whole-cores",
    "numa",
    "fallback-to-shared",
    "memory-pinning",
    "cpu-shares-scale",
    "cpu-quota-scale",
    "memory-limit",
    "memory-reservation",
    "memory-swap",
    "memory-swappiness",
)


def _parse_class(name: str, settings: Any, where: str) -> ResourceClass:
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise PolicyError(f"{where}: expected a mapping of settings, got {settings!r}")
    values = {}
    for key, value in settings.items():
        canonical = str(key).replace("_", "-")
        if canonical not in _CLASS_KEYS:
            raise PolicyError(
                f"{where}: unknown key {key!r} (known keys: {', '.join(sorted(_CLASS_KEYS))})"
            )
        values[canonical] = (value, f"{where}.{key}")
    fields: dict[str, Any] = {"name": name}
    if "exclusive-cpus" in values:
        value, at = values["exclusive-cpus"]
        if value == "auto":
            fields["exclusive_from_quota"] = True
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            fields["exclusive_cpus"] = value
        else:
            raise PolicyError(
                f"{at}: expected a count of at least 1 or 'auto' (from the CPU quota), "
                f"got {value!r}"
            )
    for key in ("whole-cores", "fallback-to-shared", "memory-pinning"):
        if key in values:
            fields[key.replace("-", "_")] = _boolean(*values[key])
    if "numa" in values:
        value, at = values["numa"]
        if value not in NUMA_POLICIES:
            raise PolicyError(f"{at}: expected one of {', '.join(NUMA_POLICIES)}, got {value!r}")
        fields["numa"] = value
    for key in ("cpu-shares-scale", "cpu-quota-scale"):
        if key in values:
            value, at = values[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise PolicyError(f"{at}: expected a positive number, got {value!r}")
            fields[key.replace("-", "_")] = float(value)
    for key in ("memory-limit", "memory-reservation", "memory-swap"):
        if key in values:
            fields[key.replace("-", "_")] = _memory(
                *values[key], unlimited=key != "memory-reservation"
            )
    if "memory-swappiness" in values:
        value, at = values["memory-swappiness"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise PolicyError(f"{at}: expected an integer from 0 to 100, got {value!r}")
        fields["memory_swappiness"] = value
    if fields.get("whole_cores") and not (
        fields.get("exclusive_cpus") or fields.get("exclusive_from_quota")
    ):
        raise PolicyError(f"{where}: whole-cores needs exclusive-cpus")
    return ResourceClass(**fields)


def _boolean(value: Any, at: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{at}: expected true or false, got {value!r}")
    return value


def _memory(value: Any, at: str, *, unlimited: bool) -> MemoryAmount:
    if unlimited and value == -1 and not isinstance(value, bool):
        return MemoryAmount(bytes=-1)
    fraction: float | None = None
    if isinstance(value, float):
        fraction = value
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            fraction = float(value.strip()[:-1]) / 100
        except ValueError:
            raise PolicyError(f"{at}: invalid percentage {value!r}") from None
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise PolicyError(
                f"{at}: a fraction of node memory must be above 0 and at most 1 (100%), "
                f"got {value!r}"
            )
        return MemoryAmount(fraction=fraction)
    try:
        return MemoryAmount(bytes=parse_bytes(value))
    except ValueError as exc:
        extra = ", -1 (unlimited)" if unlimited else ""
        raise PolicyError(f"{at}: {exc} (or a fraction such as 0.25 or 25%{extra})") from None
