"""Builders for container adjustments and updates (upstream ``adjustment.go``/``update.go``).

``Adjustment`` and ``Update`` wrap a generated message (``.message``) and offer one
chainable method per upstream setter. Nested messages are created on demand exactly as
upstream's ``init*`` helpers do, so the serialized bytes match a Go plugin's.

Removal markers: a key prefixed with ``-`` asks the runtime to drop that entry (and lets
the same plugin set it again without an ownership conflict). ``update_args`` prefixes the
argument list with ``""`` so that it may override args another plugin has set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from nri.api import api_pb2 as pb
from nri.api._optional import (
    optional_bool,
    optional_file_mode,
    optional_int,
    optional_int64,
    optional_repeated_string,
    optional_string,
    optional_uint32,
    optional_uint64,
)

__all__ = [
    "HOOK_KINDS",
    "Adjustment",
    "Update",
    "append_hooks",
    "clear_removal_marker",
    "eviction",
    "has_hooks",
    "is_marked_for_removal",
    "make_hook",
    "make_linux_device",
    "make_mount",
    "make_rlimit",
    "mark_for_removal",
]

#: The repeated fields of a ``Hooks`` message, in OCI order.
HOOK_KINDS: tuple[str, ...] = (
    "prestart",
    "create_runtime",
    "create_container",
    "start_container",
    "poststart",
    "poststop",
)


def mark_for_removal(key: str) -> str:
    """Return ``key`` with the removal marker: ``"-" + key``."""
    return "-" + key


def is_marked_for_removal(key: str) -> tuple[str, bool]:
    """Return ``(key without marker, True)`` if ``key`` starts with ``-``, else ``(key, False)``."""
    if key.startswith("-"):
        return key[1:], True
    return key, False


def clear_removal_marker(key: str) -> str:
    """Return ``key`` without a leading removal marker."""
    return key[1:] if key.startswith("-") else key


def eviction(container_id: str, reason: str = "") -> pb.ContainerEviction:
    """Return a request to evict ``container_id`` for ``reason``."""
    return pb.ContainerEviction(container_id=container_id, reason=reason)


def _strings(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str | bytes):
        raise TypeError(f"{what} must be an iterable of str, not a single str")
    items = list(values)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} items must be str, not {type(item).__name__}")
    return items


def make_mount(
    destination: str, source: str = "", type: str = "", options: Iterable[str] = ()
) -> pb.Mount:
    """Return a Mount of ``source`` at ``destination`` (e.g. ``type="bind"``)."""
    return pb.Mount(
        destination=destination, source=source, type=type, options=_strings(options, "options")
    )


def make_linux_device(
    path: str,
    type: str,
    major: int,
    minor: int,
    *,
    file_mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> pb.LinuxDevice:
    """Return a LinuxDevice; ``type`` is ``"c"``, ``"b"``, ``"u"`` or ``"p"``."""
    dev = pb.LinuxDevice(path=path, type=type, major=major, minor=minor)
    if file_mode is not None:
        dev.file_mode.CopyFrom(optional_file_mode(file_mode))
    if uid is not None:
        dev.uid.CopyFrom(optional_uint32(uid))
    if gid is not None:
        dev.gid.CopyFrom(optional_uint32(gid))
    return dev


def make_hook(
    path: str,
    args: Iterable[str] = (),
    env: Iterable[str] = (),
    timeout: int | None = None,
) -> pb.Hook:
    """Return an OCI Hook running ``path``; ``timeout`` in seconds, None for no timeout."""
    hook = pb.Hook(path=path, args=_strings(args, "args"), env=_strings(env, "env"))
    if timeout is not None:
        hook.timeout.CopyFrom(optional_int(timeout))
    return hook


def make_rlimit(type: str, hard: int, soft: int) -> pb.POSIXRlimit:
    """Return a POSIX rlimit such as ``make_rlimit("RLIMIT_NOFILE", 4096, 1024)``."""
    return pb.POSIXRlimit(type=type, hard=hard, soft=soft)


def append_hooks(hooks: pb.Hooks, more: pb.Hooks | None) -> pb.Hooks:
    """Append every hook list of ``more`` to ``hooks`` and return ``hooks`` (upstream Append)."""
    if more is not None:
        for kind in HOOK_KINDS:
            getattr(hooks, kind).extend(list(getattr(more, kind)))
    return hooks


def has_hooks(hooks: pb.Hooks | None) -> bool:
    """Whether ``hooks`` holds at least one hook."""
    return hooks is not None and any(len(getattr(hooks, kind)) for kind in HOOK_KINDS)


class _ResourceSetters:
    """Setters shared by Adjustment and Update; they edit ``_resources()``."""

    __slots__ = ()

    def _resources(self) -> pb.LinuxResources:
        raise NotImplementedError

    def _memory(self) -> pb.LinuxMemory:
        mem = self._resources().memory
        mem.SetInParent()
        return mem

    def _cpu(self) -> pb.LinuxCPU:
        cpu = self._resources().cpu
        cpu.SetInParent()
        return cpu

    def set_linux_memory_limit(self, value: int) -> Self:
        """Set the memory limit in bytes."""
        self._memory().limit.CopyFrom(optional_int64(value))
        return self

    def set_linux_memory_reservation(self, value: int) -> Self:
        """Set the memory reservation (soft limit) in bytes."""
        self._memory().reservation.CopyFrom(optional_int64(value))
        return self

    def set_linux_memory_swap(self, value: int) -> Self:
        """Set the memory+swap limit in bytes."""
        self._memory().swap.CopyFrom(optional_int64(value))
        return self

    def set_linux_memory_kernel(self, value: int) -> Self:
        """Set the kernel memory limit in bytes."""
        self._memory().kernel.CopyFrom(optional_int64(value))
        return self

    def set_linux_memory_kernel_tcp(self, value: int) -> Self:
        """Set the kernel TCP buffer memory limit in bytes."""
        self._memory().kernel_tcp.CopyFrom(optional_int64(value))
        return self

    def set_linux_memory_swappiness(self, value: int) -> Self:
        """Set the memory swappiness."""
        self._memory().swappiness.CopyFrom(optional_uint64(value))
        return self

    def set_linux_memory_disable_oom_killer(self) -> Self:
        """Disable the OOM killer (sets ``disable_oom_killer`` to true)."""
        self._memory().disable_oom_killer.CopyFrom(optional_bool(True))
        return self

    def set_linux_memory_use_hierarchy(self) -> Self:
        """Enable hierarchical memory accounting (sets ``use_hierarchy`` to true)."""
        self._memory().use_hierarchy.CopyFrom(optional_bool(True))
        return self

    def set_linux_cpu_shares(self, value: int) -> Self:
        """Set the CPU shares (weight)."""
        self._cpu().shares.CopyFrom(optional_uint64(value))
        return self

    def set_linux_cpu_quota(self, value: int) -> Self:
        """Set the CFS quota in microseconds."""
        self._cpu().quota.CopyFrom(optional_int64(value))
        return self

    def set_linux_cpu_period(self, value: int) -> Self:
        """Set the CFS period in microseconds."""
        self._cpu().period.CopyFrom(optional_uint64(value))
        return self

    def set_linux_cpu_realtime_runtime(self, value: int) -> Self:
        """Set the realtime runtime in microseconds."""
        self._cpu().realtime_runtime.CopyFrom(optional_int64(value))
        return self

    def set_linux_cpu_realtime_period(self, value: int) -> Self:
        """Set the realtime period in microseconds."""
        self._cpu().realtime_period.CopyFrom(optional_uint64(value))
        return self

    def set_linux_cpuset_cpus(self, value: str) -> Self:
        """Set the cpuset CPUs, e.g. ``"0-3,7"``."""
        self._cpu().cpus = value
        return self

    def set_linux_cpuset_mems(self, value: str) -> Self:
        """Set the cpuset memory nodes, e.g. ``"0"``."""
        self._cpu().mems = value
        return self

    def set_linux_pids_limit(self, value: int) -> Self:
        """Set the maximum number of pids."""
        pids = self._resources().pids
        pids.SetInParent()
        pids.limit = value
        return self

    set_linux_pid_limits = set_linux_pids_limit  # upstream's spelling

    def add_linux_hugepage_limit(self, page_size: str, value: int) -> Self:
        """Add a hugepage limit in bytes for ``page_size`` (e.g. ``"2MB"``)."""
        self._resources().hugepage_limits.add(page_size=page_size, limit=value)
        return self

    def set_linux_blockio_class(self, value: str) -> Self:
        """Set the block I/O class."""
        self._resources().blockio_class.CopyFrom(optional_string(value))
        return self

    def set_linux_rdt_class(self, value: str) -> Self:
        """Set the RDT class."""
        self._resources().rdt_class.CopyFrom(optional_string(value))
        return self

    def add_linux_unified(self, key: str, value: str) -> Self:
        """Set a cgroup v2 unified resource ``key`` to ``value``."""
        self._resources().unified[key] = value
        return self


class Adjustment(_ResourceSetters):
    """Builder for a ``ContainerAdjustment`` (changes to the container being created).

    ``Adjustment()`` starts a new message, ``Adjustment(msg)`` edits ``msg`` in place.
    Every method returns ``self`` so calls can be chained.
    """

    __slots__ = ("message",)

    def __init__(self, message: pb.ContainerAdjustment | None = None) -> None:
        """Wrap ``message`` or a new empty ContainerAdjustment."""
        if message is not None and not isinstance(message, pb.ContainerAdjustment):
            raise TypeError(f"expected ContainerAdjustment, not {type(message).__name__}")
        self.message: pb.ContainerAdjustment = (
            message if message is not None else pb.ContainerAdjustment()
        )

    def __repr__(self) -> str:
        return f"Adjustment({self.message.ListFields()!r})"

    def _linux(self) -> pb.LinuxContainerAdjustment:
        linux = self.message.linux
        linux.SetInParent()
        return linux

    def _resources(self) -> pb.LinuxResources:
        res = self.message.linux.resources
        res.SetInParent()
        return res

    def _rdt(self) -> pb.LinuxRdt:
        rdt = self.message.linux.rdt
        rdt.SetInParent()
        return rdt

    def add_annotation(self, key: str, value: str) -> Self:
        """Add or set annotation ``key`` to ``value``."""
        self.message.annotations[key] = value
        return self

    def remove_annotation(self, key: str) -> Self:
        """Remove annotation ``key`` (recorded as ``"-key": ""``)."""
        self.message.annotations[mark_for_removal(key)] = ""
        return self

    def add_mount(self, mount: pb.Mount) -> Self:
        """Add a mount (a copy of ``mount``)."""
        self.message.mounts.append(mount)
        return self

    def remove_mount(self, container_path: str) -> Self:
        """Remove the mount at ``container_path`` (destination ``"-/path"``)."""
        self.message.mounts.add(destination=mark_for_removal(container_path))
        return self

    def add_env(self, key: str, value: str) -> Self:
        """Add or set environment variable ``key=value``."""
        self.message.env.add(key=key, value=value)
        return self

    def remove_env(self, key: str) -> Self:
        """Remove environment variable ``key`` (recorded as key ``"-KEY"``)."""
        self.message.env.add(key=mark_for_removal(key))
        return self

    def set_args(self, args: Iterable[str]) -> Self:
        """Replace the command line; conflicts if another plugin set it too."""
        items = _strings(args, "args")
        del self.message.args[:]
        self.message.args.extend(items)
        return self

    def update_args(self, args: Iterable[str]) -> Self:
        """Replace the command line even if another plugin set it (leading ``""`` marker)."""
        items = _strings(args, "args")
        del self.message.args[:]
        self.message.args.extend(["", *items])
        return self

    def add_hooks(self, hooks: pb.Hooks) -> Self:
        """Append the OCI hooks of ``hooks``; hooks of several plugins accumulate."""
        self.message.hooks.SetInParent()
        append_hooks(self.message.hooks, hooks)
        return self

    def add_rlimit(self, type: str, hard: int, soft: int) -> Self:
        """Add a POSIX rlimit (e.g. ``"RLIMIT_NOFILE"``)."""
        self.message.rlimits.add(type=type, hard=hard, soft=soft)
        return self

    def add_device(self, device: pb.LinuxDevice) -> Self:
        """Add a Linux device node."""
        self._linux().devices.append(device)
        return self

    def remove_device(self, path: str) -> Self:
        """Remove the device at ``path`` (recorded as path ``"-/dev/x"``)."""
        self._linux().devices.add(path=mark_for_removal(path))
        return self

    def add_cdi_device(self, device: pb.CDIDevice | str) -> Self:
        """Add a CDI device, given as a message or its fully qualified name."""
        if isinstance(device, str):
            device = pb.CDIDevice(name=device)
        self.message.CDI_devices.append(device)
        return self

    def add_or_replace_namespace(self, namespace: pb.LinuxNamespace) -> Self:
        """Add a Linux namespace or replace the one of the same type."""
        self._linux().namespaces.append(namespace)
        return self

    def remove_namespace(self, namespace: pb.LinuxNamespace | str) -> Self:
        """Remove the namespace of the given type (recorded as type ``"-net"`` etc.)."""
        ns_type = namespace if isinstance(namespace, str) else namespace.type
        self._linux().namespaces.add(type=mark_for_removal(ns_type))
        return self

    def set_linux_memory_policy(self, mode: pb.MpolMode, nodes: str, *flags: pb.MpolFlag) -> Self:
        """Set the NUMA memory policy ``mode`` over ``nodes`` (e.g. ``"0,1"``) with ``flags``."""
        policy = self._linux().memory_policy
        policy.SetInParent()
        policy.mode = mode
        policy.nodes = nodes
        del policy.flags[:]
        policy.flags.extend(flags)
        return self

    def set_linux_cgroups_path(self, value: str) -> Self:
        """Set the cgroups path."""
        self._linux().cgroups_path = value
        return self

    def set_linux_oom_score_adj(self, value: int | None) -> Self:
        """Set the OOM score adjustment; None leaves it unset."""
        linux = self._linux()
        if value is None:
            linux.ClearField("oom_score_adj")
        else:
            linux.oom_score_adj.CopyFrom(optional_int(value))
        return self

    def set_linux_io_priority(self, ioprio: pb.LinuxIOPriority | None) -> Self:
        """Set the I/O priority (class and level); None leaves it unset."""
        linux = self._linux()
        if ioprio is None:
            linux.ClearField("io_priority")
        else:
            linux.io_priority.CopyFrom(ioprio)
        return self

    def set_linux_seccomp_policy(self, seccomp: pb.LinuxSeccomp | None) -> Self:
        """Replace the seccomp policy; None leaves it unset."""
        linux = self._linux()
        if seccomp is None:
            linux.ClearField("seccomp_policy")
        else:
            linux.seccomp_policy.CopyFrom(seccomp)
        return self

    def set_linux_sysctl(self, key: str, value: str) -> Self:
        """Set sysctl ``key`` to ``value``."""
        self._linux().sysctl[key] = value
        return self

    def remove_linux_sysctl(self, key: str) -> Self:
        """Remove sysctl ``key`` (recorded as ``"-key": ""``)."""
        self._linux().sysctl[mark_for_removal(key)] = ""
        return self

    def add_linux_net_device(self, host_if: str, device: pb.LinuxNetDevice | str) -> Self:
        """Move host interface ``host_if`` into the container (device or its new name)."""
        if isinstance(device, str):
            device = pb.LinuxNetDevice(name=device)
        self._linux().net_devices[host_if].CopyFrom(device)
        return self

    def remove_linux_net_device(self, host_if: str) -> Self:
        """Remove net device ``host_if`` (recorded as key ``"-host_if"`` with an empty value)."""
        self._linux().net_devices[mark_for_removal(host_if)].SetInParent()
        return self

    def set_linux_scheduler(self, scheduler: pb.LinuxScheduler | None) -> Self:
        """Set the process scheduling policy; None leaves it unset."""
        linux = self._linux()
        if scheduler is None:
            linux.ClearField("scheduler")
        else:
            linux.scheduler.CopyFrom(scheduler)
        return self

    def set_linux_rdt_clos_id(self, value: str) -> Self:
        """Set the RDT class of service (CLOS) id."""
        self._rdt().clos_id.CopyFrom(optional_string(value))
        return self

    def set_linux_rdt_schemata(self, schemata: Iterable[str]) -> Self:
        """Set the RDT schemata lines, e.g. ``["L3:0=ff", "MB:0=50"]``."""
        self._rdt().schemata.CopyFrom(optional_repeated_string(schemata))
        return self

    def set_linux_rdt_enable_monitoring(self, enable: bool) -> Self:
        """Enable or disable RDT monitoring."""
        self._rdt().enable_monitoring.CopyFrom(optional_bool(enable))
        return self

    def remove_linux_rdt(self) -> Self:
        """Drop any existing RDT configuration before the settings of this adjustment apply."""
        self._rdt().remove = True
        return self


class Update(_ResourceSetters):
    """Builder for a ``ContainerUpdate`` (resource changes to an existing container).

    ``Update("ctr-id")`` starts a new update, ``Update(msg)`` edits ``msg`` in place.
    Every method returns ``self`` so calls can be chained.
    """

    __slots__ = ("message",)

    def __init__(
        self, container: str | pb.ContainerUpdate = "", *, ignore_failure: bool = False
    ) -> None:
        """Wrap an existing ContainerUpdate or start one for container id ``container``."""
        if isinstance(container, pb.ContainerUpdate):
            self.message: pb.ContainerUpdate = container
        elif isinstance(container, str):
            self.message = pb.ContainerUpdate(container_id=container)
        else:
            raise TypeError(
                f"expected a container id or ContainerUpdate, not {type(container).__name__}"
            )
        if ignore_failure:
            self.message.ignore_failure = True

    def __repr__(self) -> str:
        return f"Update({self.message.ListFields()!r})"

    def _resources(self) -> pb.LinuxResources:
        res = self.message.linux.resources
        res.SetInParent()
        return res

    @property
    def container_id(self) -> str:
        """The id of the container to update."""
        return self.message.container_id

    def set_container_id(self, container_id: str) -> Self:
        """Set the id of the container to update."""
        self.message.container_id = container_id
        return self

    def set_ignore_failure(self, ignore: bool = True) -> Self:
        """Let the related container operation succeed even if this update fails."""
        self.message.ignore_failure = ignore
        return self
