"""Conversions between NRI protobuf messages and OCI runtime-spec (JSON) objects.

OCI objects are plain JSON-compatible dicts as :func:`json.load` returns them. The
``*_to_oci`` helpers validate NRI input and build OCI fragments; the ``*_from_spec``
helpers read an OCI spec and build the NRI messages a runtime reports to plugins.
Every problem is reported as a :class:`SpecError` naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nri.api import api_pb2 as pb
from nri.oci._errors import SpecError

__all__ = [
    "NAMESPACE_TYPES",
    "container_from_spec",
    "devices_from_spec",
    "hooks_from_spec",
    "io_priority_from_spec",
    "linux_container_from_spec",
    "linux_resources_from_oci",
    "linux_resources_from_spec",
    "memory_policy_from_spec",
    "mounts_from_spec",
    "namespaces_from_spec",
    "net_devices_from_spec",
    "rdt_from_spec",
    "rlimits_from_spec",
    "scheduler_from_spec",
    "seccomp_from_spec",
    "sysctl_from_spec",
    "user_from_spec",
]

Spec = dict[str, Any]

#: Linux namespace types as the OCI runtime spec names them.
NAMESPACE_TYPES: tuple[str, ...] = (
    "mount",
    "pid",
    "network",
    "uts",
    "ipc",
    "user",
    "cgroup",
    "time",
)
# Kernel (/proc/<pid>/ns) names accepted as aliases of the OCI names.
_NAMESPACE_ALIASES = {"net": "network", "mnt": "mount"}

_RLIMIT_TYPE = re.compile(r"^RLIMIT_[A-Z]+$")
_HUGEPAGE_SIZE = re.compile(r"^[1-9][0-9]*[KMG]B$")
_DEVICE_TYPES = ("c", "b", "u", "p")
_PROPAGATIONS = ("rprivate", "rshared", "rslave")

_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


# ---------------------------------------------------------------------------
# small typed accessors for untrusted JSON


def _type_name(value: object) -> str:
    return type(value).__name__


def _as_obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(where, f"expected an object, got {_type_name(value)}")
    return value


def _as_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(where, f"expected an array, got {_type_name(value)}")
    return value


def _as_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SpecError(where, f"expected a string, got {_type_name(value)}")
    return value


def _as_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(where, f"expected a boolean, got {_type_name(value)}")
    return value


def _as_int(value: object, where: str, bounds: tuple[int, int] = _INT64) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(where, f"expected an integer, got {_type_name(value)}")
    lo, hi = bounds
    if not lo <= value <= hi:
        raise SpecError(where, f"integer {value} out of range [{lo}, {hi}]")
    return value


def _as_str_list(value: object, where: str) -> list[str]:
    items = _as_list(value, where)
    return [_as_str(v, f"{where}[{i}]") for i, v in enumerate(items)]


def _as_str_map(value: object, where: str) -> dict[str, str]:
    obj = _as_obj(value, where)
    return {k: _as_str(v, f"{where}.{k}") for k, v in obj.items()}


def _opt_obj(parent: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return None if value is None else _as_obj(value, f"{where}.{key}")


def _opt_list(parent: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    return [] if value is None else _as_list(value, f"{where}.{key}")


def _opt_str(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    return "" if value is None else _as_str(value, f"{where}.{key}")


def _opt_int(
    parent: Mapping[str, Any], key: str, where: str, bounds: tuple[int, int] = _INT64
) -> int | None:
    value = parent.get(key)
    return None if value is None else _as_int(value, f"{where}.{key}", bounds)


def _enum_name(enum: Any, value: int, where: str) -> str:
    try:
        return str(enum.Name(value))
    except ValueError:
        raise SpecError(where, f"unknown enum value {value}") from None


def _enum_value(enum: Any, name: str, where: str) -> int:
    try:
        return int(enum.Value(name))
    except ValueError:
        raise SpecError(where, f"unknown value {name!r}") from None


# ---------------------------------------------------------------------------
# NRI -> OCI


def namespace_type(name: str, where: str) -> str:
    """Return the OCI name of namespace type ``name`` (aliases accepted) or raise."""
    canonical = _NAMESPACE_ALIASES.get(name, name)
    if canonical not in NAMESPACE_TYPES:
        raise SpecError(
            where, f"unknown namespace type {name!r} (expected one of {', '.join(NAMESPACE_TYPES)})"
        )
    return canonical


def check_rlimit_type(name: str, where: str) -> str:
    """Validate an rlimit type (``RLIMIT_<NAME>``) and return it."""
    if not _RLIMIT_TYPE.match(name):
        raise SpecError(where, f"invalid rlimit type {name!r} (expected RLIMIT_<NAME>)")
    return name


def check_hugepage_size(size: str, where: str) -> str:
    """Validate a hugepage size (``<n>KB``, ``<n>MB`` or ``<n>GB``) and return it."""
    if not _HUGEPAGE_SIZE.match(size):
        raise SpecError(where, f"invalid hugepage size {size!r} (expected e.g. 2MB or 1GB)")
    return size


def hook_to_oci(hook: pb.Hook, where: str) -> dict[str, Any]:
    """Convert an NRI hook to an OCI hook."""
    if not hook.path:
        raise SpecError(f"{where}.path", "hook without a path")
    out: dict[str, Any] = {"path": hook.path}
    if hook.args:
        out["args"] = list(hook.args)
    if hook.env:
        out["env"] = list(hook.env)
    if hook.HasField("timeout"):
        if hook.timeout.value < 1:
            raise SpecError(
                f"{where}.timeout", f"hook timeout must be at least 1, got {hook.timeout.value}"
            )
        out["timeout"] = hook.timeout.value
    return out


def mount_to_oci(mount: pb.Mount, where: str) -> tuple[dict[str, Any], str]:
    """Convert an NRI mount to an OCI mount; also return its propagation option, if any."""
    # Each read of a protobuf field builds a new Python object: read every field once.
    destination, kind, source = mount.destination, mount.type, mount.source
    if not destination:
        raise SpecError(f"{where}.destination", "mount without a destination")
    out: dict[str, Any] = {"destination": destination}
    if kind:
        out["type"] = kind
    if source:
        out["source"] = source
    propagation = ""
    options = list(mount.options)
    if options:
        out["options"] = options
        for opt in options:
            if opt in _PROPAGATIONS:
                propagation = opt
    return out, propagation


def device_to_oci(device: pb.LinuxDevice, where: str) -> dict[str, Any]:
    """Convert an NRI Linux device to an OCI device."""
    if not device.path:
        raise SpecError(f"{where}.path", "device without a path")
    if device.type not in _DEVICE_TYPES:
        raise SpecError(
            f"{where}.type",
            f"invalid device type {device.type!r} for {device.path} (expected c, b, u or p)",
        )
    out: dict[str, Any] = {
        "path": device.path,
        "type": device.type,
        "major": device.major,
        "minor": device.minor,
    }
    if device.HasField("file_mode"):
        mode = device.file_mode.value
        if mode > 0o777:
            raise SpecError(f"{where}.file_mode", f"file mode {oct(mode)} has bits outside 0o777")
        out["fileMode"] = mode
    if device.HasField("uid"):
        out["uid"] = device.uid.value
    if device.HasField("gid"):
        out["gid"] = device.gid.value
    return out


def device_access(device: pb.LinuxDevice) -> str:
    """Return the cgroup access string upstream grants an injected device."""
    return "rwm" if device.type == "b" else "rw"


def device_cgroup_to_oci(rule: pb.LinuxDeviceCgroup, where: str) -> dict[str, Any]:
    """Convert an NRI device cgroup rule to an OCI one."""
    out: dict[str, Any] = {"allow": rule.allow}
    if rule.type:
        if rule.type not in ("a", "b", "c"):
            raise SpecError(f"{where}.type", f"invalid device rule type {rule.type!r}")
        out["type"] = rule.type
    if rule.HasField("major"):
        out["major"] = rule.major.value
    if rule.HasField("minor"):
        out["minor"] = rule.minor.value
    if rule.access:
        if set(rule.access) - set("rwm"):
            raise SpecError(f"{where}.access", f"invalid device access {rule.access!r}")
        out["access"] = rule.access
    return out


def io_priority_to_oci(prio: pb.LinuxIOPriority, where: str) -> dict[str, Any] | None:
    """Convert an NRI I/O priority; ``None`` means IOPRIO_CLASS_NONE (no priority)."""
    klass: int = getattr(prio, "class")
    if klass == pb.IOPRIO_CLASS_NONE:
        return None
    return {
        "class": _enum_name(pb.IOPrioClass, klass, f"{where}.class"),
        "priority": prio.priority,
    }


def scheduler_to_oci(sched: pb.LinuxScheduler, where: str) -> dict[str, Any] | None:
    """Convert an NRI scheduler; ``None`` means SCHED_NONE (no scheduler settings)."""
    if sched.policy == pb.SCHED_NONE:
        return None
    out: dict[str, Any] = {
        "policy": _enum_name(pb.LinuxSchedulerPolicy, sched.policy, f"{where}.policy")
    }
    if sched.nice:
        out["nice"] = sched.nice
    if sched.priority:
        out["priority"] = sched.priority
    if sched.flags:
        out["flags"] = [
            _enum_name(pb.LinuxSchedulerFlag, f, f"{where}.flags[{i}]")
            for i, f in enumerate(sched.flags)
        ]
    for key in ("runtime", "deadline", "period"):
        value = getattr(sched, key)
        if value:
            out[key] = value
    return out


def seccomp_to_oci(policy: pb.LinuxSeccomp, where: str) -> dict[str, Any]:
    """Convert an NRI seccomp policy to an OCI one."""
    if not policy.default_action:
        raise SpecError(f"{where}.default_action", "seccomp policy without a default action")
    out: dict[str, Any] = {"defaultAction": policy.default_action}
    if policy.HasField("default_errno"):
        out["defaultErrnoRet"] = policy.default_errno.value
    if policy.architectures:
        out["architectures"] = list(policy.architectures)
    if policy.flags:
        out["flags"] = list(policy.flags)
    if policy.listener_path:
        out["listenerPath"] = policy.listener_path
    if policy.listener_metadata:
        out["listenerMetadata"] = policy.listener_metadata
    syscalls = []
    for i, sc in enumerate(policy.syscalls):
        at = f"{where}.syscalls[{i}]"
        if not sc.names:
            raise SpecError(f"{at}.names", "seccomp syscall rule without names")
        if not sc.action:
            raise SpecError(f"{at}.action", "seccomp syscall rule without an action")
        rule: dict[str, Any] = {"names": list(sc.names), "action": sc.action}
        if sc.HasField("errno_ret"):
            rule["errnoRet"] = sc.errno_ret.value
        args = []
        for j, arg in enumerate(sc.args):
            if not arg.op:
                raise SpecError(f"{at}.args[{j}].op", "seccomp argument without an operator")
            oci_arg: dict[str, Any] = {"index": arg.index, "value": arg.value, "op": arg.op}
            if arg.value_two:
                oci_arg["valueTwo"] = arg.value_two
            args.append(oci_arg)
        if args:
            rule["args"] = args
        syscalls.append(rule)
    if syscalls:
        out["syscalls"] = syscalls
    return out


def memory_policy_to_oci(policy: pb.LinuxMemoryPolicy, where: str) -> dict[str, Any]:
    """Convert an NRI memory policy to an OCI one."""
    out: dict[str, Any] = {"mode": _enum_name(pb.MpolMode, policy.mode, f"{where}.mode")}
    if policy.nodes:
        out["nodes"] = policy.nodes
    if policy.flags:
        out["flags"] = [
            _enum_name(pb.MpolFlag, f, f"{where}.flags[{i}]") for i, f in enumerate(policy.flags)
        ]
    return out


def net_device_to_oci(device: pb.LinuxNetDevice) -> dict[str, Any]:
    """Convert an NRI net device to an OCI one."""
    return {"name": device.name} if device.name else {}


# ---------------------------------------------------------------------------
# OCI -> NRI


def mounts_from_spec(spec: Mapping[str, Any]) -> list[pb.Mount]:
    """Return the spec's ``mounts`` as NRI mounts."""
    mounts = []
    for i, raw in enumerate(_opt_list(spec, "mounts", "")):
        where = f"mounts[{i}]"
        m = _as_obj(raw, where)
        dest = _opt_str(m, "destination", where)
        if not dest:
            raise SpecError(f"{where}.destination", "mount without a destination")
        mounts.append(
            pb.Mount(
                destination=dest,
                type=_opt_str(m, "type", where),
                source=_opt_str(m, "source", where),
                options=_as_str_list(m.get("options", []), f"{where}.options"),
            )
        )
    return mounts


def _hook_from_oci(raw: object, where: str) -> pb.Hook:
    h = _as_obj(raw, where)
    path = _opt_str(h, "path", where)
    if not path:
        raise SpecError(f"{where}.path", "hook without a path")
    hook = pb.Hook(
        path=path,
        args=_as_str_list(h.get("args", []), f"{where}.args"),
        env=_as_str_list(h.get("env", []), f"{where}.env"),
    )
    timeout = _opt_int(h, "timeout", where)
    if timeout is not None:
        hook.timeout.value = timeout
    return hook


_HOOK_STAGES = (
    ("prestart", "prestart"),
    ("createRuntime", "create_runtime"),
    ("createContainer", "create_container"),
    ("startContainer", "start_container"),
    ("poststart", "poststart"),
    ("poststop", "poststop"),
)


def hooks_from_spec(spec: Mapping[str, Any]) -> pb.Hooks | None:
    """Return the spec's OCI hooks as NRI hooks, or ``None`` if it has none."""
    raw = _opt_obj(spec, "hooks", "")
    if raw is None:
        return None
    hooks = pb.Hooks()
    for oci_key, nri_key in _HOOK_STAGES:
        stage = getattr(hooks, nri_key)
        for i, h in enumerate(_opt_list(raw, oci_key, "hooks")):
            stage.append(_hook_from_oci(h, f"hooks.{oci_key}[{i}]"))
    return hooks


def rlimits_from_spec(spec: Mapping[str, Any]) -> list[pb.POSIXRlimit]:
    """Return ``process.rlimits`` as NRI rlimits."""
    process = _opt_obj(spec, "process", "") or {}
    out = []
    for i, raw in enumerate(_opt_list(process, "rlimits", "process")):
        where = f"process.rlimits[{i}]"
        r = _as_obj(raw, where)
        rtype = check_rlimit_type(_opt_str(r, "type", where), f"{where}.type")
        out.append(
            pb.POSIXRlimit(
                type=rtype,
                hard=_opt_int(r, "hard", where, _UINT64) or 0,
                soft=_opt_int(r, "soft", where, _UINT64) or 0,
            )
        )
    return out


def user_from_spec(spec: Mapping[str, Any]) -> pb.User | None:
    """Return ``process.user`` as an NRI user, or ``None`` if unset."""
    process = _opt_obj(spec, "process", "") or {}
    user = _opt_obj(process, "user", "process")
    if user is None:
        return None
    where = "process.user"
    gids = [
        _as_int(g, f"{where}.additionalGids[{i}]", _UINT32)
        for i, g in enumerate(_opt_list(user, "additionalGids", where))
    ]
    return pb.User(
        uid=_opt_int(user, "uid", where, _UINT32) or 0,
        gid=_opt_int(user, "gid", where, _UINT32) or 0,
        additional_gids=gids,
    )


def _linux(spec: Mapping[str, Any]) -> dict[str, Any]:
    return _opt_obj(spec, "linux", "") or {}


def namespaces_from_spec(spec: Mapping[str, Any]) -> list[pb.LinuxNamespace]:
    """Return ``linux.namespaces`` as NRI namespaces."""
    out = []
    for i, raw in enumerate(_opt_list(_linux(spec), "namespaces", "linux")):
        where = f"linux.namespaces[{i}]"
        ns = _as_obj(raw, where)
        ntype = namespace_type(_opt_str(ns, "type", where), f"{where}.type")
        out.append(pb.LinuxNamespace(type=ntype, path=_opt_str(ns, "path", where)))
    return out


def devices_from_spec(spec: Mapping[str, Any]) -> list[pb.LinuxDevice]:
    """Return ``linux.devices`` as NRI devices."""
    out = []
    for i, raw in enumerate(_opt_list(_linux(spec), "devices", "linux")):
        where = f"linux.devices[{i}]"
        d = _as_obj(raw, where)
        path = _opt_str(d, "path", where)
        if not path:
            raise SpecError(f"{where}.path", "device without a path")
        dtype = _opt_str(d, "type", where)
        if dtype not in _DEVICE_TYPES:
            raise SpecError(f"{where}.type", f"invalid device type {dtype!r} for {path}")
        dev = pb.LinuxDevice(
            path=path,
            type=dtype,
            major=_opt_int(d, "major", where) or 0,
            minor=_opt_int(d, "minor", where) or 0,
        )
        mode = _opt_int(d, "fileMode", where, (0, 0o777))
        if mode is not None:
            dev.file_mode.value = mode
        uid = _opt_int(d, "uid", where, _UINT32)
        if uid is not None:
            dev.uid.value = uid
        gid = _opt_int(d, "gid", where, _UINT32)
        if gid is not None:
            dev.gid.value = gid
        out.append(dev)
    return out


def _set_opt(msg: Any, field: str, value: int | bool | None) -> None:
    if value is not None:
        getattr(msg, field).value = value


def linux_resources_from_oci(
    resources: Mapping[str, Any], where: str = "linux.resources"
) -> pb.LinuxResources:
    """Convert an OCI ``linux.resources`` object to NRI resources.

    Block I/O and RDT classes have no OCI representation and are left unset.
    """
    res = _as_obj(resources, where)
    out = pb.LinuxResources()
    mem = _opt_obj(res, "memory", where)
    if mem is not None:
        at = f"{where}.memory"
        out.memory.SetInParent()
        for key, field in (
            ("limit", "limit"),
            ("reservation", "reservation"),
            ("swap", "swap"),
            ("kernel", "kernel"),
            ("kernelTCP", "kernel_tcp"),
        ):
            _set_opt(out.memory, field, _opt_int(mem, key, at))
        _set_opt(out.memory, "swappiness", _opt_int(mem, "swappiness", at, _UINT64))
        for key, field in (
            ("disableOOMKiller", "disable_oom_killer"),
            ("useHierarchy", "use_hierarchy"),
        ):
            if mem.get(key) is not None:
                getattr(out.memory, field).value = _as_bool(mem[key], f"{at}.{key}")
    cpu = _opt_obj(res, "cpu", where)
    if cpu is not None:
        at = f"{where}.cpu"
        out.cpu.SetInParent()
        _set_opt(out.cpu, "shares", _opt_int(cpu, "shares", at, _UINT64))
        _set_opt(out.cpu, "quota", _opt_int(cpu, "quota", at))
        _set_opt(out.cpu, "period", _opt_int(cpu, "period", at, _UINT64))
        _set_opt(out.cpu, "realtime_runtime", _opt_int(cpu, "realtimeRuntime", at))
        _set_opt(out.cpu, "realtime_period", _opt_int(cpu, "realtimePeriod", at, _UINT64))
        out.cpu.cpus = _opt_str(cpu, "cpus", at)
        out.cpu.mems = _opt_str(cpu, "mems", at)
    for i, raw in enumerate(_opt_list(res, "hugepageLimits", where)):
        at = f"{where}.hugepageLimits[{i}]"
        h = _as_obj(raw, at)
        out.hugepage_limits.append(
            pb.HugepageLimit(
                page_size=check_hugepage_size(_opt_str(h, "pageSize", at), f"{at}.pageSize"),
                limit=_opt_int(h, "limit", at, _UINT64) or 0,
            )
        )
    for i, raw in enumerate(_opt_list(res, "devices", where)):
        at = f"{where}.devices[{i}]"
        d = _as_obj(raw, at)
        rule = pb.LinuxDeviceCgroup(
            allow=_as_bool(d.get("allow", False), f"{at}.allow"),
            type=_opt_str(d, "type", at),
            access=_opt_str(d, "access", at),
        )
        _set_opt(rule, "major", _opt_int(d, "major", at))
        _set_opt(rule, "minor", _opt_int(d, "minor", at))
        out.devices.append(rule)
    pids = _opt_obj(res, "pids", where)
    if pids is not None:
        limit = _opt_int(pids, "limit", f"{where}.pids")
        out.pids.limit = -1 if limit is None else limit
    unified = res.get("unified")
    if unified is not None:
        out.unified.update(_as_str_map(unified, f"{where}.unified"))
    return out


def linux_resources_from_spec(spec: Mapping[str, Any]) -> pb.LinuxResources | None:
    """Return the spec's ``linux.resources`` as NRI resources, or ``None`` if unset."""
    res = _opt_obj(_linux(spec), "resources", "linux")
    return None if res is None else linux_resources_from_oci(res)


def io_priority_from_spec(spec: Mapping[str, Any]) -> pb.LinuxIOPriority | None:
    """Return ``process.ioPriority`` as an NRI I/O priority, or ``None`` if unset."""
    process = _opt_obj(spec, "process", "") or {}
    prio = _opt_obj(process, "ioPriority", "process")
    if prio is None:
        return None
    where = "process.ioPriority"
    klass = _enum_value(pb.IOPrioClass, _opt_str(prio, "class", where), f"{where}.class")
    return pb.LinuxIOPriority(
        priority=_opt_int(prio, "priority", where, _INT32) or 0, **{"class": klass}
    )


def scheduler_from_spec(spec: Mapping[str, Any]) -> pb.LinuxScheduler | None:
    """Return ``process.scheduler`` as an NRI scheduler, or ``None`` if unset."""
    process = _opt_obj(spec, "process", "") or {}
    sched = _opt_obj(process, "scheduler", "process")
    if sched is None:
        return None
    where = "process.scheduler"
    policy = _enum_value(
        pb.LinuxSchedulerPolicy, _opt_str(sched, "policy", where), f"{where}.policy"
    )
    flags = [
        _enum_value(pb.LinuxSchedulerFlag, _as_str(f, f"{where}.flags[{i}]"), f"{where}.flags[{i}]")
        for i, f in enumerate(_opt_list(sched, "flags", where))
    ]
    return pb.LinuxScheduler(
        policy=policy,  # type: ignore[arg-type]
        nice=_opt_int(sched, "nice", where, _INT32) or 0,
        priority=_opt_int(sched, "priority", where, _INT32) or 0,
        flags=flags,  # type: ignore[arg-type]
        runtime=_opt_int(sched, "runtime", where, _UINT64) or 0,
        deadline=_opt_int(sched, "deadline", where, _UINT64) or 0,
        period=_opt_int(sched, "period", where, _UINT64) or 0,
    )


def seccomp_from_spec(spec: Mapping[str, Any]) -> pb.LinuxSeccomp | None:
    """Return ``linux.seccomp`` as an NRI seccomp policy, or ``None`` if unset."""
    sec = _opt_obj(_linux(spec), "seccomp", "linux")
    if sec is None:
        return None
    where = "linux.seccomp"
    out = pb.LinuxSeccomp(
        default_action=_opt_str(sec, "defaultAction", where),
        architectures=_as_str_list(sec.get("architectures", []), f"{where}.architectures"),
        flags=_as_str_list(sec.get("flags", []), f"{where}.flags"),
        listener_path=_opt_str(sec, "listenerPath", where),
        listener_metadata=_opt_str(sec, "listenerMetadata", where),
    )
    _set_opt(out, "default_errno", _opt_int(sec, "defaultErrnoRet", where, _UINT32))
    for i, raw in enumerate(_opt_list(sec, "syscalls", where)):
        at = f"{where}.syscalls[{i}]"
        sc = _as_obj(raw, at)
        rule = pb.LinuxSyscall(
            names=_as_str_list(sc.get("names", []), f"{at}.names"),
            action=_opt_str(sc, "action", at),
        )
        _set_opt(rule, "errno_ret", _opt_int(sc, "errnoRet", at, _UINT32))
        for j, raw_arg in enumerate(_opt_list(sc, "args", at)):
            aat = f"{at}.args[{j}]"
            arg = _as_obj(raw_arg, aat)
            rule.args.append(
                pb.LinuxSeccompArg(
                    index=_opt_int(arg, "index", aat, _UINT32) or 0,
                    value=_opt_int(arg, "value", aat, _UINT64) or 0,
                    value_two=_opt_int(arg, "valueTwo", aat, _UINT64) or 0,
                    op=_opt_str(arg, "op", aat),
                )
            )
        out.syscalls.append(rule)
    return out


def sysctl_from_spec(spec: Mapping[str, Any]) -> dict[str, str]:
    """Return ``linux.sysctl`` (empty if unset)."""
    raw = _linux(spec).get("sysctl")
    return {} if raw is None else _as_str_map(raw, "linux.sysctl")


def net_devices_from_spec(spec: Mapping[str, Any]) -> dict[str, pb.LinuxNetDevice]:
    """Return ``linux.netDevices`` keyed by host interface name (empty if unset)."""
    raw = _linux(spec).get("netDevices")
    if raw is None:
        return {}
    out = {}
    for host, dev in _as_obj(raw, "linux.netDevices").items():
        where = f"linux.netDevices.{host}"
        out[host] = pb.LinuxNetDevice(name=_opt_str(_as_obj(dev, where), "name", where))
    return out


def rdt_from_spec(spec: Mapping[str, Any]) -> pb.LinuxRdt | None:
    """Return ``linux.intelRdt`` as NRI RDT settings, or ``None`` if unset."""
    rdt = _opt_obj(_linux(spec), "intelRdt", "linux")
    if rdt is None:
        return None
    where = "linux.intelRdt"
    out = pb.LinuxRdt()
    if rdt.get("closID") is not None:
        out.clos_id.value = _as_str(rdt["closID"], f"{where}.closID")
    if rdt.get("schemata") is not None:
        out.schemata.SetInParent()
        out.schemata.value.extend(_as_str_list(rdt["schemata"], f"{where}.schemata"))
    if rdt.get("enableMonitoring") is not None:
        out.enable_monitoring.value = _as_bool(rdt["enableMonitoring"], f"{where}.enableMonitoring")
    return out


def memory_policy_from_spec(spec: Mapping[str, Any]) -> pb.LinuxMemoryPolicy | None:
    """Return ``linux.memoryPolicy`` as an NRI memory policy, or ``None`` if unset."""
    mp = _opt_obj(_linux(spec), "memoryPolicy", "linux")
    if mp is None:
        return None
    where = "linux.memoryPolicy"
    flags = [
        _enum_value(pb.MpolFlag, _as_str(f, f"{where}.flags[{i}]"), f"{where}.flags[{i}]")
        for i, f in enumerate(_opt_list(mp, "flags", where))
    ]
    return pb.LinuxMemoryPolicy(
        mode=_enum_value(pb.MpolMode, _opt_str(mp, "mode", where), f"{where}.mode"),  # type: ignore[arg-type]
        nodes=_opt_str(mp, "nodes", where),
        flags=flags,  # type: ignore[arg-type]
    )


def linux_container_from_spec(spec: Mapping[str, Any]) -> pb.LinuxContainer:
    """Return the Linux part of an NRI container description from an OCI spec."""
    linux = _linux(spec)
    process = _opt_obj(spec, "process", "") or {}
    out = pb.LinuxContainer(
        namespaces=namespaces_from_spec(spec),
        devices=devices_from_spec(spec),
        cgroups_path=_opt_str(linux, "cgroupsPath", "linux"),
        sysctl=sysctl_from_spec(spec),
        net_devices=net_devices_from_spec(spec),
    )
    resources = linux_resources_from_spec(spec)
    if resources is not None:
        out.resources.CopyFrom(resources)
    _set_opt(out, "oom_score_adj", _opt_int(process, "oomScoreAdj", "process"))
    for field, value in (
        ("io_priority", io_priority_from_spec(spec)),
        ("seccomp_policy", seccomp_from_spec(spec)),
        ("scheduler", scheduler_from_spec(spec)),
        ("rdt", rdt_from_spec(spec)),
    ):
        if value is not None:
            getattr(out, field).CopyFrom(value)
    return out


def container_from_spec(
    spec: Mapping[str, Any],
    *,
    id: str,
    pod_sandbox_id: str,
    name: str,
    state: pb.ContainerState = pb.CONTAINER_UNKNOWN,
    labels: Mapping[str, str] | None = None,
    pid: int = 0,
    created_at: int = 0,
    started_at: int = 0,
    finished_at: int = 0,
    exit_code: int = 0,
    status_reason: str = "",
    status_message: str = "",
    cdi_devices: list[str] | tuple[str, ...] = (),
    image: pb.Image | None = None,
) -> pb.Container:
    """Describe a container to plugins: runtime-known fields plus everything in its spec.

    Args, env, mounts, hooks, annotations, rlimits, user and the Linux settings
    (namespaces, devices, resources, OOM score, cgroups path, I/O priority,
    scheduler, seccomp, sysctl, net devices, RDT) come from ``spec``.
    """
    _as_obj(spec, "spec")
    process = _opt_obj(spec, "process", "") or {}
    out = pb.Container(
        id=id,
        pod_sandbox_id=pod_sandbox_id,
        name=name,
        state=state,
        labels=dict(labels or {}),
        annotations=_as_str_map(spec.get("annotations", {}), "annotations"),
        args=_as_str_list(process.get("args", []), "process.args"),
        env=_as_str_list(process.get("env", []), "process.env"),
        mounts=mounts_from_spec(spec),
        pid=pid,
        rlimits=rlimits_from_spec(spec),
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        exit_code=exit_code,
        status_reason=status_reason,
        status_message=status_message,
        CDI_devices=[pb.CDIDevice(name=n) for n in cdi_devices],
    )
    hooks = hooks_from_spec(spec)
    if hooks is not None:
        out.hooks.CopyFrom(hooks)
    out.linux.CopyFrom(linux_container_from_spec(spec))
    user = user_from_spec(spec)
    if user is not None:
        out.user.CopyFrom(user)
    if image is not None:
        out.image.CopyFrom(image)
    return out
