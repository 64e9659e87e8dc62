"""Look up device nodes on the host: by path (stat) or by a udev match (pyudev over sysfs).

pyudev enumerates ``/sys`` through libudev, which works without a running udevd; properties
that only udevd's database provides (``ID_VENDOR_ID`` and friends) then simply match nothing.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass

import pyudev

from nri.api import make_linux_device, pb

__all__ = ["HostDevice", "HostLookupError", "lookup_match", "lookup_path"]

log = logging.getLogger("nri.device_injector")


class HostLookupError(LookupError):
    """A host device lookup found nothing usable."""


@dataclass(frozen=True, slots=True)
class HostDevice:
    """A device node as found on the host."""

    path: str
    type: str
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int

    def to_message(
        self,
        path: str | None = None,
        *,
        host_permissions: bool = True,
        file_mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
    ) -> pb.LinuxDevice:
        """The LinuxDevice injected at ``path`` (default: the host path).

        Mode and owner come from the arguments, else (with ``host_permissions``) from the
        host node; as upstream does, zero values are left unset.
        """
        if host_permissions:
            file_mode = self.file_mode if file_mode is None else file_mode
            uid = self.uid if uid is None else uid
            gid = self.gid if gid is None else gid
        return make_linux_device(
            path or self.path,
            self.type,
            self.major,
            self.minor,
            file_mode=file_mode or None,
            uid=uid or None,
            gid=gid or None,
        )


def lookup_path(path: str) -> HostDevice:
    """Stat the device node at ``path`` (following symlinks)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise HostLookupError(f"no such device node on the host: {path}") from None
    except OSError as exc:
        raise HostLookupError(f"cannot stat {path}: {exc.strerror or exc}") from exc
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise HostLookupError(f"{path} is not a character or block device node")
    return HostDevice(
        path=path,
        type=kind,
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


def lookup_match(
    subsystem: str | None,
    properties: dict[str, str] | None = None,
    attributes: dict[str, str] | None = None,
    *,
    context: pyudev.Context | None = None,
) -> list[HostDevice]:
    """Every host device node whose udev device matches all criteria, sorted by path.

    Devices without a node, or whose node is missing from ``/dev``, are skipped.
    """
    enumerator = (context or pyudev.Context()).list_devices()
    if subsystem is not None:
        enumerator = enumerator.match_subsystem(subsystem)
    for name, value in (properties or {}).items():
        enumerator = enumerator.match_property(name, value)
    for name, value in (attributes or {}).items():
        enumerator = enumerator.match_attribute(name, value)
    found: dict[str, HostDevice] = {}
    for device in enumerator:
        node = device.device_node
        if node is None or node in found:
            continue
        try:
            found[node] = lookup_path(node)
        except HostLookupError as exc:
            log.debug("skipping udev device %s: %s", device.sys_path, exc)
    return [found[node] for node in sorted(found)]
