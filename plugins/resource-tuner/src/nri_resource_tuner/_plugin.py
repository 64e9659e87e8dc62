"""The resource-tuner plugin: place containers on exclusive or shared CPUs and tune them.

Exclusive CPUs are taken out of the shared pool at CreateContainer and given back at
StopContainer (or RemoveContainer, if no stop came). Whenever the pool changes, every
container in it is moved along: through updates returned with the event where the protocol
allows, else through an unsolicited UpdateContainers sent once the event is over. Each
exclusive allocation is recorded in a container annotation, so Synchronize after a restart
rebuilds exactly the allocations that exist.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nri.api import Adjustment, Update, pb
from nri.stub import Plugin, load_config
from nri_resource_tuner._allocator import AllocationError, CpuAllocator
from nri_resource_tuner._cpuset import CpusetError, format_cpuset, parse_cpuset
from nri_resource_tuner._host import HostDescriptionError, HostTopology
from nri_resource_tuner._policy import (
    ClassSelectionError,
    Config,
    Policy,
    PolicyError,
    ResourceClass,
)

__all__ = ["EXCLUSIVE_CPUS_ANNOTATION", "Placement", "ResourceTuner", "ResourceTunerError"]

EXCLUSIVE_CPUS_ANNOTATION = "resource-tuner.noderesource.dev/exclusive-cpus"
"""Container annotation recording a container's exclusive CPUs (read back at Synchronize)."""

_LIVE_STATES = frozenset({pb.CONTAINER_CREATED, pb.CONTAINER_RUNNING, pb.CONTAINER_PAUSED})


class ResourceTunerError(ValueError):
    """A container cannot be placed; the message names pod, container, class and reason."""


@dataclass
class Placement:
    """Where one container runs, as the plugin manages it."""

    container_id: str
    label: str
    """``namespace/pod/container`` for messages."""
    resource_class: ResourceClass
    exclusive: frozenset[int] | None
    """Its exclusive CPUs; None: the shared pool."""
    applied: tuple[str, str] | None = None
    """The (cpus, mems) the runtime was last told; None when unknown."""


def load_topology(host: str | dict[str, Any] | None, source: str) -> HostTopology:
    """The topology a configuration's ``host`` describes (None: the running host)."""
    try:
        if host is None:
            return HostTopology.from_host()
        if isinstance(host, str):
            return HostTopology.from_file(host)
        return HostTopology.from_data(host, source=f"{source}: host")
    except HostDescriptionError as exc:
        raise PolicyError(str(exc)) from exc


class ResourceTuner(Plugin):
    """Exclusive and shared CPU placement and CPU/memory tuning by resource class."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        topology: HostTopology | None = None,
        source: str = "configuration",
        **overrides: Any,
    ) -> None:
        """Create the plugin from ``config`` (read from ``source``, for error messages).

        ``overrides`` (command-line flags) win over any configuration, ``topology`` over
        the configured or detected host. Raises PolicyError for an invalid configuration.
        """
        self.overrides = overrides
        self.fixed_topology = topology
        self._flush_task: asyncio.Task[None] | None = None
        self._generation = 0
        self._setup(config or Config(), source)

    def _setup(self, config: Config, source: str) -> None:
        config = dataclasses.replace(config, **self.overrides)
        policy = Policy.from_config(config, source=source)
        topology = self.fixed_topology or load_topology(policy.host, source)
        try:
            allocator = CpuAllocator(topology, policy.reserved, policy.min_shared)
        except ValueError as exc:
            raise PolicyError(f"{source}: reserved-cpus: {exc}") from exc
        if not allocator.shared_pool:
            raise PolicyError(f"{source}: reserved-cpus: every CPU is reserved")
        if policy.min_shared > len(allocator.shared_pool):
            raise PolicyError(
                f"{source}: min-shared-cpus: {policy.min_shared}, but only CPUs "
                f"{format_cpuset(allocator.shared_pool)} are not reserved"
            )
        self.policy, self.topology, self.allocator = policy, topology, allocator
        self.placements: dict[str, Placement] = {}

    # -- helpers -----------------------------------------------------------------------------

    def _log_level(self) -> int:
        return logging.INFO if self.policy.verbose else logging.DEBUG

    def target(self, placement: Placement) -> tuple[str, str]:
        """The (cpus, mems) ``placement`` should have now; mems is "" without pinning."""
        cpus = placement.exclusive or self.allocator.shared_pool
        mems = ""
        if placement.resource_class.memory_pinning and cpus:
            mems = format_cpuset(self.topology.nodes_of(cpus))
        return format_cpuset(cpus), mems

    def _reconcile(self, exclude: str = "") -> list[Update]:
        """Updates for every placement whose cpuset is not what it should be."""
        updates = []
        for placement in self.placements.values():
            if placement.container_id == exclude:
                continue
            cpus, mems = self.target(placement)
            if not cpus or placement.applied == (cpus, mems):
                continue
            update = Update(placement.container_id, ignore_failure=True)
            update.set_linux_cpuset_cpus(cpus)
            if mems:
                update.set_linux_cpuset_mems(mems)
            placement.applied = (cpus, mems)
            self.log.log(self._log_level(), "%s: moving to CPUs %s", placement.label, cpus)
            updates.append(update)
        return updates

    def _tune(
        self,
        builder: Adjustment | Update,
        placement: Placement,
        resources: pb.LinuxResources | None,
    ) -> None:
        cpus, mems = self.target(placement)
        builder.set_linux_cpuset_cpus(cpus)
        if mems:
            builder.set_linux_cpuset_mems(mems)
        placement.applied = (cpus, mems)
        cls = placement.resource_class
        shares, quota = cls.tune_cpu(resources)
        if shares is not None:
            builder.set_linux_cpu_shares(shares)
        if quota is not None:
            builder.set_linux_cpu_quota(quota)
        memory = self.topology.memory
        if cls.memory_limit is not None:
            builder.set_linux_memory_limit(cls.memory_limit.resolve(memory))
        if cls.memory_reservation is not None:
            builder.set_linux_memory_reservation(cls.memory_reservation.resolve(memory))
        if cls.memory_swap is not None:
            builder.set_linux_memory_swap(cls.memory_swap.resolve(memory))
        if cls.memory_swappiness is not None:
            builder.set_linux_memory_swappiness(cls.memory_swappiness)

    def _release(self, container_id: str) -> Placement | None:
        placement = self.placements.pop(container_id, None)
        if placement is not None and placement.exclusive is not None:
            self.allocator.release(container_id)
            self._generation += 1
            self.log.log(
                self._log_level(),
                "%s: released exclusive CPUs %s",
                placement.label,
                format_cpuset(placement.exclusive),
            )
        return placement

    def _schedule_flush(self) -> None:
        """Send pending pool updates once the current event is over (the runtime handles
        UpdateContainers only between events)."""
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while True:
            generation = self._generation
            updates = self._reconcile()
            if not updates:
                return
            try:
                failed = await self.update_containers(updates)
            except Exception as exc:
                self.log.warning("cannot update the shared pool's containers: %s", exc)
                self._forget_applied(updates)
                return
            for update in failed:
                self.log.warning("update of container %s failed", update.container_id)
            if generation == self._generation:
                return
            # The pool changed while these were in flight: they may have landed late.
            self._forget_applied(updates)

    def _forget_applied(self, updates: Sequence[Update]) -> None:
        for update in updates:
            placement = self.placements.get(update.container_id)
            if placement is not None:
                placement.applied = None

    # -- NRI handlers ------------------------------------------------------------------------

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            source = "resource-tuner configuration"
            self._setup(load_config(config, Config, source=source), source)
        else:
            self.placements = {}
            self.allocator = CpuAllocator(
                self.topology, self.policy.reserved, self.policy.min_shared
            )
        self.log.info(
            "host: %s; reserved CPUs: %s; classes: %s",
            self.topology.describe(),
            format_cpuset(self.policy.reserved) or "none",
            ", ".join(sorted(self.policy.classes)),
        )

    def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> list[Update]:
        """Rebuild the allocations from the existing containers; move the rest into the pool."""
        self.placements = {}
        self.allocator = CpuAllocator(self.topology, self.policy.reserved, self.policy.min_shared)
        self._generation += 1
        pods_by_id = {pod.id: pod for pod in pods}
        for container in sorted(containers, key=lambda c: (c.created_at, c.id)):
            if container.state not in _LIVE_STATES:
                continue
            pod = pods_by_id.get(container.pod_sandbox_id, pb.PodSandbox())
            label = f"{pod.namespace}/{pod.name}/{container.name}"
            try:
                cls = self.policy.class_for(pod, container.name)
            except ClassSelectionError as exc:
                cls = self.policy.classes[self.policy.default_class]
                self.log.warning("%s: %s; using class %r", label, exc, cls.name)
            exclusive = None
            current = _current(container)
            recorded = container.annotations.get(EXCLUSIVE_CPUS_ANNOTATION)
            if recorded:
                try:
                    cpus = parse_cpuset(recorded)
                    # A container moved to the shared pool at an earlier Synchronize keeps
                    # its record: only the CPUs it still runs on are its own.
                    if current is not None and current[0] != format_cpuset(cpus):
                        raise AllocationError(
                            f"it runs on CPUs {current[0]}, not on its recorded exclusive "
                            f"CPUs {recorded}"
                        )
                    self.allocator.claim(container.id, cpus)
                    exclusive = cpus
                except (CpusetError, AllocationError) as exc:
                    self.log.warning("%s: %s; moving it to the shared pool", label, exc)
            placement = Placement(container.id, label, cls, exclusive, current)
            self.placements[container.id] = placement
        self.log.info(
            "synchronized %d containers: exclusive %s, shared pool %s",
            len(self.placements),
            {p.label: format_cpuset(p.exclusive) for p in self.placements.values() if p.exclusive},
            format_cpuset(self.allocator.shared_pool),
        )
        return self._reconcile()

    def create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> list[Adjustment | Update]:
        """Place the new container; update the shared pool's other containers if it shrank."""
        where = f"pod {pod.namespace}/{pod.name}, container {container.name}"
        label = f"{pod.namespace}/{pod.name}/{container.name}"
        try:
            cls = self.policy.class_for(pod, container.name)
        except ClassSelectionError as exc:
            raise ResourceTunerError(f"{where}: {exc}") from exc
        self._release(container.id)  # a repeated creation replaces the earlier one
        resources = _resources(container)
        request = cls.cpu_request(resources)
        exclusive = None
        if request is not None:
            try:
                exclusive = self.allocator.allocate(container.id, request)
            except AllocationError as exc:
                if not cls.fallback_to_shared:
                    raise ResourceTunerError(f"{where}: class {cls.name!r}: {exc}") from exc
                self.log.warning("%s: %s; placing it in the shared pool", label, exc)
            else:
                self._generation += 1
        if exclusive is None and not self.allocator.shared_pool:
            raise ResourceTunerError(f"{where}: class {cls.name!r}: the shared pool is empty")
        placement = Placement(container.id, label, cls, exclusive)
        adjust = Adjustment()
        self._tune(adjust, placement, resources)
        if exclusive is not None:
            adjust.add_annotation(EXCLUSIVE_CPUS_ANNOTATION, format_cpuset(exclusive))
        self.placements[container.id] = placement
        self.log.log(
            self._log_level(),
            "%s: class %s, %s CPUs %s",
            label,
            cls.name,
            "exclusive" if exclusive is not None else "shared",
            placement.applied[0] if placement.applied else "",
        )
        return [adjust, *self._reconcile(exclude=container.id)]

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> list[Update]:
        """Keep the container's placement and tuning over a resource update."""
        placement = self.placements.get(container.id)
        if placement is None:
            return []
        update = Update(container.id)
        self._tune(update, placement, resources)
        return [update, *self._reconcile(exclude=container.id)]

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> list[Update]:
        """Give the container's exclusive CPUs back; grow the shared pool's containers."""
        if self._release(container.id) is None:
            return []
        return self._reconcile()

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Forget the container; if it still held CPUs, grow the pool after the event."""
        placement = self._release(container.id)
        if placement is not None and placement.exclusive is not None:
            self._schedule_flush()

    def on_close(self) -> None:
        """Stop sending updates to a runtime that is gone."""
        if self._flush_task is not None:
            self._flush_task.cancel()
            self._flush_task = None


def _resources(container: pb.Container) -> pb.LinuxResources | None:
    if container.HasField("linux") and container.linux.HasField("resources"):
        return container.linux.resources
    return None


def _current(container: pb.Container) -> tuple[str, str] | None:
    """A container's (cpus, mems), canonical; None if unset or malformed."""
    resources = _resources(container)
    if resources is None or not resources.HasField("cpu") or not resources.cpu.cpus:
        return None
    try:
        cpus = format_cpuset(parse_cpuset(resources.cpu.cpus))
        mems = format_cpuset(parse_cpuset(resources.cpu.mems))
    except CpusetError:
        return None
    return cpus, mems
