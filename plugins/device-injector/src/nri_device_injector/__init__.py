"""NRI device-injector: devices, CDI devices, mounts and I/O priority from pod annotations.

A Python port of upstream containerd/nri ``plugins/device-injector`` (same annotation keys,
value syntax and precedence) with host lookup on top: a device entry may give only a
``path`` (type, numbers, mode and owner are read from the host node) or a udev ``match``
(expanded to every matching host device node). See README.md.
"""

from nri_device_injector._annotations import (
    CDI_DEVICES,
    DEVICES,
    IO_PRIORITY,
    MOUNTS,
    AnnotationError,
    DeviceEntry,
    IOPriorityEntry,
    MountEntry,
    UdevMatch,
    annotation_keys,
    find_annotation,
    parse_cdi_devices,
    parse_devices,
    parse_io_priority,
    parse_mounts,
)
from nri_device_injector._host import HostDevice, HostLookupError, lookup_match, lookup_path
from nri_device_injector._plugin import (
    Config,
    DeviceInjector,
    InjectionError,
    build_adjustment,
    resolve_device,
)

__all__ = [
    "CDI_DEVICES",
    "DEVICES",
    "IO_PRIORITY",
    "MOUNTS",
    "AnnotationError",
    "Config",
    "DeviceEntry",
    "DeviceInjector",
    "HostDevice",
    "HostLookupError",
    "IOPriorityEntry",
    "InjectionError",
    "MountEntry",
    "UdevMatch",
    "annotation_keys",
    "build_adjustment",
    "find_annotation",
    "lookup_match",
    "lookup_path",
    "parse_cdi_devices",
    "parse_devices",
    "parse_io_priority",
    "parse_mounts",
    "resolve_device",
]
