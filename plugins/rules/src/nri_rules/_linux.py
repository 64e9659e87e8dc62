"""The process and Linux settings of ``adjust``: command line, scheduler, I/O priority, memory
policy, namespaces, network devices, seccomp policy and Intel RDT.

Keys and values are spelled as in the OCI runtime spec (``process.scheduler``,
``linux.seccomp``, ``linux.intelRdt`` and so on); enumerations take the names that the OCI
spec and NRI's protobuf enums share, such as ``SCHED_FIFO``, ``IOPRIO_CLASS_RT`` and
``MPOL_BIND``. Values get the checks that the kernel and runc make before a container
starts, so a rule that would fail every container it matches is refused when the file is
loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nri.api import Adjustment, optional_uint32, pb
from nri.decode import describe
from nri.oci import NAMESPACE_TYPES
from nri_rules._fields import (
    _UINT64,
    _absolute,
    _check_keys,
    _id_list,
    _integer,
    _list,
    _mapping,
    _Problem,
    _string,
    _string_list,
)

__all__ = ["LINUX_KEYS", "LinuxSettings", "parse_linux"]

LINUX_KEYS = (
    "args",
    "scheduler",
    "ioPriority",
    "memoryPolicy",
    "namespaces",
    "removeNamespaces",
    "netDevices",
    "removeNetDevices",
    "seccomp",
    "intelRdt",
)
"""The keys of ``adjust`` that this module reads."""

_UINT32 = (0, (1 << 32) - 1)


def _names(enum: Any, *skip: str) -> tuple[str, ...]:
    return tuple(v.name for v in enum.DESCRIPTOR.values if v.name not in skip)


_SCHED_POLICIES = _names(pb.LinuxSchedulerPolicy, "SCHED_NONE")
_SCHED_FLAGS = _names(pb.LinuxSchedulerFlag)
_IOPRIO_CLASSES = _names(pb.IOPrioClass, "IOPRIO_CLASS_NONE")
_MPOL_MODES = _names(pb.MpolMode)
_MPOL_FLAGS = _names(pb.MpolFlag)
# The OCI runtime spec's enumerations for linux.seccomp.
_SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)
_SECCOMP_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_SECCOMP_ARCHES = tuple(
    f"SCMP_ARCH_{arch}"
    for arch in (
        "X86", "X86_64", "X32", "ARM", "AARCH64", "LOONGARCH64", "M68K", "MIPS", "MIPS64",
        "MIPS64N32", "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
        "S390X", "SH", "SHEB", "PARISC", "PARISC64", "RISCV64",
    )
)  # fmt: skip
_SECCOMP_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
_SECCOMP_OPS = tuple(f"SCMP_CMP_{op}" for op in ("NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"))
_IFNAMSIZ = 16  # the kernel's limit for an interface name, the terminating NUL included


@dataclass(frozen=True)
class LinuxSettings:
    """The process and Linux settings of a rule's ``adjust`` (messages as NRI sends them)."""

    args: tuple[str, ...] | None = None
    scheduler: pb.LinuxScheduler | None = field(default=None, compare=False)
    io_priority: pb.LinuxIOPriority | None = field(default=None, compare=False)
    memory_policy: pb.LinuxMemoryPolicy | None = field(default=None, compare=False)
    namespaces: tuple[tuple[str, str], ...] = ()
    """(type, path) pairs; an empty path asks for a new namespace."""
    remove_namespaces: tuple[str, ...] = ()
    net_devices: tuple[tuple[str, str], ...] = ()
    """(host interface, name in the container) pairs; an empty name keeps the host's."""
    remove_net_devices: tuple[str, ...] = ()
    seccomp: pb.LinuxSeccomp | None = field(default=None, compare=False)
    rdt: pb.LinuxRdt | None = field(default=None, compare=False)

    def __bool__(self) -> bool:
        return any(
            value is not None and value != ()
            for value in (
                self.args,
                self.scheduler,
                self.io_priority,
                self.memory_policy,
                self.namespaces,
                self.remove_namespaces,
                self.net_devices,
                self.remove_net_devices,
                self.seccomp,
                self.rdt,
            )
        )

    def apply(self, adjust: Adjustment) -> None:
        """Add these settings to ``adjust`` with the :class:`~nri.api.Adjustment` setters."""
        if self.args is not None:
            adjust.set_args(self.args)
        if self.scheduler is not None:
            adjust.set_linux_scheduler(self.scheduler)
        if self.io_priority is not None:
            adjust.set_linux_io_priority(self.io_priority)
        if self.memory_policy is not None:
            policy = self.memory_policy
            adjust.set_linux_memory_policy(policy.mode, policy.nodes, *policy.flags)
        for kind in self.remove_namespaces:
            adjust.remove_namespace(kind)
        for kind, path in self.namespaces:
            adjust.add_or_replace_namespace(pb.LinuxNamespace(type=kind, path=path))
        for host in self.remove_net_devices:
            adjust.remove_linux_net_device(host)
        for host, name in self.net_devices:
            adjust.add_linux_net_device(host, name)
        if self.seccomp is not None:
            adjust.set_linux_seccomp_policy(self.seccomp)
        rdt = self.rdt
        if rdt is not None:
            if rdt.HasField("clos_id"):
                adjust.set_linux_rdt_clos_id(rdt.clos_id.value)
            if rdt.HasField("schemata"):
                adjust.set_linux_rdt_schemata(rdt.schemata.value)
            if rdt.HasField("enable_monitoring"):
                adjust.set_linux_rdt_enable_monitoring(rdt.enable_monitoring.value)


# -- readers ---------------------------------------------------------------------------------


def _choice(value: Any, where: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Problem(where, f"expected one of {', '.join(choices)}, got {describe(value)}")
    return value


def _choices(value: Any, where: str, choices: Sequence[str]) -> list[str]:
    found: list[str] = []
    for i, item in enumerate(_list(value, where, ", ".join(choices))):
        name = _choice(item, f"{where}[{i}]", choices)
        if name in found:
            raise _Problem(f"{where}[{i}]", f"{name} is given twice")
        found.append(name)
    return found


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Problem(where, f"expected true or false, got {describe(value)}")
    return value


def _fields(value: Any, where: str, what: str, known: Sequence[str]) -> dict[str, Any]:
    spec = _mapping(value, where, what)
    _check_keys(spec, where, known)
    return spec


def _args(value: Any, where: str) -> tuple[str, ...]:
    items = _list(value, where, "the command and its arguments")
    if not items:
        raise _Problem(where, "empty list (a container needs a command)")
    args = tuple(_string(item, f"{where}[{i}]", numbers=True) for i, item in enumerate(items))
    if not args[0]:
        raise _Problem(f"{where}[0]", "the command must not be empty")
    return args


def _scheduler(value: Any, where: str) -> pb.LinuxScheduler:
    known = ("policy", "nice", "priority", "flags", "runtime", "deadline", "period")
    spec = _fields(value, where, "policy, nice, priority, ...", known)
    if "policy" not in spec:
        raise _Problem(f"{where}.policy", "missing")
    policy = _choice(spec["policy"], f"{where}.policy", _SCHED_POLICIES)
    sched = pb.LinuxScheduler(policy=policy)
    if "nice" in spec:
        sched.nice = _integer(spec["nice"], f"{where}.nice", (-20, 19))
    realtime = policy in ("SCHED_FIFO", "SCHED_RR")
    if "priority" in spec:
        if not realtime:
            raise _Problem(f"{where}.priority", f"only for SCHED_FIFO and SCHED_RR, not {policy}")
        sched.priority = _integer(spec["priority"], f"{where}.priority", (1, 99))
    elif realtime:
        raise _Problem(f"{where}.priority", f"missing ({policy} needs a priority from 1 to 99)")
    if "flags" in spec:
        flags = _choices(spec["flags"], f"{where}.flags", _SCHED_FLAGS)
        sched.MergeFrom(pb.LinuxScheduler(flags=flags))
    deadline = policy == "SCHED_DEADLINE"
    for key in ("runtime", "deadline", "period"):
        if key in spec:
            if not deadline:
                raise _Problem(f"{where}.{key}", f"only for SCHED_DEADLINE, not {policy}")
            setattr(sched, key, _integer(spec[key], f"{where}.{key}", (1, _UINT64[1])))
        elif deadline and key != "period":
            raise _Problem(f"{where}.{key}", "missing (SCHED_DEADLINE needs runtime and deadline)")
    if deadline:
        if sched.runtime > sched.deadline:
            raise _Problem(where, f"runtime {sched.runtime} is above deadline {sched.deadline}")
        if sched.period and sched.deadline > sched.period:
            raise _Problem(where, f"deadline {sched.deadline} is above period {sched.period}")
    return sched


def _io_priority(value: Any, where: str) -> pb.LinuxIOPriority:
    spec = _fields(value, where, "class, priority", ("class", "priority"))
    if "class" not in spec:
        raise _Problem(f"{where}.class", "missing")
    klass = _choice(spec["class"], f"{where}.class", _IOPRIO_CLASSES)
    prio = pb.LinuxIOPriority(
        priority=_integer(spec.get("priority", 0), f"{where}.priority", (0, 7))
    )
    setattr(prio, "class", pb.IOPrioClass.Value(klass))  # "class" is a Python keyword
    return prio


def _memory_policy(value: Any, where: str) -> pb.LinuxMemoryPolicy:
    spec = _fields(value, where, "mode, nodes, flags", ("mode", "nodes", "flags"))
    if "mode" not in spec:
        raise _Problem(f"{where}.mode", "missing")
    mode = _choice(spec["mode"], f"{where}.mode", _MPOL_MODES)
    nodes = _id_list(spec["nodes"], f"{where}.nodes") if "nodes" in spec else ""
    if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and nodes:
        raise _Problem(f"{where}.nodes", f"{mode} takes no nodes")
    if mode not in ("MPOL_DEFAULT", "MPOL_LOCAL", "MPOL_PREFERRED") and not nodes:
        raise _Problem(f"{where}.nodes", f"missing ({mode} needs at least one node)")
    flags = _choices(spec.get("flags", []), f"{where}.flags", _MPOL_FLAGS)
    if flags and mode == "MPOL_DEFAULT":
        raise _Problem(f"{where}.flags", "MPOL_DEFAULT takes no flags")
    if {"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"} <= set(flags):
        message = "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
        raise _Problem(f"{where}.flags", message)
    return pb.LinuxMemoryPolicy(mode=mode, nodes=nodes, flags=list(flags))


def _namespaces(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for i, item in enumerate(_list(value, where, "namespaces")):
        at = f"{where}[{i}]"
        spec = _fields(item, at, "type, path", ("type", "path"))
        if "type" not in spec:
            raise _Problem(f"{at}.type", "missing")
        kind = _choice(spec["type"], f"{at}.type", NAMESPACE_TYPES)
        if kind in found:
            raise _Problem(at, f"namespace {kind} is given twice")
        path = ""
        if "path" in spec:
            path = _absolute(_string(spec["path"], f"{at}.path", empty=False), f"{at}.path")
        found[kind] = path
    return tuple(found.items())


def _namespace_types(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_choices(value, where, NAMESPACE_TYPES))


def _interface(value: Any, where: str) -> str:
    """A network interface name as the kernel accepts it."""
    name = _string(value, where, numbers=True, empty=False)
    bad = name in (".", "..") or name.startswith("-") or any(c in "/:" or c.isspace() for c in name)
    if bad:
        raise _Problem(where, f"invalid interface name {name!r} (no '/', ':', spaces, leading '-')")
    if len(name.encode()) >= _IFNAMSIZ:
        raise _Problem(where, f"interface name {name!r} is longer than {_IFNAMSIZ - 1} bytes")
    return name


def _net_devices(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    for key, device in _mapping(value, where, "host interface: {name: ...}").items():
        at = f"{where}.{key}"
        host = _interface(key, at)
        if isinstance(device, dict):
            _check_keys(device, at, ("name",))
            name = _interface(device["name"], f"{at}.name") if "name" in device else ""
        elif device is None:
            name = ""
        else:
            name = _interface(device, at)
        inside = name or host
        if inside in names:
            raise _Problem(at, f"{inside!r} is also the container name of {names[inside]!r}")
        names[inside] = host
        found.append((host, name))
    return tuple(found)


def _interfaces(value: Any, where: str) -> tuple[str, ...]:
    items = _list(value, where, "host interface names")
    return tuple(_interface(item, f"{where}[{i}]") for i, item in enumerate(items))


def _errno(spec: dict[str, Any], key: str, action: str, where: str) -> pb.OptionalUInt32 | None:
    if key not in spec:
        return None
    if action not in _SECCOMP_ERRNO_ACTIONS:
        raise _Problem(
            f"{where}.{key}", f"only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {action}"
        )
    return optional_uint32(_integer(spec[key], f"{where}.{key}", _UINT32))


def _syscall(value: Any, where: str) -> pb.LinuxSyscall:
    spec = _fields(value, where, "names, action, ...", ("names", "action", "errnoRet", "args"))
    for key in ("names", "action"):
        if key not in spec:
            raise _Problem(f"{where}.{key}", "missing")
    names = _string_list(spec["names"], f"{where}.names", "syscall names")
    if not names:
        raise _Problem(f"{where}.names", "empty list")
    action = _choice(spec["action"], f"{where}.action", _SECCOMP_ACTIONS)
    rule = pb.LinuxSyscall(names=names, action=action)
    errno = _errno(spec, "errnoRet", action, where)
    if errno is not None:
        rule.errno_ret.CopyFrom(errno)
    for i, item in enumerate(_list(spec.get("args", []), f"{where}.args", "argument checks")):
        at = f"{where}.args[{i}]"
        arg = _fields(item, at, "index, value, valueTwo, op", ("index", "value", "valueTwo", "op"))
        for key in ("index", "value", "op"):
            if key not in arg:
                raise _Problem(f"{at}.{key}", "missing")
        rule.args.add(
            index=_integer(arg["index"], f"{at}.index", (0, 5)),
            value=_integer(arg["value"], f"{at}.value", _UINT64),
            value_two=_integer(arg.get("valueTwo", 0), f"{at}.valueTwo", _UINT64),
            op=_choice(arg["op"], f"{at}.op", _SECCOMP_OPS),
        )
    return rule


def _seccomp(value: Any, where: str) -> pb.LinuxSeccomp:
    known = (
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "syscalls",
    )
    spec = _fields(value, where, "defaultAction, syscalls, ...", known)
    if "defaultAction" not in spec:
        raise _Problem(f"{where}.defaultAction", "missing")
    action = _choice(spec["defaultAction"], f"{where}.defaultAction", _SECCOMP_ACTIONS)
    policy = pb.LinuxSeccomp(default_action=action)
    errno = _errno(spec, "defaultErrnoRet", action, where)
    if errno is not None:
        policy.default_errno.CopyFrom(errno)
    arches = _choices(spec.get("architectures", []), f"{where}.architectures", _SECCOMP_ARCHES)
    policy.architectures.extend(arches)
    policy.flags.extend(_choices(spec.get("flags", []), f"{where}.flags", _SECCOMP_FLAGS))
    if "listenerPath" in spec:
        path = _string(spec["listenerPath"], f"{where}.listenerPath", empty=False)
        policy.listener_path = _absolute(path, f"{where}.listenerPath")
    if "listenerMetadata" in spec:
        if not policy.listener_path:
            raise _Problem(f"{where}.listenerMetadata", "needs listenerPath")
        policy.listener_metadata = _string(spec["listenerMetadata"], f"{where}.listenerMetadata")
    for i, item in enumerate(_list(spec.get("syscalls", []), f"{where}.syscalls", "rules")):
        policy.syscalls.append(_syscall(item, f"{where}.syscalls[{i}]"))
    notify = action == "SCMP_ACT_NOTIFY" or any(
        s.action == "SCMP_ACT_NOTIFY" for s in policy.syscalls
    )
    if notify and not policy.listener_path:
        raise _Problem(f"{where}.listenerPath", "missing (SCMP_ACT_NOTIFY needs a listener)")
    return policy


def _intel_rdt(value: Any, where: str) -> pb.LinuxRdt:
    known = ("closID", "schemata", "enableMonitoring")
    spec = _fields(value, where, "closID, schemata, enableMonitoring", known)
    if not spec:
        raise _Problem(where, "sets nothing")
    rdt = pb.LinuxRdt()
    if "closID" in spec:
        clos = _string(spec["closID"], f"{where}.closID", numbers=True, empty=False)
        if clos in (".", "..") or "/" in clos or any(c.isspace() for c in clos):
            raise _Problem(f"{where}.closID", f"invalid resctrl group name {clos!r}")
        rdt.clos_id.value = clos
    if "schemata" in spec:
        lines = _string_list(spec["schemata"], f"{where}.schemata", "lines such as L3:0=ff")
        for i, line in enumerate(lines):
            if ":" not in line or "\n" in line:
                message = f"expected a line such as L3:0=ff, got {line!r}"
                raise _Problem(f"{where}.schemata[{i}]", message)
        rdt.schemata.SetInParent()
        rdt.schemata.value.extend(lines)
    if "enableMonitoring" in spec:
        rdt.enable_monitoring.value = _boolean(
            spec["enableMonitoring"], f"{where}.enableMonitoring"
        )
    return rdt


def parse_linux(spec: dict[str, Any], where: str) -> LinuxSettings:
    """The settings of the :data:`LINUX_KEYS` present in ``spec`` (the ``adjust`` mapping)."""
    fields: dict[str, Any] = {}
    for key, attr, read in (
        ("args", "args", _args),
        ("scheduler", "scheduler", _scheduler),
        ("ioPriority", "io_priority", _io_priority),
        ("memoryPolicy", "memory_policy", _memory_policy),
        ("namespaces", "namespaces", _namespaces),
        ("removeNamespaces", "remove_namespaces", _namespace_types),
        ("netDevices", "net_devices", _net_devices),
        ("removeNetDevices", "remove_net_devices", _interfaces),
        ("seccomp", "seccomp", _seccomp),
        ("intelRdt", "rdt", _intel_rdt),
    ):
        if key in spec:
            fields[attr] = read(spec[key], f"{where}.{key}")
    settings = LinuxSettings(**fields)
    both = set(settings.remove_namespaces) & {kind for kind, _ in settings.namespaces}
    if both:
        raise _Problem(f"{where}.removeNamespaces", f"{min(both)} is also in namespaces")
    both = set(settings.remove_net_devices) & {host for host, _ in settings.net_devices}
    if both:
        raise _Problem(f"{where}.removeNetDevices", f"{min(both)!r} is also in netDevices")
    return settings
