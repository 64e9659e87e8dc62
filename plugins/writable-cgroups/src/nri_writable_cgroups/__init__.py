"""NRI writable-cgroups: ``/sys/fs/cgroup`` read-write in annotated containers.

A Python port of upstream containerd/nri ``plugins/writable-cgroups``: the same annotation
(``writable-cgroups.noderesource.dev``, pod- or container-scoped), the same safety check
(cgroup2 mounted with ``nsdelegate`` on the host, read from a mountinfo file) and the same
mount adjustment. See README.md.
"""

from nri_writable_cgroups._mountinfo import (
    CGROUP_MOUNT_POINTS,
    MountInfo,
    MountInfoError,
    cgroup2_mount,
    host_has_nsdelegate,
    parse_line,
)
from nri_writable_cgroups._plugin import (
    CGROUPS_MOUNT,
    DEFAULT_HOST_MOUNT_FILE,
    WRITABLE_CGROUPS_ANNOTATION,
    MissingCgroupsMountError,
    NotDelegatedError,
    WritableCgroups,
    check_host,
    find_cgroups_mount,
    read_write_mount,
    writable_cgroups_requested,
)

__all__ = [
    "CGROUPS_MOUNT",
    "CGROUP_MOUNT_POINTS",
    "DEFAULT_HOST_MOUNT_FILE",
    "WRITABLE_CGROUPS_ANNOTATION",
    "MissingCgroupsMountError",
    "MountInfo",
    "MountInfoError",
    "NotDelegatedError",
    "WritableCgroups",
    "cgroup2_mount",
    "check_host",
    "find_cgroups_mount",
    "host_has_nsdelegate",
    "parse_line",
    "read_write_mount",
    "writable_cgroups_requested",
]
