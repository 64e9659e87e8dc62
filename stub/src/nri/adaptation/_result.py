"""Merging the plugins' replies to one event (upstream ``pkg/adaptation/result.go``).

Plugins are called one after another in index order. After each reply the runtime calls
``apply(plugin, reply)``: the adjustment is merged into one collected adjustment, checked
for ownership conflicts, and applied to the request's container so that later plugins see
it (the request passed to the constructor is changed in place, as upstream does). Updates
of other containers are merged per container, with ownership too; evictions are collected.

Shape quirks kept for parity with upstream:

* The collected CreateContainer adjustment always holds an empty ``hooks`` and
  ``linux.resources.{memory,cpu}``; ``linux.rdt`` is present as soon as any plugin replied
  with a ``linux`` adjustment.
* ``UpdateContainerResponse.update`` always ends with the entry of the container being
  updated. Where upstream puts a nil element (no plugin changed that container) this puts
  a default ``ContainerUpdate``: both serialize as the same zero-length element. Consumers
  skip an element whose ``container_id`` is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from typing import Any

from google.protobuf.message import Message

from nri.adaptation._owners import AdjustmentError, ConflictError, FieldOwners, go_quote
from nri.api import api_pb2 as pb

__all__ = [
    "AdjustmentError",
    "ConflictError",
    "CreateResult",
    "StopResult",
    "UpdateDuringCreationError",
    "UpdateResult",
    "merge_synchronize_updates",
]

logger = logging.getLogger("nri.adaptation")

_F = pb.Field.Value

_MEMORY_FIELDS = (
    ("limit", _F("MemLimit")),
    ("reservation", _F("MemReservation")),
    ("swap", _F("MemSwapLimit")),
    ("kernel", _F("MemKernelLimit")),
    ("kernel_tcp", _F("MemTCPLimit")),
    ("swappiness", _F("MemSwappiness")),
    ("disable_oom_killer", _F("MemDisableOomKiller")),
    ("use_hierarchy", _F("MemUseHierarchy")),
)
_CPU_OPTIONAL_FIELDS = (
    ("shares", _F("CPUShares")),
    ("quota", _F("CPUQuota")),
    ("period", _F("CPUPeriod")),
    ("realtime_runtime", _F("CPURealtimeRuntime")),
    ("realtime_period", _F("CPURealtimePeriod")),
)
_ANNOTATIONS = _F("Annotations")
_MOUNTS = _F("Mounts")
_ENV = _F("Env")
_DEVICES = _F("Devices")
_CPU_STRING_FIELDS = (("cpus", _F("CPUSetCPUs")), ("mems", _F("CPUSetMems")))
# What CreateResult marks present in the request's container and in its collected
# adjustment, serialized once: parsing these few bytes is cheaper than the SetInParent calls.
_CONTAINER_INIT = pb.Container(
    hooks=pb.Hooks(),
    linux=pb.LinuxContainer(
        resources=pb.LinuxResources(memory=pb.LinuxMemory(), cpu=pb.LinuxCPU())
    ),
).SerializeToString()
_ADJUST_INIT = pb.ContainerAdjustment(
    hooks=pb.Hooks(),
    linux=pb.LinuxContainerAdjustment(
        resources=pb.LinuxResources(memory=pb.LinuxMemory(), cpu=pb.LinuxCPU())
    ),
).SerializeToString()
# ContainerAdjustment's field descriptors: the keys of its ListFields().
_ADJ_FIELD = pb.ContainerAdjustment.DESCRIPTOR.fields_by_name
_ADJ_ANNOTATIONS = _ADJ_FIELD["annotations"]
_ADJ_MOUNTS = _ADJ_FIELD["mounts"]
_ADJ_ENV = _ADJ_FIELD["env"]
_ADJ_ARGS = _ADJ_FIELD["args"]
_ADJ_HOOKS = _ADJ_FIELD["hooks"]
_ADJ_LINUX = _ADJ_FIELD["linux"]
_ADJ_RLIMITS = _ADJ_FIELD["rlimits"]
_ADJ_CDI_DEVICES = _ADJ_FIELD["CDI_devices"]
_HOOK_KINDS = (
    "prestart",
    "poststart",
    "poststop",
    "create_runtime",
    "create_container",
    "start_container",
)


class UpdateDuringCreationError(AdjustmentError, ValueError):
    """A plugin asked to update the container that is being created."""

    def __init__(self, plugin: str, container_id: str) -> None:
        self.plugin = plugin
        self.container_id = container_id
        super().__init__(
            f"plugin {go_quote(plugin)} asked update of {go_quote(container_id)} during creation"
        )


def _set(parent: Message, field: str, value: Message) -> None:
    """Set a message field to a copy of ``value``, marking it present even if empty."""
    child = getattr(parent, field)
    child.SetInParent()
    child.CopyFrom(value)


def _new_update(container_id: str, ignore_failure: bool) -> pb.ContainerUpdate:
    update = pb.ContainerUpdate(container_id=container_id, ignore_failure=ignore_failure)
    resources = update.linux.resources
    resources.memory.SetInParent()
    resources.cpu.SetInParent()
    return update


class _Collector:
    """State shared by all results: owners and updates of other containers."""

    def __init__(self, updating: pb.UpdateContainerRequest | None = None) -> None:
        self._owners = FieldOwners()
        self._updating = updating
        self._updates: dict[str, pb.ContainerUpdate] = {}
        self._reply_updates: list[pb.ContainerUpdate] = []
        self._evictions: list[pb.ContainerEviction] = []

    @property
    def owners(self) -> pb.OwningPlugins:
        """The recorded field owners, as validators receive them."""
        return self._owners.to_proto()

    @property
    def field_owners(self) -> FieldOwners:
        """The live owner table (for inspection; do not modify)."""
        return self._owners

    def _creating_id(self) -> str | None:
        return None

    def _updating_id(self) -> str | None:
        return None if self._updating is None else self._updating.container.id

    def _evict(self, evictions: Iterable[pb.ContainerEviction]) -> None:
        for eviction in evictions:
            self._evictions.append(
                pb.ContainerEviction(container_id=eviction.container_id, reason=eviction.reason)
            )

    def _update(self, updates: Iterable[pb.ContainerUpdate], plugin: str) -> None:
        for update in updates:
            reply = self._container_update(update, plugin)
            try:
                self._update_resources(reply, update, plugin)
            except ConflictError as err:
                if not update.ignore_failure:
                    raise
                logger.info(
                    "ignoring failed update of %s by %s: %s", update.container_id, plugin, err
                )

    def _container_update(self, update: pb.ContainerUpdate, plugin: str) -> pb.ContainerUpdate:
        cid = update.container_id
        if cid == self._creating_id():
            raise UpdateDuringCreationError(plugin, cid)
        existing = self._updates.get(cid)
        if existing is not None:
            existing.ignore_failure = existing.ignore_failure and update.ignore_failure
            return existing
        reply = _new_update(cid, update.ignore_failure)
        self._updates[cid] = reply
        # The container being updated goes last, in response().
        if cid != self._updating_id():
            self._reply_updates.append(reply)
        return reply

    def _update_resources(
        self, reply: pb.ContainerUpdate, update: pb.ContainerUpdate, plugin: str
    ) -> None:
        if not update.HasField("linux") or not update.linux.HasField("resources"):
            return
        cid = update.container_id
        requested = self._updating is not None and cid == self._updating_id()
        # Work on a copy and keep the owners transactional: a failed (ignored) update
        # leaves neither resources nor claims behind.
        resources = pb.LinuxResources()
        if requested:
            assert self._updating is not None
            resources.CopyFrom(self._updating.linux_resources)
        else:
            resources.CopyFrom(reply.linux.resources)
        snapshot = self._owners.snapshot(cid)
        try:
            _merge_resources(
                self._owners,
                cid=cid,
                plugin=plugin,
                src=update.linux.resources,
                target=resources,
                reply=None,
            )
        except ConflictError:
            self._owners.restore(cid, snapshot)
            raise
        _set(reply.linux, "resources", resources)
        if requested:
            assert self._updating is not None
            _set(self._updating, "linux_resources", resources)


def _merge_resources(
    owners: FieldOwners,
    *,
    cid: str,
    plugin: str,
    src: pb.LinuxResources,
    target: pb.LinuxResources,
    reply: pb.LinuxResources | None,
) -> None:
    """Claim and copy the resources set in ``src`` into ``target`` (and ``reply``)."""
    targets = [target] if reply is None else [target, reply]
    if src.HasField("memory"):
        for name, field in _MEMORY_FIELDS:
            if src.memory.HasField(name):
                owners.claim(cid, field, plugin)
                for t in targets:
                    _set(t.memory, name, getattr(src.memory, name))
    if src.HasField("cpu"):
        for name, field in _CPU_OPTIONAL_FIELDS:
            if src.cpu.HasField(name):
                owners.claim(cid, field, plugin)
                for t in targets:
                    _set(t.cpu, name, getattr(src.cpu, name))
        for name, field in _CPU_STRING_FIELDS:
            value = getattr(src.cpu, name)
            if value:
                owners.claim(cid, field, plugin)
                for t in targets:
                    setattr(t.cpu, name, value)
    for limit in src.hugepage_limits:
        owners.claim(cid, _F("HugepageLimits"), plugin, limit.page_size)
        for t in targets:
            t.hugepage_limits.append(limit)
    if reply is not None:
        # Device cgroup rules are passed on unowned, and only for adjustments.
        for rule in src.devices:
            for t in targets:
                t.devices.append(rule)
    for key, value in src.unified.items():
        owners.claim(cid, _F("CgroupsUnified"), plugin, key)
        for t in targets:
            t.unified[key] = value
    if src.HasField("blockio_class"):
        owners.claim(cid, _F("BlockioClass"), plugin)
        for t in targets:
            _set(t, "blockio_class", src.blockio_class)
    if src.HasField("rdt_class"):
        owners.claim(cid, _F("RdtClass"), plugin)
        for t in targets:
            _set(t, "rdt_class", src.rdt_class)
    if src.HasField("pids"):
        owners.claim(cid, _F("PidsLimit"), plugin)
        for t in targets:
            _set(t, "pids", pb.LinuxPids(limit=src.pids.limit))


class CreateResult(_Collector):
    """The merged result of CreateContainer.

    ``request`` is changed in place: its container gets the empty structures upstream
    adds and then every applied adjustment. The container as it was before any plugin
    (after that initialization) is kept for :meth:`validation_request`: it is copied
    when the first non-empty adjustment arrives. A caller that will not ask for the
    validation request passes ``keep_original=False`` to save that copy.
    """

    def __init__(
        self,
        request: pb.CreateContainerRequest,
        plugins: Sequence[pb.PluginInstance] | None = None,
        *,
        keep_original: bool = True,
    ) -> None:
        super().__init__()
        self._request = request
        self._plugins = list(plugins or [])
        container = self._container = request.container
        self._cid = container.id
        # One parse of a few bytes marks hooks and linux.resources.{memory,cpu} present.
        container.MergeFromString(_CONTAINER_INIT)
        # Copied just before the first adjustment changes the container (none may come).
        self._keep_original = keep_original
        self._original: pb.Container | None = None
        self._changed = False
        self._adjust = pb.ContainerAdjustment.FromString(_ADJUST_INIT)

    def _creating_id(self) -> str | None:
        return self._cid

    def apply(self, plugin: str, response: pb.CreateContainerResponse | None) -> None:
        """Merge one plugin's reply; raises AdjustmentError (ConflictError, ...) on failure."""
        if response is None:
            return
        if response.HasField("adjust"):
            self._apply_adjustment(response.adjust, plugin)
        if response.update:
            self._update(response.update, plugin)
        if response.evict:
            self._evict(response.evict)

    def response(self) -> pb.CreateContainerResponse:
        """Return the collected response for the runtime."""
        msg = pb.CreateContainerResponse()
        _set(msg, "adjust", self._adjust)
        if self._reply_updates:
            msg.update.extend(self._reply_updates)
        if self._evictions:
            msg.evict.extend(self._evictions)
        return msg

    def validation_request(
        self, plugins: Sequence[pb.PluginInstance] | None = None
    ) -> pb.ValidateContainerAdjustmentRequest:
        """Return the request validators get: pod, original container, merged result.

        Raises ValueError if the result was made with ``keep_original=False`` and a
        non-empty adjustment has been applied.
        """
        if self._changed and self._original is None:
            raise ValueError(
                "validation_request needs the original container: "
                "this CreateResult was made with keep_original=False"
            )
        msg = pb.ValidateContainerAdjustmentRequest()
        if self._request.HasField("pod"):
            _set(msg, "pod", self._request.pod)
        _set(msg, "container", self._container if self._original is None else self._original)
        _set(msg, "adjust", self._adjust)
        msg.update.extend(self._reply_updates)
        _set(msg, "owners", self._owners.to_proto())
        msg.plugins.extend(self._plugins if plugins is None else plugins)
        return msg

    # -- adjustments ------------------------------------------------------------------------

    def _apply_adjustment(self, adj: pb.ContainerAdjustment, plugin: str) -> None:
        # Only the parts the plugin set, in a fixed order (the order conflicts are found in).
        present: dict[Any, Any] = dict(adj.ListFields())
        if not present:
            return
        if not self._changed:
            self._changed = True
            if self._keep_original:
                original = self._original = pb.Container()
                original.CopyFrom(self._container)
        get = present.get
        if (annotations := get(_ADJ_ANNOTATIONS)) is not None:
            self._annotations(annotations, plugin)
        if (mounts := get(_ADJ_MOUNTS)) is not None:
            self._mounts(mounts, plugin)
        if (env := get(_ADJ_ENV)) is not None:
            self._env(env, plugin)
        if (args := get(_ADJ_ARGS)) is not None:
            self._args(args, plugin)
        if (hooks := get(_ADJ_HOOKS)) is not None:
            self._hooks(hooks, plugin)
        if (linux := get(_ADJ_LINUX)) is not None:
            self._devices(linux, plugin)
            if linux.HasField("resources"):
                _merge_resources(
                    self._owners,
                    cid=self._cid,
                    plugin=plugin,
                    src=linux.resources,
                    target=self._container.linux.resources,
                    reply=self._adjust.linux.resources,
                )
            self._linux_simple(linux, plugin)
            self._namespaces(linux, plugin)
            self._sysctl(linux, plugin)
            self._net_devices(linux, plugin)
            self._rdt(linux, plugin)
        if (rlimits := get(_ADJ_RLIMITS)) is not None:
            self._rlimits(rlimits, plugin)
        if (cdi_devices := get(_ADJ_CDI_DEVICES)) is not None:
            self._cdi_devices(cdi_devices, plugin)

    def _annotations(self, annotations: Mapping[str, str], plugin: str) -> None:
        items = dict(annotations)
        if not items:
            return
        container, reply = self._container.annotations, self._adjust.annotations
        cid, owners = self._cid, self._owners
        pending = dict.fromkeys(k[1:] for k in items if k.startswith("-"))
        for key, value in items.items():
            if key.startswith("-"):
                continue
            if key in pending:
                owners.clear(cid, _ANNOTATIONS, plugin, key)
                if key in container:
                    del container[key]
                reply["-" + key] = ""
                del pending[key]
            owners.claim(cid, _ANNOTATIONS, plugin, key)
            container[key] = value
            reply[key] = value
        # As upstream: a bare removal is only passed on, without touching the owners.
        for key in pending:
            reply["-" + key] = ""

    def _mounts(self, mounts: Sequence[pb.Mount], plugin: str) -> None:
        if not mounts:
            return
        container, reply = self._container, self._adjust
        cid, owners = self._cid, self._owners
        add: list[pb.Mount] = []
        removed: dict[str, pb.Mount] = {}
        modified: set[str] = set()
        for mount in mounts:
            if mount.destination.startswith("-"):
                removed[mount.destination[1:]] = mount
            else:
                add.append(mount)
                modified.add(mount.destination)
        if removed:
            kept = []
            for mount in reply.mounts:
                if mount.destination in removed:
                    owners.clear(cid, _MOUNTS, plugin, mount.destination)
                    continue
                kept.append(mount)
            _replace_if_shorter(reply.mounts, kept)
        _replace_if_shorter(
            container.mounts,
            [
                m
                for m in container.mounts
                if m.destination not in removed and m.destination not in modified
            ],
        )
        for mount in add:
            owners.claim(cid, _MOUNTS, plugin, mount.destination)
            reply.mounts.append(mount)
        for key, mount in removed.items():
            if key not in modified:
                reply.mounts.append(mount)
        container.mounts.extend(add)

    def _env(self, entries: Sequence[pb.KeyValue], plugin: str) -> None:
        if not entries:
            return
        container, reply = self._container, self._adjust
        cid, owners = self._cid, self._owners
        add: list[tuple[str, pb.KeyValue]] = []
        removed: set[str] = set()
        for kv in entries:
            key = kv.key
            if key.startswith("-"):
                removed.add(key[1:])
            else:
                add.append((key, kv))
        if removed:
            kept = []
            for kv in reply.env:
                if kv.key in removed:
                    owners.clear(cid, _ENV, plugin, kv.key)
                    continue
                kept.append(kv)
            _replace_if_shorter(reply.env, kept)
        _drop_env(container.env, removed.union([key for key, _ in add]))
        reply_env = reply.env
        claim = owners.claim
        for key, kv in add:
            claim(cid, _ENV, plugin, key)
            reply_env.append(kv)
        container.env.extend([f"{key}={kv.value}" for key, kv in add])

    def _args(self, given: Sequence[str], plugin: str) -> None:
        if not given:
            return
        args = list(given)
        if args[0] == "":
            self._owners.clear(self._cid, _F("Args"), plugin)
            args = args[1:]
        self._owners.claim(self._cid, _F("Args"), plugin)
        for target in (self._adjust.args, self._container.args):
            del target[:]
            target.extend(args)

    def _hooks(self, given: pb.Hooks, plugin: str) -> None:
        claim = False
        for kind in _HOOK_KINDS:
            hooks = getattr(given, kind)
            if hooks:
                getattr(self._adjust.hooks, kind).extend(hooks)
                getattr(self._container.hooks, kind).extend(hooks)
                claim = True
        if claim:
            self._owners.accumulate(self._cid, _F("OciHooks"), plugin)

    def _devices(self, linux: pb.LinuxContainerAdjustment, plugin: str) -> None:
        if not linux.devices:
            return
        container, reply = self._container.linux, self._adjust.linux
        cid, owners = self._cid, self._owners
        add: list[pb.LinuxDevice] = []
        removed: set[str] = set()
        modified: set[str] = set()
        for dev in linux.devices:
            if dev.path.startswith("-"):
                removed.add(dev.path[1:])
            else:
                add.append(dev)
                modified.add(dev.path)
        if removed:
            kept = []
            for dev in reply.devices:
                if dev.path in removed:
                    owners.clear(cid, _DEVICES, plugin, dev.path)
                    continue
                kept.append(dev)
            _replace_if_shorter(reply.devices, kept)
        _replace_if_shorter(
            container.devices,
            [d for d in container.devices if d.path not in removed and d.path not in modified],
        )
        for dev in add:
            owners.claim(cid, _DEVICES, plugin, dev.path)
            reply.devices.append(dev)
        container.devices.extend(add)

    def _linux_simple(self, linux: pb.LinuxContainerAdjustment, plugin: str) -> None:
        container, reply = self._container.linux, self._adjust.linux
        if linux.cgroups_path:
            self._owners.claim(self._cid, _F("CgroupsPath"), plugin)
            container.cgroups_path = linux.cgroups_path
            reply.cgroups_path = linux.cgroups_path
        for name, field in (
            ("oom_score_adj", "OomScoreAdj"),
            ("io_priority", "IoPriority"),
            ("seccomp_policy", "SeccompPolicy"),
            ("scheduler", "LinuxSched"),
        ):
            if linux.HasField(name):
                self._owners.claim(self._cid, _F(field), plugin)
                _set(container, name, getattr(linux, name))
                _set(reply, name, getattr(linux, name))
        # Not in upstream's result.go we could read; claimed like the other simple fields.
        # The Container message has no memory policy, so it goes to the reply only.
        if linux.HasField("memory_policy"):
            self._owners.claim(self._cid, _F("MemoryPolicy"), plugin)
            _set(reply, "memory_policy", linux.memory_policy)

    def _namespaces(self, linux: pb.LinuxContainerAdjustment, plugin: str) -> None:
        if not linux.namespaces:
            return
        container, reply = self._container.linux, self._adjust.linux
        current: dict[str, pb.LinuxNamespace] = {}
        for ns in container.namespaces:
            current[ns.type] = ns
        for ns in linux.namespaces:
            key, marked = (ns.type[1:], True) if ns.type.startswith("-") else (ns.type, False)
            self._owners.claim(self._cid, _F("Namespace"), plugin, key)
            if marked:
                current.pop(key, None)
            else:
                current[key] = ns
            reply.namespaces.append(ns)
        _replace(container.namespaces, list(current.values()))

    def _sysctl(self, linux: pb.LinuxContainerAdjustment, plugin: str) -> None:
        if not linux.sysctl:
            return
        container, reply = self._container.linux, self._adjust.linux
        pending = dict.fromkeys(k[1:] for k in linux.sysctl if k.startswith("-"))
        for key, value in linux.sysctl.items():
            if key.startswith("-"):
                continue
            if key in pending:
                self._owners.clear(self._cid, _F("Sysctl"), plugin, key)
                if key in container.sysctl:
                    del container.sysctl[key]
                reply.sysctl["-" + key] = ""
            self._owners.claim(self._cid, _F("Sysctl"), plugin, key)
            container.sysctl[key] = value
            reply.sysctl[key] = value
            pending.pop(key, None)
        # Upstream's code we read put these markers into the annotations (a slip);
        # they belong with the sysctls.
        for key in pending:
            reply.sysctl["-" + key] = ""

    def _net_devices(self, linux: pb.LinuxContainerAdjustment, plugin: str) -> None:
        if not linux.net_devices:
            return
        container, reply = self._container.linux, self._adjust.linux
        pending = dict.fromkeys(k[1:] for k in linux.net_devices if k.startswith("-"))
        for key, dev in linux.net_devices.items():
            if key.startswith("-"):
                continue
            if key in pending:
                self._owners.clear(self._cid, _F("LinuxNetDevices"), plugin, key)
                if key in container.net_devices:
                    del container.net_devices[key]
                reply.net_devices.get_or_create("-" + key)
            self._owners.claim(self._cid, _F("LinuxNetDevices"), plugin, key)
            container.net_devices[key].CopyFrom(dev)
            reply.net_devices[key].CopyFrom(dev)
            pending.pop(key, None)
        for key in pending:
            reply.net_devices.get_or_create("-" + key)

    def _rdt(self, linux: pb.LinuxContainerAdjustment, plugin: str) -> None:
        # Upstream initializes the collected rdt for every linux adjustment.
        reply = self._adjust.linux
        reply.rdt.SetInParent()
        rdt = linux.rdt
        if rdt.remove:
            self._owners.clear_rdt(self._cid, plugin)
            _set(reply, "rdt", pb.LinuxRdt(remove=True))
        for name, field in (
            ("clos_id", "RdtClosID"),
            ("schemata", "RdtSchemata"),
            ("enable_monitoring", "RdtEnableMonitoring"),
        ):
            if rdt.HasField(name):
                self._owners.claim(self._cid, _F(field), plugin)
                _set(reply.rdt, name, getattr(rdt, name))
                reply.rdt.remove = False

    def _rlimits(self, rlimits: Sequence[pb.POSIXRlimit], plugin: str) -> None:
        for rlimit in rlimits:
            self._owners.claim(self._cid, _F("Rlimits"), plugin, rlimit.type)
            self._container.rlimits.append(rlimit)
            self._adjust.rlimits.append(rlimit)

    def _cdi_devices(self, devices: Sequence[pb.CDIDevice], plugin: str) -> None:
        # CDI devices can only be added, and go to the reply only (resolved by the runtime).
        for dev in devices:
            self._owners.claim(self._cid, _F("CdiDevices"), plugin, dev.name)
            self._adjust.CDI_devices.append(dev)


def _replace(target: object, items: Sequence[Message]) -> None:
    """Replace the contents of a repeated message field with copies of ``items``."""
    copies = []
    for item in items:
        dup = type(item)()
        dup.CopyFrom(item)
        copies.append(dup)
    del target[:]  # type: ignore[attr-defined]
    target.extend(copies)  # type: ignore[attr-defined]


def _replace_if_shorter(target: Sequence[Message], items: Sequence[Message]) -> None:
    """:func:`_replace` when ``items`` (a filtered ``target``) dropped something."""
    if len(items) != len(target):
        _replace(target, items)


def _drop_env(env: MutableSequence[str], keys: set[str]) -> None:
    """Remove the ``KEY=value`` (or bare ``KEY``) entries whose key is in ``keys``."""
    # Quick scan for the usual case of only new keys; a NUL inside an entry can only
    # cause a false hit, which the exact filter below sorts out. An env key never
    # contains "=", so such keys cannot match any entry.
    joined = "\0" + "\0".join(env) + "\0"
    for key in keys:
        if "=" not in key and ("\0" + key + "=" in joined or "\0" + key + "\0" in joined):
            break
    else:
        return
    current = list(env)
    keys = {k for k in keys if "=" not in k}
    prefixes = tuple(k + "=" for k in keys)
    kept = [e for e in current if not (e.startswith(prefixes) or e in keys)]
    if len(kept) != len(current):
        del env[:]
        env.extend(kept)


class UpdateResult(_Collector):
    """The merged result of UpdateContainer.

    ``request.linux_resources`` is changed in place so later plugins see earlier updates
    of the container being updated.
    """

    def __init__(self, request: pb.UpdateContainerRequest) -> None:
        request.linux_resources.memory.SetInParent()
        request.linux_resources.cpu.SetInParent()
        super().__init__(request)
        self._request = request

    def apply(self, plugin: str, response: pb.UpdateContainerResponse | None) -> None:
        """Merge one plugin's reply; raises AdjustmentError on failure."""
        if response is None:
            return
        self._update(response.update, plugin)
        self._evict(response.evict)

    def response(self) -> pb.UpdateContainerResponse:
        """Return the collected updates, ending with the updated container's entry."""
        msg = pb.UpdateContainerResponse()
        msg.update.extend(self._reply_updates)
        requested = self._updates.get(self._request.container.id)
        msg.update.append(requested if requested is not None else pb.ContainerUpdate())
        msg.evict.extend(self._evictions)
        return msg


class StopResult(_Collector):
    """The merged result of StopContainer (updates of other containers only).

    As upstream, the stopped container is not special: updates of it are merged like any.
    """

    def __init__(self, request: pb.StopContainerRequest | None = None) -> None:
        super().__init__()
        self._request = request

    def apply(self, plugin: str, response: pb.StopContainerResponse | None) -> None:
        """Merge one plugin's reply; raises AdjustmentError on failure."""
        if response is None:
            return
        self._update(response.update, plugin)

    def response(self) -> pb.StopContainerResponse:
        """Return the collected updates in the order the containers were first named."""
        msg = pb.StopContainerResponse()
        msg.update.extend(self._reply_updates)
        return msg


def merge_synchronize_updates(
    replies: Iterable[Sequence[pb.ContainerUpdate]],
) -> list[pb.ContainerUpdate]:
    """Concatenate the plugins' Synchronize updates.

    Upstream does nothing special here: no ownership, no merging, plugin order kept.
    """
    merged: list[pb.ContainerUpdate] = []
    for updates in replies:
        for update in updates:
            dup = pb.ContainerUpdate()
            dup.CopyFrom(update)
            merged.append(dup)
    return merged
