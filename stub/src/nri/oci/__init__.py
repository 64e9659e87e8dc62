"""OCI runtime-spec generator for NRI (counterpart of upstream's runtime-tools/generate).

:class:`SpecGenerator` applies NRI container adjustments and resource updates to an OCI
spec dict in place; :func:`container_from_spec` and the ``*_from_spec`` helpers describe
a container's spec to plugins as NRI messages::

    from nri.api import Adjustment
    from nri.oci import SpecGenerator, container_from_spec

    spec = {"ociVersion": "1.2.0", "process": {"cwd": "/", "args": ["sh"], "env": ["A=1"]}}
    container = container_from_spec(spec, id="ctr-1", pod_sandbox_id="pod-1", name="app")
    assert list(container.args) == ["sh"] and list(container.env) == ["A=1"]

    adjust = Adjustment().add_env("B", "2").add_rlimit("RLIMIT_NOFILE", hard=4096, soft=1024)
    SpecGenerator(spec).adjust(adjust.message)
    assert spec["process"]["env"] == ["A=1", "B=2"]
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}]
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
    rdt_class_as_clos_id,
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
    "rdt_class_as_clos_id",
    "rdt_from_spec",
    "rlimits_from_spec",
    "scheduler_from_spec",
    "seccomp_from_spec",
    "sort_mounts",
    "sysctl_from_spec",
    "user_from_spec",
]
