"""The writable-cgroups plugin: mount ``/sys/fs/cgroup`` read-write in annotated containers.

Only when the host's cgroup2 hierarchy is mounted with ``nsdelegate`` (checked once, at
start, from a mountinfo file): the kernel then keeps a container from raising the limits
the runtime set, while it may manage sub-cgroups of its own.

The annotation, ``writable-cgroups.noderesource.dev``, is looked up as
``KEY/container.NAME``, then ``KEY/pod``, then ``KEY``; only the value ``true`` enables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from nri.adaptation import effective_annotation
from nri.api import Adjustment, make_mount, pb
from nri.stub import Plugin, RequestError
from nri_writable_cgroups._mountinfo import MountInfoError, host_has_nsdelegate

__all__ = [
    "CGROUPS_MOUNT",
    "DEFAULT_HOST_MOUNT_FILE",
    "WRITABLE_CGROUPS_ANNOTATION",
    "MissingCgroupsMountError",
    "NotDelegatedError",
    "WritableCgroups",
    "check_host",
    "find_cgroups_mount",
    "read_write_mount",
    "writable_cgroups_requested",
]

log = logging.getLogger("nri.writable_cgroups")

WRITABLE_CGROUPS_ANNOTATION = "writable-cgroups.noderesource.dev"
"""The annotation key; only the value ``true`` enables writable cgroups."""

CGROUPS_MOUNT = "/sys/fs/cgroup"
"""The container mount made read-write."""

DEFAULT_HOST_MOUNT_FILE = "/host/proc/1/mountinfo"
"""Upstream's default for ``-host-mount-file``: the host's init's mount table, bind-mounted."""


class NotDelegatedError(RequestError):
    """A container asked for writable cgroups on a host without ``nsdelegate`` (only raised
    with ``reject_undelegated``; upstream ignores the request)."""


def writable_cgroups_requested(pod: pb.PodSandbox, container: str) -> bool:
    """Whether the effective annotation for ``container`` is exactly ``true``."""
    return effective_annotation(pod, WRITABLE_CGROUPS_ANNOTATION, container) == "true"


def find_cgroups_mount(mounts: Iterable[pb.Mount]) -> pb.Mount | None:
    """The first mount at ``/sys/fs/cgroup``, or None."""
    for mount in mounts:
        if mount.destination == CGROUPS_MOUNT:
            return mount
    return None


def read_write_mount(mount: pb.Mount) -> pb.Mount | None:
    """``mount`` without ``ro`` and with ``rw`` (appended if missing); None if it already was.

    As upstream, the new mount keeps only destination, type, source and options.
    """
    options = [option for option in mount.options if option != "ro"]
    changed = len(options) != len(mount.options)
    if "rw" not in options:
        options.append("rw")
        changed = True
    if not changed:
        return None
    return make_mount(mount.destination, source=mount.source, type=mount.type, options=options)


class MissingCgroupsMountError(RequestError):
    """An annotated container has no ``/sys/fs/cgroup`` mount (upstream's error text)."""


def check_host(path: str) -> bool:
    """Run upstream's check of the host's mountinfo ``path``, logging its outcome once:
    whether the cgroup2 mount has ``nsdelegate`` (False when the file cannot be read)."""
    try:
        delegated = host_has_nsdelegate(path)
    except MountInfoError as exc:
        log.warning(
            "failed to check for nsdelegate option on host cgroup mount, "
            "disabling writable cgroups: %s",
            exc,
        )
        return False
    if delegated:
        log.info("host cgroup mount has 'nsdelegate' option, enabling writable cgroups support")
    else:
        log.warning(
            "host cgroup mount does not have 'nsdelegate' option, disabling writable cgroups"
        )
    return delegated


class WritableCgroups(Plugin):
    """Make ``/sys/fs/cgroup`` read-write in containers annotated for it, if delegated."""

    def __init__(
        self,
        host_ns_delegate: bool | None = None,
        *,
        host_mount_file: str = DEFAULT_HOST_MOUNT_FILE,
        reject_undelegated: bool = False,
    ) -> None:
        """``host_ns_delegate``: the result of the host check; None runs :func:`check_host`
        on ``host_mount_file`` once, when the plugin is configured. With
        ``reject_undelegated`` a request on a host without ``nsdelegate`` fails the creation
        instead of being ignored.
        """
        self.host_ns_delegate = host_ns_delegate
        self.host_mount_file = host_mount_file
        self.reject_undelegated = reject_undelegated

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Check the host, the first time."""
        self.delegated()

    def delegated(self) -> bool:
        """Whether the host is delegated (checked once)."""
        if self.host_ns_delegate is None:
            self.host_ns_delegate = check_host(self.host_mount_file)
        return self.host_ns_delegate

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment | None:
        """Replace the read-only cgroup mount by a read-write one when asked and safe."""
        where = f"{pod.namespace}/{pod.name}/{container.name}"
        if not writable_cgroups_requested(pod, container.name):
            log.debug("%s: writable cgroups not requested", where)
            return None
        if not self.delegated():
            if self.reject_undelegated:
                raise NotDelegatedError(
                    f"{where}: writable cgroups requested, but the host's cgroup2 mount "
                    "does not have the 'nsdelegate' option"
                )
            log.warning(
                "%s: cgroup mount on host does not have 'nsdelegate' option; "
                "ignoring request to make cgroups writable",
                where,
            )
            return None
        old = find_cgroups_mount(container.mounts)
        if old is None:
            # upstream's error text
            raise MissingCgroupsMountError(
                f"no {CGROUPS_MOUNT} mount found to modify, this is unexpected"
            )
        new = read_write_mount(old)
        if new is None:
            log.debug("%s: cgroup mount is already read-write", where)
            return None
        log.info("%s: mounting %s read-write", where, CGROUPS_MOUNT)
        return Adjustment().add_mount(new).remove_mount(old.destination)
