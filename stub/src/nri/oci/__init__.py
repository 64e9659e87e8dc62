"""OCI runtime-spec generator for NRI (counterpart of upstream's runtime-tools/generate).

:class:`SpecGenerator` applies NRI container adjustments and resource updates to an OCI
spec dict in place; :func:`container_from_spec` and the ``*_from_spec`` helpers describe
a container's spec to plugins as NRI messages.
"""

from nri.oci._convert import (
    NAMESPACE_TYPES,
    container_from_spec,
    devices_from_spec,
    hooks_from_spec,
    io_priority_from_spec,
    linux_container_from_spec,
    linux_resources_from_oci,
    linux_resources_from_spec,
    memory_policy_from_spec,
    mounts_from_spec,
    namespaces_from_spec,
    net_devices_from_spec,
    rdt_from_spec,
    rlimits_from_spec,
    scheduler_from_spec,
    seccomp_from_spec,
    sysctl_from_spec,
    user_from_spec,
)
from nri.oci._errors import SpecError
from nri.oci._generate import (
    UNLIMITED_PIDS_LIMIT,
    BlockIOResolver,
    CDIDeviceInjector,
    MapFilter,
    PropagationChecker,
    RdtResolver,
    ResourceChecker,
    SpecGenerator,
    sort_mounts,
)

__all__ = [
    "NAMESPACE_TYPES",
    "UNLIMITED_PIDS_LIMIT",
    "BlockIOResolver",
    "CDIDeviceInjector",
    "MapFilter",
    "PropagationChecker",
    "RdtResolver",
    "ResourceChecker",
    "SpecError",
    "SpecGenerator",
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
    "sort_mounts",
    "sysctl_from_spec",
    "user_from_spec",
]
