"""The pod annotation naming the network devices to inject, parsed as upstream parses it.

Upstream looks the annotation up under four keys, first match wins::

    netdevice.noderesource.dev/pod
    netdevices.nri.containerd.io/pod
    netdevice.noderesource.dev
    netdevices.nri.containerd.io

(its README and sample pod spec say ``netdevices.noderesource.dev``, with an ``s``, which its
code never reads; :data:`DOCUMENTED_KEY` is accepted only when asked for). The value is a YAML
list of ``{name, new_name, address, prefix, mtu}``, decoded like Go's ``sigs.k8s.io/yaml``
into typed fields: strings, and Go ``int`` for ``prefix`` and ``mtu``. Only ``address`` is
checked while parsing (it must be an IP address).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nri.decode import DecodeError, Int, Slice, Str, Struct, unmarshal_yaml

__all__ = [
    "DOCUMENTED_KEY",
    "NETDEVICE_KEY",
    "OLD_NETDEVICE_KEY",
    "AnnotationError",
    "Netdevice",
    "annotation_keys",
    "parse_netdevices",
]

NETDEVICE_KEY = "netdevice.noderesource.dev"
"""The key upstream's code reads (followed by ``/pod`` or alone)."""

OLD_NETDEVICE_KEY = "netdevices.nri.containerd.io"
"""The deprecated key upstream still accepts."""

DOCUMENTED_KEY = "netdevices.noderesource.dev"
"""The key upstream's README and sample use; read only with ``documented-key: true``."""

_NETDEVICE = Struct(
    "netdevice",
    {"name": Str(), "new_name": Str(), "address": Str(), "prefix": Int(64), "mtu": Int(64)},
)


class AnnotationError(ValueError):
    """An annotation that fails the pod, with upstream's wording and the cause in one line."""


@dataclass(frozen=True, slots=True)
class Netdevice:
    """One annotated device, with the values exactly as given (defaults are not applied)."""

    name: str
    """Name of the device on the host (mandatory in practice: an empty one is not found)."""
    new_name: str = ""
    """Name inside the pod; see :meth:`pod_name`."""
    address: str = ""
    prefix: int = 0
    mtu: int = 0

    def pod_name(self, default_new_name: bool) -> str:
        """The device's name inside the pod.

        Upstream means ``new_name`` to default to ``name`` but sets the default on a copy, so
        its plugin renames the device to ``""``; with ``default_new_name`` the default holds.
        """
        return self.new_name or (self.name if default_new_name else "")

    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The address, as Go's ``net.ParseIP`` sees it (``::ffff:a.b.c.d`` is IPv4)."""
        if not self.address:
            return None
        ip = ipaddress.ip_address(self.address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip

    def prefix_length(self) -> int:
        """``prefix``, or with an address and 0 the address's full length (32 or 128)."""
        ip = self.ip()
        if self.prefix or ip is None:
            return self.prefix
        return ip.max_prefixlen


def annotation_keys(documented_key: bool = False) -> tuple[str, ...]:
    """The keys looked up, first match wins; ``documented_key`` adds upstream's README key."""
    bases: tuple[str, ...] = (NETDEVICE_KEY, OLD_NETDEVICE_KEY)
    if documented_key:
        bases = (NETDEVICE_KEY, DOCUMENTED_KEY, OLD_NETDEVICE_KEY)
    return tuple(f"{base}/pod" for base in bases) + bases


def _go_parse_ip(text: str) -> bool:
    """Whether Go's ``net.ParseIP`` accepts ``text`` (no zone, no brackets)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


def parse_netdevices(
    annotations: Mapping[str, str], *, documented_key: bool = False
) -> tuple[str, list[Netdevice]]:
    """The annotation key found (``""`` for none) and its devices; raises AnnotationError."""
    key, value = "", None
    for key in annotation_keys(documented_key):
        if key in annotations:
            value = annotations[key]
            break
    if value is None:
        return "", []
    try:
        items: list[dict[str, Any]] = unmarshal_yaml(value, Slice(_NETDEVICE), source=key)
    except DecodeError as exc:
        # Upstream: fmt.Errorf("invalid device annotation %q: %w", key, err)
        problem = str(exc).removeprefix(f"{key}:").strip()
        raise AnnotationError(f"invalid device annotation {json.dumps(key)}: {problem}") from exc
    devices = [
        Netdevice(
            name=item["name"],
            new_name=item["new_name"],
            address=item["address"],
            prefix=item["prefix"],
            mtu=item["mtu"],
        )
        for item in items
    ]
    for device in devices:
        if device.address and not _go_parse_ip(device.address):
            raise AnnotationError(f"error parsing address {device.address}")
    return key, devices
