"""NRI resource-tuner: exclusive and shared CPU placement and CPU/memory tuning by class.

Containers get a resource class from a pod annotation (or the default class); a class may
ask for exclusive CPUs (whole cores, NUMA locality), scale CPU shares and quota, set memory
limits and pin memory to the NUMA nodes of its CPUs. Everything else runs on the shared
pool, which follows every exclusive allocation and release. See README.md.
"""

from nri_resource_tuner._allocator import NUMA_POLICIES, AllocationError, CpuAllocator, CpuRequest
from nri_resource_tuner._cpuset import CpusetError, format_cpuset, parse_cpuset
from nri_resource_tuner._host import Cpu, HostDescriptionError, HostTopology
from nri_resource_tuner._plugin import (
    EXCLUSIVE_CPUS_ANNOTATION,
    Placement,
    ResourceTuner,
    ResourceTunerError,
    load_topology,
)
from nri_resource_tuner._policy import (
    CLASS_ANNOTATION,
    SHARED_CLASS,
    ClassSelectionError,
    Config,
    MemoryAmount,
    Policy,
    PolicyError,
    ResourceClass,
    cpus_from_quota,
)
from nri_resource_tuner._quantity import parse_bytes

__all__ = [
    "CLASS_ANNOTATION",
    "EXCLUSIVE_CPUS_ANNOTATION",
    "NUMA_POLICIES",
    "SHARED_CLASS",
    "AllocationError",
    "ClassSelectionError",
    "Config",
    "Cpu",
    "CpuAllocator",
    "CpuRequest",
    "CpusetError",
    "HostDescriptionError",
    "HostTopology",
    "MemoryAmount",
    "Placement",
    "Policy",
    "PolicyError",
    "ResourceClass",
    "ResourceTuner",
    "ResourceTunerError",
    "cpus_from_quota",
    "format_cpuset",
    "load_topology",
    "parse_bytes",
    "parse_cpuset",
]
