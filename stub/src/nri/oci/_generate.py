"""Apply NRI container adjustments and updates to an OCI runtime spec.

This is the Python counterpart of upstream's ``pkg/runtime-tools/generate``: a
:class:`SpecGenerator` wraps an OCI spec dict and edits it in place.
"""

from __future__ import annotations

import copy
import logging
import posixpath
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nri.api import api_pb2 as pb
from nri.oci._convert import (
    check_hugepage_size,
    check_rlimit_type,
    device_access,
    device_cgroup_to_oci,
    device_to_oci,
    hook_to_oci,
    io_priority_to_oci,
    memory_policy_to_oci,
    mount_to_oci,
    namespace_type,
    net_device_to_oci,
    scheduler_to_oci,
    seccomp_to_oci,
)
from nri.oci._errors import SpecError

__all__ = [
    "UNLIMITED_PIDS_LIMIT",
    "BlockIOResolver",
    "CDIDeviceInjector",
    "MapFilter",
    "PropagationChecker",
    "RdtResolver",
    "ResourceChecker",
    "SpecGenerator",
    "rdt_class_as_clos_id",
    "sort_mounts",
]

log = logging.getLogger(__name__)

Spec = dict[str, Any]

#: Resolves a block I/O class name to an OCI ``linux.resources.blockIO`` object.
BlockIOResolver = Callable[[str], Mapping[str, Any]]
#: Resolves an RDT class name to an OCI ``linux.intelRdt`` object.
RdtResolver = Callable[[str], Mapping[str, Any]]
#: Resolves fully qualified CDI device names and injects them into the spec.
CDIDeviceInjector = Callable[[Spec, list[str]], None]
#: Checks (and may fix up) the final ``linux.resources``; raises to reject.
ResourceChecker = Callable[[dict[str, Any]], None]
#: Filters or rejects (by raising) annotations or sysctls before they are applied.
MapFilter = Callable[[dict[str, str]], dict[str, str]]
#: Checks that a mount source has one of the given host propagations; raises if not.
PropagationChecker = Callable[[str, tuple[str, ...]], None]

#: Pids limit value meaning "unlimited" (removes ``linux.resources.pids``).
UNLIMITED_PIDS_LIMIT = -1


def _marked(key: str) -> tuple[str, bool]:
    """Split a removal marker: ``"-x"`` -> ``("x", True)``, ``"x"`` -> ``("x", False)``."""
    if key.startswith("-"):
        return key[1:], True
    return key, False


def _mount_depth(destination: str) -> int:
    d = destination
    if d.startswith("/") and "//" not in d and "/." not in d and not d.endswith("/"):
        return d.count("/")  # an already clean absolute path, the common case
    cleaned = posixpath.normpath(destination)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned.count("/")


def sort_mounts(mounts: list[dict[str, Any]]) -> None:
    """Sort OCI mounts in place the way upstream does: by path depth, then destination.

    Parents thus always precede the mounts nested under them.
    """
    mounts.sort(key=_mount_order)


def _mount_order(mount: dict[str, Any]) -> tuple[int, Any]:
    destination = mount.get("destination", "")
    return _mount_depth(str(destination)), destination


class SpecGenerator:
    """Applies NRI adjustments and resource updates to an OCI spec dict, in place.

    Options mirror upstream's generator options:

    ``blockio_resolver``
        Maps a block I/O class to an OCI ``blockIO`` object. Without one, block I/O
        classes are ignored (upstream's default) with a warning.
    ``rdt_resolver``
        Maps an RDT class to an OCI ``intelRdt`` object. Without one RDT classes are
        ignored (upstream's default); :func:`rdt_class_as_clos_id` is the resolver
        containerd uses (the class name is the resctrl group).
    ``cdi_injector``
        Resolves and injects CDI devices into the spec. Without one, the requested
        names are only recorded in :attr:`cdi_devices` for the runtime to resolve.
    ``resource_checker``
        Called with ``linux.resources`` after resources are adjusted or updated, to
        check them against what the host supports; raise to reject.
    ``annotation_filter`` / ``sysctl_filter``
        Filter (return a new mapping) or reject (raise) annotations / sysctls.
    ``propagation_checker``
        Called for ``rshared``/``rslave`` mounts with the source and the acceptable
        host propagations; raise if the host mount does not qualify. Skipped if unset.

    Exceptions raised by callbacks that are not :class:`SpecError` are wrapped in one.

    Results match upstream's generator (which containerd and CRI-O use): rlimits are
    appended, ``rshared``/``rslave`` mounts set the rootfs propagation to ``rshared``/
    ``rslave``, RDT and block I/O classes need a resolver. Where this generator differs,
    it rejects what upstream would write into a broken spec (an OOM score adjustment outside
    [-1000, 1000], an empty key), and it applies every memory field of an adjustment
    where upstream's applies only the limit (and the swap limit with it).
    """

    def __init__(
        self,
        spec: Spec | None = None,
        *,
        blockio_resolver: BlockIOResolver | None = None,
        rdt_resolver: RdtResolver | None = None,
        cdi_injector: CDIDeviceInjector | None = None,
        resource_checker: ResourceChecker | None = None,
        annotation_filter: MapFilter | None = None,
        sysctl_filter: MapFilter | None = None,
        propagation_checker: PropagationChecker | None = None,
    ) -> None:
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise SpecError("spec", f"expected an object, got {type(spec).__name__}")
        self._spec = spec
        self._blockio_resolver = blockio_resolver
        self._rdt_resolver = rdt_resolver
        self._cdi_injector = cdi_injector
        self._resource_checker = resource_checker
        self._annotation_filter = annotation_filter
        self._sysctl_filter = sysctl_filter
        self._propagation_checker = propagation_checker
        self._cdi_devices: list[str] = []

    @property
    def spec(self) -> Spec:
        """The (adjusted) spec dict; the same object the generator was given."""
        return self._spec

    @property
    def cdi_devices(self) -> list[str]:
        """CDI device names requested so far but left to the runtime (no injector set)."""
        return list(self._cdi_devices)

    # -- structure helpers -------------------------------------------------

    def _obj(self, path: str) -> dict[str, Any]:
        """Return the object at dotted ``path``, creating missing levels."""
        node = self._spec
        walked = []
        for key in path.split("."):
            walked.append(key)
            child = node.get(key)
            if child is None:
                child = {"cwd": "/"} if walked == ["process"] else {}
                node[key] = child
            elif not isinstance(child, dict):
                raise SpecError(".".join(walked), f"expected an object, got {type(child).__name__}")
            node = child
        return node

    def _peek(self, path: str) -> dict[str, Any] | None:
        """Return the object at dotted ``path`` if present, without creating it."""
        node: Any = self._spec
        walked = []
        for key in path.split("."):
            walked.append(key)
            node = node.get(key)
            if node is None:
                return None
            if not isinstance(node, dict):
                raise SpecError(".".join(walked), f"expected an object, got {type(node).__name__}")
        return node  # type: ignore[no-any-return]

    def _list(self, parent: dict[str, Any], key: str, where: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            value = []
            parent[key] = value
        elif not isinstance(value, list):
            raise SpecError(where, f"expected an array, got {type(value).__name__}")
        return value

    def _call(self, where: str, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(where, f"{what}: {exc}") from exc

    # -- entry points ------------------------------------------------------

    def adjust(self, adjustment: pb.ContainerAdjustment | None) -> None:
        """Apply every property of an NRI container adjustment, in upstream's order."""
        if adjustment is None:
            return
        a = adjustment
        lx = a.linux
        self.adjust_annotations(a.annotations)
        self.adjust_env(a.env)
        self.adjust_args(a.args)
        if a.HasField("hooks"):
            self.adjust_hooks(a.hooks)
        self.inject_cdi_devices(d.name for d in a.CDI_devices)
        self.adjust_devices(lx.devices)
        self.adjust_cgroups_path(lx.cgroups_path)
        if lx.HasField("oom_score_adj"):
            self.adjust_oom_score_adj(lx.oom_score_adj.value)
        if lx.HasField("io_priority"):
            self.adjust_io_priority(lx.io_priority)
        if lx.HasField("scheduler"):
            self.adjust_scheduler(lx.scheduler)
        if lx.HasField("seccomp_policy"):
            self.adjust_seccomp_policy(lx.seccomp_policy)
        self.adjust_namespaces(lx.namespaces)
        self.adjust_sysctl(lx.sysctl)
        self.adjust_net_devices(lx.net_devices)
        if lx.HasField("memory_policy"):
            self.adjust_memory_policy(lx.memory_policy)
        if lx.HasField("resources"):
            self.adjust_resources(lx.resources)
        if lx.HasField("rdt"):
            self.adjust_rdt(lx.rdt)
        self.adjust_mounts(a.mounts)
        self.adjust_rlimits(a.rlimits)

    def update(self, update: pb.ContainerUpdate) -> None:
        """Apply an NRI container update (its Linux resources) to the spec."""
        if update.linux.HasField("resources"):
            self.adjust_resources(update.linux.resources, where="update.linux.resources")

    def apply_update(self, resources: pb.LinuxResources) -> None:
        """Apply updated Linux resources to the spec (same rules as adjustment)."""
        self.adjust_resources(resources, where="update.linux.resources")

    # -- individual adjustments ---------------------------------------------

    def adjust_annotations(self, annotations: Mapping[str, str]) -> None:
        """Add, replace or (for ``"-key"``) remove annotations."""
        if not annotations:
            return
        items = dict(annotations)
        if self._annotation_filter is not None:
            filt = self._annotation_filter
            items = self._call("annotations", "annotation filter", lambda: filt(items))
        current: dict[str, Any] | None = None
        for key, value in sorted(items.items()):
            name, remove = _marked(key)
            if not name:
                raise SpecError("annotations", f"invalid annotation key {key!r}")
            if current is None:
                current = self._spec.get("annotations")
                if current is None:
                    current = self._spec["annotations"] = {}
                elif not isinstance(current, dict):
                    raise SpecError("annotations", "expected an object")
            if remove:
                log.debug("remove annotation %s", name)
                current.pop(name, None)
            else:
                log.debug("add annotation %s=%s", name, value)
                current[name] = value

    def adjust_env(self, env: Iterable[pb.KeyValue]) -> None:
        """Replace, append or (for ``"-NAME"``) remove environment variables.

        Existing variables keep their position; new ones are appended in order.
        """
        pairs = [(kv.key, kv.value) for kv in env]
        if not pairs:
            return
        mod: dict[str, tuple[str, bool]] = {}  # name -> (value, marked for removal)
        for i, (key, value) in enumerate(pairs):
            name, remove = _marked(key)
            if not name or "=" in name:
                raise SpecError(f"adjustment.env[{i}].key", f"invalid variable name {key!r}")
            mod[name] = (value, remove)
        if self._peek("process") is None and all(remove for _, remove in mod.values()):
            return  # only removals and no process: nothing to do
        process = self._obj("process")
        old = self._list(process, "env", "process.env")
        new = _EnvList()
        for i, entry in enumerate(old):
            if not isinstance(entry, str):
                raise SpecError(f"process.env[{i}]", "expected a string")
            name, sep, value = entry.partition("=")
            if not sep:
                continue  # upstream drops malformed entries when rewriting env
            found = mod.pop(name, None)
            if found is None:
                new.set(name, value)
            elif not found[1]:
                new.set(name, found[0])
        for key, value in pairs:
            if key in mod and not key.startswith("-"):
                new.set(key, value)
        process["env"] = new.entries

    def adjust_args(self, args: Iterable[str]) -> None:
        """Replace the process arguments; a leading ``""`` only marks a forced update."""
        args = list(args)
        if args and args[0] == "":
            args = args[1:]
        if args:
            self._obj("process")["args"] = args

    def adjust_hooks(self, hooks: pb.Hooks) -> None:
        """Append OCI hooks of every stage (hooks accumulate, never replace)."""
        stages = (
            ("prestart", hooks.prestart),
            ("poststart", hooks.poststart),
            ("poststop", hooks.poststop),
            ("createRuntime", hooks.create_runtime),
            ("createContainer", hooks.create_container),
            ("startContainer", hooks.start_container),
        )
        converted = [
            (stage, [hook_to_oci(h, f"adjustment.hooks.{stage}[{i}]") for i, h in enumerate(hs)])
            for stage, hs in stages
        ]
        if not any(hs for _, hs in converted):
            return
        oci_hooks = self._obj("hooks")
        for stage, hs in converted:
            if hs:
                self._list(oci_hooks, stage, f"hooks.{stage}").extend(hs)

    def inject_cdi_devices(self, names: Iterable[str]) -> None:
        """Inject CDI devices by fully qualified name (or record them, see class doc)."""
        names = list(names)
        if not names:
            return
        for i, n in enumerate(names):
            if not n:
                raise SpecError(f"adjustment.CDI_devices[{i}].name", "empty CDI device name")
        if self._cdi_injector is None:
            self._cdi_devices.extend(names)
            return
        injector = self._cdi_injector
        self._call(
            "adjustment.CDI_devices", "CDI device injection", lambda: injector(self._spec, names)
        )

    def adjust_devices(self, devices: Iterable[pb.LinuxDevice]) -> None:
        """Add or replace devices (granting cgroup access), or remove ``"-/dev/x"``.

        In order, each device first removes any device at its path; a device added
        twice ends up once, at the position of its last addition. Every added device
        appends an allow rule to ``linux.resources.devices``.
        """
        touched: set[str] = set()
        added: dict[str, dict[str, Any]] = {}  # insertion order = order of last addition
        rules: list[dict[str, Any]] = []
        for i, d in enumerate(devices):
            where = f"adjustment.linux.devices[{i}]"
            path, remove = _marked(d.path)
            if not path:
                raise SpecError(f"{where}.path", "device without a path")
            touched.add(path)
            added.pop(path, None)
            if remove:
                continue
            added[path] = device_to_oci(d, where)
            rules.append(
                {
                    "allow": True,
                    "type": d.type,
                    "major": d.major,
                    "minor": d.minor,
                    "access": device_access(d),
                }
            )
        if not touched:
            return
        existing = self._peek("linux")
        if existing is not None and existing.get("devices") is not None:
            devs = self._list(existing, "devices", "linux.devices")
            devs[:] = [
                x
                for x in devs
                if not (
                    isinstance(x, dict) and isinstance(p := x.get("path"), str) and p in touched
                )
            ]
        if not rules:
            return
        # A device added, then removed, keeps its cgroup rule (as upstream).
        self._list(self._obj("linux"), "devices", "linux.devices").extend(added.values())
        self._list(self._obj("linux.resources"), "devices", "linux.resources.devices").extend(rules)

    def adjust_cgroups_path(self, path: str) -> None:
        """Set ``linux.cgroupsPath`` if ``path`` is not empty."""
        if path:
            self._obj("linux")["cgroupsPath"] = path

    def adjust_oom_score_adj(self, score: int) -> None:
        """Set ``process.oomScoreAdj``."""
        if not -1000 <= score <= 1000:
            raise SpecError(
                "adjustment.linux.oom_score_adj",
                f"OOM score adjustment {score} not in [-1000, 1000]",
            )
        self._obj("process")["oomScoreAdj"] = score

    def adjust_io_priority(self, prio: pb.LinuxIOPriority) -> None:
        """Set ``process.ioPriority``; class IOPRIO_CLASS_NONE removes it."""
        oci = io_priority_to_oci(prio, "adjustment.linux.io_priority")
        process = self._obj("process")
        if oci is None:
            process.pop("ioPriority", None)
        else:
            process["ioPriority"] = oci

    def adjust_scheduler(self, sched: pb.LinuxScheduler) -> None:
        """Set ``process.scheduler``; policy SCHED_NONE removes it."""
        oci = scheduler_to_oci(sched, "adjustment.linux.scheduler")
        process = self._obj("process")
        if oci is None:
            process.pop("scheduler", None)
        else:
            process["scheduler"] = oci

    def adjust_seccomp_policy(self, policy: pb.LinuxSeccomp) -> None:
        """Replace ``linux.seccomp`` with the given policy."""
        self._obj("linux")["seccomp"] = seccomp_to_oci(policy, "adjustment.linux.seccomp_policy")

    def adjust_namespaces(self, namespaces: Iterable[pb.LinuxNamespace]) -> None:
        """Add or replace namespaces by type, or remove ``"-type"``."""
        for i, ns in enumerate(namespaces):
            where = f"adjustment.linux.namespaces[{i}]"
            key, remove = _marked(ns.type)
            ntype = namespace_type(key, f"{where}.type")
            if remove:
                linux = self._peek("linux")
                if linux is None or linux.get("namespaces") is None:
                    continue
                current = self._list(linux, "namespaces", "linux.namespaces")
                current[:] = [x for x in current if not _is_namespace(x, ntype)]
                continue
            current = self._list(self._obj("linux"), "namespaces", "linux.namespaces")
            new = _namespace(ntype, ns.path)
            for j, x in enumerate(current):
                if _is_namespace(x, ntype):
                    current[j] = new
                    break
            else:
                current.append(new)

    def adjust_sysctl(self, sysctl: Mapping[str, str]) -> None:
        """Set or (for ``"-key"``) remove ``linux.sysctl`` entries."""
        if not sysctl:
            return
        items = dict(sysctl)
        if self._sysctl_filter is not None:
            filt = self._sysctl_filter
            items = self._call("adjustment.linux.sysctl", "sysctl filter", lambda: filt(items))
        current: dict[str, Any] | None = None
        for key, value in sorted(items.items()):
            name, remove = _marked(key)
            if not name:
                raise SpecError("adjustment.linux.sysctl", f"invalid sysctl key {key!r}")
            if remove:
                linux = self._peek("linux")
                if linux is not None and isinstance(linux.get("sysctl"), dict):
                    linux["sysctl"].pop(name, None)
            else:
                if current is None:
                    current = self._obj("linux.sysctl")
                current[name] = value

    def adjust_net_devices(self, devices: Mapping[str, pb.LinuxNetDevice]) -> None:
        """Add or replace ``linux.netDevices`` by host interface, or remove ``"-hostif"``."""
        for key, dev in sorted(devices.items()):
            name, remove = _marked(key)
            if not name:
                raise SpecError("adjustment.linux.net_devices", f"invalid host interface {key!r}")
            if remove:
                linux = self._peek("linux")
                if linux is not None and isinstance(linux.get("netDevices"), dict):
                    linux["netDevices"].pop(name, None)
            else:
                self._obj("linux.netDevices")[name] = net_device_to_oci(dev)

    def adjust_memory_policy(self, policy: pb.LinuxMemoryPolicy) -> None:
        """Set ``linux.memoryPolicy``."""
        oci = memory_policy_to_oci(policy, "adjustment.linux.memory_policy")
        self._obj("linux")["memoryPolicy"] = oci

    def adjust_resources(
        self, r: pb.LinuxResources, *, where: str = "adjustment.linux.resources"
    ) -> None:
        """Apply the Linux resources that are set in ``r``, then the block I/O and RDT classes.

        Only present fields are applied. As upstream does, a (non-zero) memory limit
        also sets the swap limit to the same value unless swap is given explicitly;
        a pids limit of :data:`UNLIMITED_PIDS_LIMIT` removes the pids limit.
        """
        res = self._obj("linux.resources")
        # Empty cpu/memory parts (runtimes send them initialized) leave the spec untouched.
        if r.HasField("cpu") and r.cpu.ListFields():
            c = r.cpu
            cpu = _sub(res, "cpu", "linux.resources.cpu")
            for field, key in (
                ("period", "period"),
                ("quota", "quota"),
                ("shares", "shares"),
            ):
                if c.HasField(field):
                    cpu[key] = getattr(c, field).value
            if c.cpus:
                cpu["cpus"] = c.cpus
            if c.mems:
                cpu["mems"] = c.mems
            if c.HasField("realtime_runtime"):
                cpu["realtimeRuntime"] = c.realtime_runtime.value
            if c.HasField("realtime_period"):
                cpu["realtimePeriod"] = c.realtime_period.value
        if r.HasField("memory") and r.memory.ListFields():
            m = r.memory
            mem = _sub(res, "memory", "linux.resources.memory")
            if m.HasField("limit") and m.limit.value != 0:
                mem["limit"] = m.limit.value
                mem["swap"] = m.limit.value
            for field, key in (
                ("reservation", "reservation"),
                ("swap", "swap"),
                ("kernel", "kernel"),
                ("kernel_tcp", "kernelTCP"),
                ("swappiness", "swappiness"),
                ("disable_oom_killer", "disableOOMKiller"),
                ("use_hierarchy", "useHierarchy"),
            ):
                if m.HasField(field):
                    mem[key] = getattr(m, field).value
        if r.hugepage_limits:
            limits = self._list(res, "hugepageLimits", "linux.resources.hugepageLimits")
            by_size: dict[str, dict[str, Any]] = {}
            for x in reversed(limits):  # the first entry of a size is the one updated
                if isinstance(x, dict) and isinstance(x.get("pageSize"), str):
                    by_size[x["pageSize"]] = x
            for i, h in enumerate(r.hugepage_limits):
                size = check_hugepage_size(h.page_size, f"{where}.hugepage_limits[{i}].page_size")
                found = by_size.get(size)
                if found is None:
                    found = by_size[size] = {"pageSize": size, "limit": h.limit}
                    limits.append(found)
                found["limit"] = h.limit
        if r.unified:
            unified = _sub(res, "unified", "linux.resources.unified")
            for key, value in sorted(r.unified.items()):
                if not key:
                    raise SpecError(f"{where}.unified", "empty unified resource key")
                unified[key] = value
        if r.HasField("pids"):
            if r.pids.limit <= UNLIMITED_PIDS_LIMIT:
                res.pop("pids", None)
            else:
                _sub(res, "pids", "linux.resources.pids")["limit"] = r.pids.limit
        if r.devices:
            rules = [
                device_cgroup_to_oci(d, f"{where}.devices[{i}]") for i, d in enumerate(r.devices)
            ]
            self._list(res, "devices", "linux.resources.devices").extend(rules)
        if self._resource_checker is not None:
            checker = self._resource_checker
            self._call("linux.resources", "resource check failed", lambda: checker(res))
        if r.HasField("blockio_class"):
            self.adjust_blockio_class(r.blockio_class.value)
        if r.HasField("rdt_class"):
            self.adjust_rdt_class(r.rdt_class.value)

    def adjust_blockio_class(self, klass: str) -> None:
        """Set ``linux.resources.blockIO`` from a block I/O class; ``""`` clears it."""
        if self._blockio_resolver is None:
            if klass:
                log.warning("no block I/O class resolver, ignoring class %r", klass)
            return
        res = self._obj("linux.resources")
        if not klass:
            res.pop("blockIO", None)
            return
        resolver = self._blockio_resolver
        blockio = self._call(
            "linux.resources.blockIO",
            f"cannot resolve block I/O class {klass!r}",
            lambda: resolver(klass),
        )
        if blockio is None:
            res.pop("blockIO", None)
        elif not isinstance(blockio, Mapping):
            raise SpecError(
                "linux.resources.blockIO",
                f"block I/O resolver returned {type(blockio).__name__} for {klass!r}",
            )
        else:
            res["blockIO"] = copy.deepcopy(dict(blockio))

    def adjust_rdt_class(self, klass: str) -> None:
        """Set ``linux.intelRdt`` from an RDT class; ``""`` clears it.

        Without an RDT resolver the class is ignored, as upstream does; containerd
        passes :func:`rdt_class_as_clos_id`.
        """
        if self._rdt_resolver is None:
            return
        linux = self._obj("linux")
        if not klass:
            linux.pop("intelRdt", None)
            return
        resolver = self._rdt_resolver
        rdt = self._call(
            "linux.intelRdt", f"cannot resolve RDT class {klass!r}", lambda: resolver(klass)
        )
        if rdt is None:
            linux.pop("intelRdt", None)
        elif not isinstance(rdt, Mapping):
            raise SpecError(
                "linux.intelRdt", f"RDT resolver returned {type(rdt).__name__} for {klass!r}"
            )
        else:
            linux["intelRdt"] = copy.deepcopy(dict(rdt))

    def adjust_rdt(self, rdt: pb.LinuxRdt) -> None:
        """Apply explicit RDT settings: optional removal first, then closID/schemata/monitoring."""
        linux = self._obj("linux")
        if rdt.remove:
            linux.pop("intelRdt", None)
        if not (
            rdt.HasField("clos_id") or rdt.HasField("schemata") or rdt.HasField("enable_monitoring")
        ):
            return
        intel = _sub(linux, "intelRdt", "linux.intelRdt")
        if rdt.HasField("clos_id"):
            intel["closID"] = rdt.clos_id.value
        if rdt.HasField("schemata"):
            intel["schemata"] = list(rdt.schemata.value)
        if rdt.HasField("enable_monitoring"):
            intel["enableMonitoring"] = rdt.enable_monitoring.value

    def adjust_mounts(self, mounts: Iterable[pb.Mount]) -> None:
        """Add mounts (replacing any at the same destination) or remove ``"-/path"``; sort.

        As upstream, an ``rshared`` mount sets ``linux.rootfsPropagation`` to ``rshared``
        and an ``rslave`` one sets it to ``rslave`` unless it is ``rshared`` or ``rslave``
        already (the rootfs must propagate for the mount to).
        """
        mounts = list(mounts)
        if not mounts:
            return
        current = self._list(self._spec, "mounts", "mounts")
        for j, x in enumerate(current):
            if not isinstance(x, dict):
                raise SpecError(f"mounts[{j}]", "expected an object")
        touched: set[str] = set()
        added: dict[str, dict[str, Any]] = {}
        for i, m in enumerate(mounts):
            where = f"adjustment.mounts[{i}]"
            dest, remove = _marked(m.destination)
            if not dest:
                raise SpecError(f"{where}.destination", "mount without a destination")
            touched.add(dest)
            added.pop(dest, None)
            if remove:
                continue
            oci, propagation = mount_to_oci(m, where)
            if propagation == "rshared":
                self._check_propagation(oci, ("rshared",), where)
                self._obj("linux")["rootfsPropagation"] = "rshared"
            elif propagation == "rslave":
                self._check_propagation(oci, ("rshared", "rslave"), where)
                linux = self._obj("linux")
                if linux.get("rootfsPropagation") not in ("rshared", "rslave"):
                    linux["rootfsPropagation"] = "rslave"
            added[dest] = oci
        current[:] = [
            x for x in current if not (isinstance(d := x.get("destination"), str) and d in touched)
        ]
        current.extend(added.values())
        sort_mounts(current)

    def _check_propagation(
        self, mount: dict[str, Any], allowed: tuple[str, ...], where: str
    ) -> None:
        if self._propagation_checker is None:
            return
        checker = self._propagation_checker
        source = str(mount.get("source", ""))
        self._call(
            f"{where}.source",
            f"mount source {source!r} lacks {' or '.join(allowed)} propagation",
            lambda: checker(source, allowed),
        )

    def adjust_rlimits(self, rlimits: Iterable[pb.POSIXRlimit]) -> None:
        """Append POSIX rlimits to ``process.rlimits``.

        As upstream's generator (and so containerd and CRI-O) does, a limit is appended
        even when the spec has one of the same type already: the OCI runtime applies
        them in order, so the last one of a type wins.
        """
        rlimits = list(rlimits)
        if not rlimits:
            return
        checked = [
            {
                "type": check_rlimit_type(r.type, f"adjustment.rlimits[{i}].type"),
                "hard": r.hard,
                "soft": r.soft,
            }
            for i, r in enumerate(rlimits)
        ]
        self._list(self._obj("process"), "rlimits", "process.rlimits").extend(checked)


class _EnvList:
    """``NAME=value`` entries where setting a present name replaces it in place."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self._index: dict[str, int] = {}

    def set(self, name: str, value: str) -> None:
        if not name:
            return  # as upstream's generator, which ignores a variable without a name
        at = self._index.get(name)
        if at is None:
            self._index[name] = len(self.entries)
            self.entries.append(f"{name}={value}")
        else:
            self.entries[at] = f"{name}={value}"


def rdt_class_as_clos_id(klass: str) -> dict[str, Any] | None:
    """RDT resolver naming the class's resctrl group after it: ``{"closID": klass}``.

    This is what containerd passes to upstream's generator; ``""`` clears
    ``linux.intelRdt``.
    """
    return {"closID": klass} if klass else None


def _namespace(ntype: str, path: str) -> dict[str, Any]:
    return {"type": ntype, "path": path} if path else {"type": ntype}


def _is_namespace(entry: object, ntype: str) -> bool:
    return isinstance(entry, dict) and entry.get("type") == ntype


def _sub(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    child = parent.get(key)
    if child is None:
        child = parent[key] = {}
    elif not isinstance(child, dict):
        raise SpecError(where, f"expected an object, got {type(child).__name__}")
    return child
