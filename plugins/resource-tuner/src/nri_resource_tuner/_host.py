"""The host model: CPUs with their core, package and NUMA node, and memory per NUMA node.

Read from the running host (:meth:`HostTopology.from_host`: psutil, plus sysfs for what
psutil does not tell) or from a description (:meth:`HostTopology.from_file`,
:meth:`HostTopology.from_data`) so that tests and mock runtimes can use any topology.
A description is either compact::

    numa_nodes: 2          # default 1
    cores_per_node: 32
    threads_per_core: 2    # default 1
    packages: 2            # default: one per NUMA node; must divide numa_nodes
    memory: 256Gi          # total, split evenly over the NUMA nodes

(numbered like most x86 servers: the first threads of all cores are CPUs 0..N-1, the
second threads N..2N-1, and so on), or explicit::

    cpus:
      - {id: 0, core: 0, node: 0, package: 0}   # core, node, package default to id, 0, 0
      - {id: 1, core: 0, node: 0}
    memory: {0: 8Gi}       # per NUMA node, or one total split evenly
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import psutil

from nri.decode import MAX_BYTES, DecodeError, load_yaml
from nri_resource_tuner._cpuset import format_cpuset, parse_cpuset
from nri_resource_tuner._quantity import parse_bytes

__all__ = ["Cpu", "HostDescriptionError", "HostTopology"]


class HostDescriptionError(ValueError):
    """A host description is invalid; the message names the source, the key and the problem."""


@dataclass(frozen=True, slots=True)
class Cpu:
    """One logical CPU."""

    id: int
    core: int
    """Identifies the physical core: equal for the hardware threads of one core."""
    package: int
    node: int
    """The NUMA node."""


@dataclass(frozen=True)
class HostTopology:
    """The CPUs of a host and the memory of each NUMA node (bytes)."""

    cpus: tuple[Cpu, ...]
    node_memory: Mapping[int, int]

    def __post_init__(self) -> None:
        if not self.cpus:
            raise HostDescriptionError("a host needs at least one CPU")
        ids = [cpu.id for cpu in self.cpus]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise HostDescriptionError(f"CPU ids are not unique: {format_cpuset(duplicates)}")
        packages: dict[int, int] = {}
        for cpu in self.cpus:
            if packages.setdefault(cpu.core, cpu.package) != cpu.package:
                raise HostDescriptionError(f"core {cpu.core} spans more than one package")
        object.__setattr__(self, "cpus", tuple(sorted(self.cpus, key=lambda c: c.id)))

    # -- queries -----------------------------------------------------------------------------

    @cached_property
    def cpu_ids(self) -> frozenset[int]:
        """Every CPU id."""
        return frozenset(cpu.id for cpu in self.cpus)

    @cached_property
    def _by_id(self) -> dict[int, Cpu]:
        return {cpu.id: cpu for cpu in self.cpus}

    @cached_property
    def nodes(self) -> tuple[int, ...]:
        """The NUMA nodes that have CPUs, ascending."""
        return tuple(sorted({cpu.node for cpu in self.cpus}))

    @cached_property
    def cores(self) -> dict[int, frozenset[int]]:
        """Core id to the CPUs (hardware threads) of that core."""
        cores: dict[int, set[int]] = {}
        for cpu in self.cpus:
            cores.setdefault(cpu.core, set()).add(cpu.id)
        return {core: frozenset(ids) for core, ids in cores.items()}

    @property
    def memory(self) -> int:
        """Total memory in bytes."""
        return sum(self.node_memory.values())

    def cpu(self, cpu_id: int) -> Cpu:
        """The CPU with id ``cpu_id``; KeyError if the host has none."""
        return self._by_id[cpu_id]

    def node_cpus(self, node: int) -> frozenset[int]:
        """The CPUs of NUMA node ``node``."""
        return frozenset(cpu.id for cpu in self.cpus if cpu.node == node)

    def nodes_of(self, cpus: Iterable[int]) -> frozenset[int]:
        """The NUMA nodes of ``cpus``."""
        return frozenset(self._by_id[i].node for i in cpus)

    def core_of(self, cpu_id: int) -> frozenset[int]:
        """All CPUs of the core ``cpu_id`` belongs to."""
        return self.cores[self._by_id[cpu_id].core]

    def describe(self) -> str:
        """A one-line summary for logs."""
        gib = self.memory / 2**30
        return (
            f"{len(self.cpus)} CPUs ({format_cpuset(self.cpu_ids)}), {len(self.cores)} cores, "
            f"{len({c.package for c in self.cpus})} packages, {len(self.nodes)} NUMA nodes, "
            f"{gib:.1f} GiB memory"
        )

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def synthetic(
        cls,
        *,
        cores_per_node: int,
        numa_nodes: int = 1,
        threads_per_core: int = 1,
        packages: int | None = None,
        memory: int = 0,
    ) -> HostTopology:
        """A regular topology (see the module docstring for its numbering)."""
        packages = numa_nodes if packages is None else packages
        for name, value in (
            ("numa_nodes", numa_nodes),
            ("cores_per_node", cores_per_node),
            ("threads_per_core", threads_per_core),
            ("packages", packages),
        ):
            if value < 1:
                raise HostDescriptionError(f"{name} must be at least 1, got {value}")
        if numa_nodes % packages:
            raise HostDescriptionError(
                f"packages ({packages}) must divide numa_nodes ({numa_nodes})"
            )
        nodes_per_package = numa_nodes // packages
        cores = numa_nodes * cores_per_node
        cpus = []
        for thread in range(threads_per_core):
            for node in range(numa_nodes):
                for index in range(cores_per_node):
                    core = node * cores_per_node + index
                    cpus.append(
                        Cpu(
                            id=thread * cores + core,
                            core=core,
                            package=node // nodes_per_package,
                            node=node,
                        )
                    )
        return cls(tuple(cpus), _split(memory, range(numa_nodes)))

    @classmethod
    def from_file(cls, path: str | Path) -> HostTopology:
        """Load a YAML or JSON host description; errors name the file and the key."""
        try:
            with open(path, "rb") as file:
                text = file.read(MAX_BYTES + 1)  # load_yaml refuses the excess
        except OSError as exc:
            raise HostDescriptionError(
                f"cannot read host description {path}: {exc.strerror or exc}"
            ) from exc
        try:
            data = load_yaml(text, source=str(path))
        except DecodeError as exc:
            raise HostDescriptionError(f"{path}: invalid YAML: {exc.problem}") from None
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: Any, *, source: str = "host description") -> HostTopology:
        """Build a topology from a parsed description (compact or explicit form)."""
        if not isinstance(data, dict):
            raise HostDescriptionError(
                f"{source}: expected a mapping with 'cpus' or 'cores_per_node', "
                f"got {type(data).__name__}"
            )
        fields = {str(k).replace("-", "_"): v for k, v in data.items()}
        try:
            if "cpus" in fields:
                return _explicit(fields)
            if "cores_per_node" in fields:
                return _compact(fields)
        except HostDescriptionError as exc:
            if str(exc).startswith(source):
                raise
            raise HostDescriptionError(f"{source}: {exc}") from exc
        raise HostDescriptionError(
            f"{source}: expected the key 'cpus' (explicit form) or 'cores_per_node' "
            f"(compact form), got keys: {', '.join(map(str, data)) or 'none'}"
        )

    @classmethod
    def from_host(cls, sysfs: str | Path = "/sys") -> HostTopology:
        """Read the running host: online CPUs, their cores, packages and NUMA nodes.

        Where sysfs has no answer (no ``online`` list, no NUMA nodes) the host counts as
        one NUMA node with ``psutil``'s CPU count and total memory.
        """
        root = Path(sysfs) / "devices" / "system"
        cpu_dir, node_dir = root / "cpu", root / "node"
        online = _read(cpu_dir / "online")
        ids: frozenset[int]
        if online is not None:
            ids = parse_cpuset(online)
        else:
            ids = frozenset(range(psutil.cpu_count(logical=True) or 1))
        node_of: dict[int, int] = {}
        node_memory: dict[int, int] = {}
        for path in sorted(node_dir.glob("node[0-9]*")):
            node = int(path.name[4:])
            cpulist = _read(path / "cpulist")
            for cpu_id in parse_cpuset(cpulist or ""):
                node_of[cpu_id] = node
            meminfo = _read(path / "meminfo") or ""
            found = re.search(r"MemTotal:\s+(\d+)\s*kB", meminfo)
            if found:
                node_memory[node] = int(found.group(1)) * 1024
        if not node_memory:
            try:
                node_memory = {0: int(psutil.virtual_memory().total)}
            except OSError as exc:
                raise HostDescriptionError(
                    f"cannot read the host's memory size (no NUMA nodes in {sysfs}): {exc}"
                ) from exc
        cpus = []
        for cpu_id in sorted(ids):
            topology = cpu_dir / f"cpu{cpu_id}" / "topology"
            siblings = parse_cpuset(_read(topology / "thread_siblings_list") or "")
            package = _read(topology / "physical_package_id")
            cpus.append(
                Cpu(
                    id=cpu_id,
                    core=min(siblings) if siblings else cpu_id,
                    package=int(package) if package is not None else 0,
                    node=node_of.get(cpu_id, 0),
                )
            )
        return cls(tuple(cpus), node_memory)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _split(total: int, nodes: Iterable[int]) -> dict[int, int]:
    nodes = list(nodes)
    share, rest = divmod(total, len(nodes))
    return {node: share + (rest if i == 0 else 0) for i, node in enumerate(nodes)}


def _integer(fields: Mapping[str, Any], key: str, default: int | None, where: str) -> int:
    value = fields.get(key, default)
    if value is None:
        raise HostDescriptionError(f"{where}{key}: missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise HostDescriptionError(f"{where}{key}: expected an integer, got {value!r}")
    if value < 0:
        raise HostDescriptionError(f"{where}{key}: must not be negative, got {value}")
    return value


def _size(value: Any, where: str) -> int:
    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise HostDescriptionError(f"{where}: {exc}") from None


def _unknown(fields: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        prefix = f"{where.rstrip('.')}: " if where else ""
        raise HostDescriptionError(
            f"{prefix}unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


_COMPACT_KEYS = {"numa_nodes", "cores_per_node", "threads_per_core", "packages", "memory"}
_EXPLICIT_KEYS = {"cpus", "memory"}
_CPU_KEYS = {"id", "core", "package", "node"}


def _compact(fields: Mapping[str, Any]) -> HostTopology:
    _unknown(fields, _COMPACT_KEYS, "")
    if "memory" not in fields:
        raise HostDescriptionError("memory: missing (total memory, e.g. 64Gi)")
    numa_nodes = _integer(fields, "numa_nodes", 1, "")
    return HostTopology.synthetic(
        numa_nodes=numa_nodes,
        cores_per_node=_integer(fields, "cores_per_node", None, ""),
        threads_per_core=_integer(fields, "threads_per_core", 1, ""),
        packages=_integer(fields, "packages", numa_nodes, ""),
        memory=_size(fields["memory"], "memory"),
    )


def _explicit(fields: Mapping[str, Any]) -> HostTopology:
    _unknown(fields, _EXPLICIT_KEYS, "")
    entries = fields["cpus"]
    if not isinstance(entries, list) or not entries:
        raise HostDescriptionError(f"cpus: expected a non-empty list of CPUs, got {entries!r}")
    cpus = []
    for index, entry in enumerate(entries):
        where = f"cpus[{index}]."
        if not isinstance(entry, dict):
            raise HostDescriptionError(f"cpus[{index}]: expected a mapping, got {entry!r}")
        cpu_fields = {str(k): v for k, v in entry.items()}
        _unknown(cpu_fields, _CPU_KEYS, where)
        cpu_id = _integer(cpu_fields, "id", None, where)
        cpus.append(
            Cpu(
                id=cpu_id,
                core=_integer(cpu_fields, "core", cpu_id, where),
                package=_integer(cpu_fields, "package", 0, where),
                node=_integer(cpu_fields, "node", 0, where),
            )
        )
    nodes = sorted({cpu.node for cpu in cpus})
    memory = fields.get("memory")
    if memory is None:
        raise HostDescriptionError("memory: missing (a total, or a mapping of NUMA node to size)")
    if isinstance(memory, dict):
        node_memory = {}
        for key, size in memory.items():
            # nri.decode gives mapping keys as strings, like Go's YAML-to-JSON step
            node = int(key) if isinstance(key, str) and key.isdecimal() else key
            if isinstance(node, bool) or not isinstance(node, int):
                raise HostDescriptionError(f"memory: NUMA node {node!r} is not an integer")
            node_memory[node] = _size(size, f"memory.{node}")
        missing = [n for n in nodes if n not in node_memory]
        if missing:
            raise HostDescriptionError(
                f"memory: no size for NUMA node(s) {', '.join(map(str, missing))}"
            )
    else:
        node_memory = _split(_size(memory, "memory"), nodes)
    return HostTopology(tuple(cpus), node_memory)
