"""Exclusive CPU allocation out of a shared pool (no I/O: a plain state machine).

The shared pool is every CPU of the host minus the reserved CPUs minus every exclusive
allocation. An allocation takes whole free cores first (all hardware threads of a core
free), then single threads, preferring cores already partly taken so that whole cores stay
whole; with a NUMA preference it fits the request into the one NUMA node with the fewest
free CPUs that can hold it, and only spreads over nodes (fullest-free first) when none can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nri_resource_tuner._cpuset import format_cpuset
from nri_resource_tuner._host import HostTopology

__all__ = ["NUMA_POLICIES", "AllocationError", "CpuAllocator", "CpuRequest"]

NUMA_POLICIES = ("prefer", "require", "ignore")
"""How a request treats NUMA locality: prefer one node, require one node, or ignore nodes."""


class AllocationError(Exception):
    """A request cannot be met; the message says what was asked and what is free."""

    def __init__(self, message: str, *, free: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        self.free = free


@dataclass(frozen=True, slots=True)
class CpuRequest:
    """A request for ``count`` exclusive CPUs."""

    count: int
    whole_cores: bool = False
    """Take only complete cores (every hardware thread of each core)."""
    numa: str = "prefer"
    """One of :data:`NUMA_POLICIES`."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(
                f"an exclusive CPU request needs a count of at least 1, got {self.count}"
            )
        if self.numa not in NUMA_POLICIES:
            raise ValueError(f"numa must be one of {', '.join(NUMA_POLICIES)}, got {self.numa!r}")

    def describe(self) -> str:
        """E.g. ``4 exclusive CPUs (whole cores, one NUMA node required)``."""
        details = []
        if self.whole_cores:
            details.append("whole cores")
        if self.numa == "require":
            details.append("one NUMA node required")
        plural = "s" if self.count != 1 else ""
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{self.count} exclusive CPU{plural}{suffix}"


class CpuAllocator:
    """Hand out exclusive CPUs of ``topology``, never the ``reserved`` ones.

    At least ``min_shared`` CPUs always stay in the shared pool for the containers that
    run there.
    """

    def __init__(
        self, topology: HostTopology, reserved: Iterable[int] = (), min_shared: int = 1
    ) -> None:
        self.topology = topology
        self.reserved = frozenset(reserved)
        unknown = self.reserved - topology.cpu_ids
        if unknown:
            raise ValueError(
                f"reserved CPUs {format_cpuset(unknown)} do not exist on this host "
                f"(CPUs: {format_cpuset(topology.cpu_ids)})"
            )
        if min_shared < 0:
            raise ValueError(f"min_shared must not be negative, got {min_shared}")
        self.min_shared = min_shared
        self._allocations: dict[str, frozenset[int]] = {}

    @property
    def allocations(self) -> Mapping[str, frozenset[int]]:
        """Owner to its exclusive CPUs (a copy)."""
        return dict(self._allocations)

    @property
    def exclusive(self) -> frozenset[int]:
        """Every exclusively allocated CPU."""
        return frozenset().union(*self._allocations.values())

    @property
    def shared_pool(self) -> frozenset[int]:
        """All CPUs minus the reserved and the exclusively allocated ones."""
        return self.topology.cpu_ids - self.reserved - self.exclusive

    def allocation(self, owner: str) -> frozenset[int] | None:
        """The CPUs allocated to ``owner``, or None."""
        return self._allocations.get(owner)

    def release(self, owner: str) -> frozenset[int] | None:
        """Return ``owner``'s CPUs to the shared pool; the released CPUs, or None."""
        return self._allocations.pop(owner, None)

    def claim(self, owner: str, cpus: Iterable[int]) -> None:
        """Record an allocation that already exists (e.g. found after a restart).

        Raises AllocationError when the CPUs do not exist, are reserved or belong to
        another owner; the shared-pool minimum is not enforced for existing allocations.
        """
        wanted = frozenset(cpus)
        if owner in self._allocations:
            raise ValueError(f"{owner} already has exclusive CPUs")
        if not wanted:
            raise AllocationError(f"{owner}: an exclusive allocation cannot be empty")
        problems = []
        unknown = wanted - self.topology.cpu_ids
        if unknown:
            problems.append(f"CPUs {format_cpuset(unknown)} do not exist")
        reserved = wanted & self.reserved
        if reserved:
            problems.append(f"CPUs {format_cpuset(reserved)} are reserved")
        for other, taken in self._allocations.items():
            overlap = wanted & taken
            if overlap:
                problems.append(f"CPUs {format_cpuset(overlap)} belong to {other}")
        if problems:
            raise AllocationError(
                f"cannot restore exclusive CPUs {format_cpuset(wanted)} of {owner}: "
                + "; ".join(problems),
                free=self.shared_pool,
            )
        self._allocations[owner] = wanted

    def allocate(self, owner: str, request: CpuRequest) -> frozenset[int]:
        """Take exclusive CPUs for ``owner`` out of the shared pool; AllocationError if
        the request cannot be met (nothing changes then)."""
        if owner in self._allocations:
            raise ValueError(f"{owner} already has exclusive CPUs")
        pool = self.shared_pool
        budget = max(len(pool) - self.min_shared, 0)
        if request.count > budget:
            raise self._error(
                request,
                f"only {budget} can be taken: the shared pool has {_count(pool)} "
                f"({format_cpuset(pool) or 'none'}) and keeps at least {self.min_shared}",
            )
        sizes = {len(cpus) for cpus in self.topology.cores.values()}
        if request.whole_cores and len(sizes) == 1:
            (threads,) = sizes
            if request.count % threads:
                raise self._error(
                    request,
                    f"every core of this host has {threads} threads, "
                    f"so whole cores cannot make {request.count} CPUs",
                )
        chosen = self._place(request, pool)
        self._allocations[owner] = chosen
        return chosen

    # -- placement ---------------------------------------------------------------------------

    def _error(self, request: CpuRequest, reason: str) -> AllocationError:
        return AllocationError(
            f"cannot allocate {request.describe()}: {reason}", free=self.shared_pool
        )

    def _place(self, request: CpuRequest, pool: frozenset[int]) -> frozenset[int]:
        topology = self.topology
        free_per_node = {node: pool & topology.node_cpus(node) for node in topology.nodes}
        if request.numa != "ignore" and len(topology.nodes) > 1:
            fits = []
            for node, free in free_per_node.items():
                if len(free) >= request.count:
                    picked = self._pick(free, request.count, request.whole_cores, {})
                    if picked is not None:
                        fits.append((len(free), node, picked))
            if fits:
                return min(fits, key=lambda fit: (fit[0], fit[1]))[2]
            if request.numa == "require":
                per_node = ", ".join(
                    f"node {node}: {format_cpuset(free) or 'none'}"
                    for node, free in free_per_node.items()
                )
                raise self._error(request, f"no single NUMA node can hold it (free: {per_node})")
        # Spread: nodes with the most free CPUs first.
        ranked = sorted(free_per_node, key=lambda node: (-len(free_per_node[node]), node))
        rank = {node: i for i, node in enumerate(ranked)}
        picked = self._pick(pool, request.count, request.whole_cores, rank)
        if picked is None:
            whole = self._whole_free_cores(pool)
            raise self._error(
                request,
                f"the free CPUs {format_cpuset(pool)} hold only "
                f"{sum(len(topology.cores[c]) for c in whole)} CPUs in whole free cores",
            )
        return picked

    def _whole_free_cores(self, free: frozenset[int]) -> list[int]:
        cores = {self.topology.cpu(i).core for i in free}
        return [core for core in cores if self.topology.cores[core] <= free]

    def _pick(
        self, free: frozenset[int], count: int, whole_cores: bool, rank: Mapping[int, int]
    ) -> frozenset[int] | None:
        topology = self.topology

        def order(core: int) -> tuple[int, int]:
            cpus = topology.cores[core]
            return rank.get(topology.cpu(min(cpus)).node, 0), min(cpus)

        whole = sorted(self._whole_free_cores(free), key=order)
        chosen: set[int] = set()
        for core in whole:
            size = len(topology.cores[core])
            if len(chosen) + size <= count:
                chosen |= topology.cores[core]
            if len(chosen) == count:
                return frozenset(chosen)
        if whole_cores:
            return None
        # Threads of partly used cores first, so whole cores stay whole; then split cores.
        leftovers = sorted(
            free - chosen,
            key=lambda i: (
                topology.core_of(i) <= free,
                rank.get(topology.cpu(i).node, 0),
                i,
            ),
        )
        for cpu_id in leftovers:
            chosen.add(cpu_id)
            if len(chosen) == count:
                return frozenset(chosen)
        return None


def _count(cpus: frozenset[int]) -> str:
    return f"{len(cpus)} CPU" if len(cpus) == 1 else f"{len(cpus)} CPUs"
