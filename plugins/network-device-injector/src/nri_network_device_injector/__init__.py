"""NRI network-device-injector: move host network devices into pods from pod annotations.

A Python port of upstream containerd/nri ``plugins/network-device-injector``: same annotation
keys and syntax, same responses; upstream's gaps can be closed with options. See README.md.
"""

from nri_network_device_injector._annotations import (
    DOCUMENTED_KEY,
    NETDEVICE_KEY,
    OLD_NETDEVICE_KEY,
    AnnotationError,
    Netdevice,
    annotation_keys,
    parse_netdevices,
)
from nri_network_device_injector._netlink import DeviceConfig, NetdevError, inject, release
from nri_network_device_injector._plugin import (
    HOST_NETWORK_ERROR,
    Config,
    DeviceInjectionError,
    NetworkDeviceInjector,
    parse_config,
    pod_netns,
)

__all__ = [
    "DOCUMENTED_KEY",
    "HOST_NETWORK_ERROR",
    "NETDEVICE_KEY",
    "OLD_NETDEVICE_KEY",
    "AnnotationError",
    "Config",
    "DeviceConfig",
    "DeviceInjectionError",
    "NetdevError",
    "Netdevice",
    "NetworkDeviceInjector",
    "annotation_keys",
    "inject",
    "parse_config",
    "parse_netdevices",
    "pod_netns",
    "release",
]
