"""The device-injector plugin: turn a pod's annotations into a container adjustment."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nri.api import Adjustment, make_linux_device, pb
from nri.stub import Allowlist, Plugin, load_config_with_allowlist
from nri_device_injector._annotations import (
    CDI_DEVICES,
    DEVICES,
    IO_PRIORITY,
    MEMORY_POLICY,
    MOUNTS,
    NET_DEVICES,
    SCHEDULING_POLICY,
    SYSCTL,
    AnnotationError,
    DeviceEntry,
    find_annotation,
    parse_cdi_devices,
    parse_devices,
    parse_io_priority,
    parse_memory_policy,
    parse_mounts,
    parse_net_devices,
    parse_scheduler,
    parse_sysctl,
)
from nri_device_injector._host import HostDevice, HostLookupError, lookup_match, lookup_path

__all__ = [
    "Config",
    "DeviceInjector",
    "InjectionError",
    "build_adjustment",
    "parse_config",
    "resolve_device",
]

log = logging.getLogger("nri.device_injector")


@dataclass
class Config:
    """Configuration of the device-injector (YAML, keys with ``-`` or ``_``)."""

    host_lookup: bool = True
    """Allow device entries that are looked up on the host (``path`` only, or ``match``)."""
    host_permissions: bool = True
    """For looked-up devices, take file mode, uid and gid from the host node by default."""
    verbose: bool = False
    """Log every parsed annotation and the resulting adjustment at info level."""
    strict_scheduling: bool = False
    """Refuse unknown scheduling policy and flag names; upstream (and the default) turns
    them into value 0 (``SCHED_NONE``, ``SCHED_FLAG_RESET_ON_FORK``) with a warning."""
    allow: Allowlist = field(default_factory=Allowlist)
    """Which namespaces and pods may request injection (default: all)."""


def parse_config(text: str, source: str) -> Config:
    """Parse a YAML configuration (``allow`` included); ConfigError naming ``source``."""
    return load_config_with_allowlist(text, Config, source=source)


class InjectionError(ValueError):
    """A pod's annotations cannot be applied; names pod, container, annotation and problem."""


def resolve_device(key: str, entry: DeviceEntry, config: Config) -> list[pb.LinuxDevice]:
    """The LinuxDevices one annotation entry stands for (host lookups included)."""
    if entry.is_explicit:
        assert entry.path is not None and entry.type is not None
        # Upstream leaves zero mode/uid/gid unset.
        return [
            make_linux_device(
                entry.path,
                entry.type,
                entry.major or 0,
                entry.minor or 0,
                file_mode=entry.file_mode or None,
                uid=entry.uid or None,
                gid=entry.gid or None,
            )
        ]
    if not config.host_lookup:
        problem = (
            "'match' needs host lookup, which is disabled"
            if entry.match is not None
            else "missing mandatory field(s): type, major, minor (host lookup is disabled)"
        )
        raise AnnotationError(key, problem, entry.index)

    def convert(device: HostDevice, path: str | None) -> pb.LinuxDevice:
        return device.to_message(
            path,
            host_permissions=config.host_permissions,
            file_mode=entry.file_mode,
            uid=entry.uid,
            gid=entry.gid,
        )

    try:
        if entry.match is not None:
            match = entry.match
            found = lookup_match(match.subsystem, dict(match.properties), dict(match.attributes))
            if not found:
                raise HostLookupError(f"no host device matches {match.describe()}")
            return [convert(device, None) for device in found]
        assert entry.path is not None
        device = lookup_path(entry.host_path or entry.path)
        return [convert(device, entry.path)]
    except HostLookupError as exc:
        raise AnnotationError(key, f"{entry.describe()}: {exc}", entry.index) from exc


def build_adjustment(
    annotations: Mapping[str, str], container: str, config: Config | None = None
) -> Adjustment:
    """The adjustment upstream's device-injector makes for ``container`` of a pod.

    Raises AnnotationError (naming the annotation key and entry) for invalid values.
    """
    config = config or Config()
    adjust = Adjustment()
    found = find_annotation(annotations, DEVICES, container)
    if found is not None and found[1]:
        key, value = found
        for entry in parse_devices(key, value):
            for device in resolve_device(key, entry, config):
                adjust.add_device(device)
                log.info("%s: injected device %r (from %s)", container, device.path, key)
    found = find_annotation(annotations, CDI_DEVICES, container)
    if found is not None and found[1]:
        key, value = found
        for name in parse_cdi_devices(key, value):
            adjust.add_cdi_device(name)
            log.info("%s: injected CDI device %r (from %s)", container, name, key)
    found = find_annotation(annotations, MOUNTS, container)
    if found is not None and found[1]:
        key, value = found
        for mount in parse_mounts(key, value):
            adjust.add_mount(mount.to_message())
            log.info(
                "%s: injected mount %r -> %r (from %s)",
                container,
                mount.source,
                mount.destination,
                key,
            )
    found = find_annotation(annotations, IO_PRIORITY, container)
    if found is not None:  # upstream applies even an empty value here
        key, value = found
        priority = parse_io_priority(key, value)
        message = priority.to_message()
        if message is None:
            log.warning(
                "%s: unknown I/O priority class %r in %s, not setting an I/O priority",
                container,
                priority.io_class,
                key,
            )
        else:
            log.info(
                "%s: injected I/O priority %s:%d (from %s)",
                container,
                priority.io_class,
                priority.priority,
                key,
            )
        adjust.set_linux_io_priority(message)
    _add_linux_kinds(adjust, annotations, container, config)
    return adjust


def _add_linux_kinds(
    adjust: Adjustment, annotations: Mapping[str, str], container: str, config: Config
) -> None:
    """Scheduling policy, network devices, sysctls and memory policy, in upstream's order."""
    found = find_annotation(annotations, SCHEDULING_POLICY, container)
    if found is not None:  # an empty value sets the zero scheduler, as upstream
        key, value = found
        scheduler = parse_scheduler(key, value)
        unknown = scheduler.unknown_names()
        if unknown and config.strict_scheduling:
            raise AnnotationError(key, f"unknown scheduling policy or flag: {', '.join(unknown)}")
        if unknown:
            log.warning("%s: unknown scheduling names %s in %s, using 0", container, unknown, key)
        adjust.set_linux_scheduler(scheduler.to_message())
        log.info("%s: adjusted scheduling attributes to %s (from %s)", container, scheduler, key)
    found = find_annotation(annotations, NET_DEVICES, container)
    if found is not None and found[1]:
        key, value = found
        for device in parse_net_devices(key, value):
            adjust.add_linux_net_device(device.host_if, device.name)
            log.info(
                "%s: injected network device %r -> %r (from %s)",
                container,
                device.host_if,
                device.name,
                key,
            )
    found = find_annotation(annotations, SYSCTL, container)
    if found is not None and found[1]:
        key, value = found
        for name, setting in sorted(parse_sysctl(key, value).items()):
            adjust.set_linux_sysctl(name, setting)
            log.info("%s: adjusted sysctl %s=%s (from %s)", container, name, setting, key)
    found = find_annotation(annotations, MEMORY_POLICY, container)
    if found is not None:  # an empty value is an invalid mode, as upstream
        key, value = found
        policy = parse_memory_policy(key, value)
        adjust.set_linux_memory_policy(policy.mode, policy.nodes, *policy.flags)
        log.info(
            "%s: adjusted memory policy to %s nodes %r flags %s (from %s)",
            container,
            pb.MpolMode.Name(policy.mode),
            policy.nodes,
            [pb.MpolFlag.Name(flag) for flag in policy.flags],
            key,
        )


class DeviceInjector(Plugin):
    """Inject what the pod annotates: devices, CDI devices, mounts, I/O priority, scheduling
    policy, network devices, sysctls and memory policy."""

    def __init__(self, config: Config | None = None, **overrides: Any) -> None:
        """Create the plugin with ``config`` (defaults if None).

        ``overrides`` (e.g. ``verbose=True`` from the command line) win over any
        configuration received later.
        """
        self.overrides = overrides
        self.config = dataclasses.replace(config or Config(), **overrides)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            parsed = parse_config(config, "device-injector configuration")
            self.config = dataclasses.replace(parsed, **self.overrides)
        log.info("configured for %s %s: %s", runtime_name, runtime_version, self.config)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        """Return the annotated adjustment; invalid annotations fail the creation."""
        if not self.config.allow.allows_all:
            kinds: tuple[str, ...] = (DEVICES, CDI_DEVICES, MOUNTS, IO_PRIORITY, SCHEDULING_POLICY)
            kinds += (NET_DEVICES, SYSCTL, MEMORY_POLICY)
            found = [find_annotation(pod.annotations, kind, container.name) for kind in kinds]
            requested = [f[0] for f in found if f is not None]
            if requested and not self.config.allow.check(pod, f"annotation {requested[0]!r}", log):
                return Adjustment()
        try:
            adjust = build_adjustment(pod.annotations, container.name, self.config)
        except AnnotationError as exc:
            raise InjectionError(
                f"pod {pod.namespace}/{pod.name}, container {container.name}: {exc}"
            ) from exc
        if self.config.verbose:
            log.info("%s/%s: adjustment: %s", pod.name, container.name, adjust.message)
        return adjust
