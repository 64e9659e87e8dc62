"""The network-device-injector plugin: host network devices into pods, and back.

At RunPodSandbox each device the pod's annotation names is moved from the host's network
namespace into the pod's and set up; at StopPodSandbox it goes back under its host name. By
default the plugin behaves exactly as upstream's, gaps included; :class:`Config` has an option
for each improvement (see the README's "Differences from upstream"), and an ``allow`` list
of the namespaces and pods that may ask for devices.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from nri.api import api_pb2 as pb
from nri.api import message_to_data
from nri.stub import Allowlist, Plugin, RequestError, load_config_with_allowlist
from nri_network_device_injector._annotations import Netdevice, annotation_keys, parse_netdevices
from nri_network_device_injector._netlink import DeviceConfig, NetdevError, inject, release

__all__ = [
    "HOST_NETWORK_ERROR",
    "Config",
    "DeviceInjectionError",
    "NetworkDeviceInjector",
    "parse_config",
    "pod_netns",
]

HOST_NETWORK_ERROR = "trying to inject network device on host network Pod"
"""Upstream's error for a host-network pod that names devices."""


class DeviceInjectionError(RequestError):
    """A pod that cannot get its devices: host network, or (with ``strict``) a failed move."""


@dataclass
class Config:
    """Configuration (YAML); every option is off by default, which is upstream's behaviour."""

    verbose: bool = False
    """Dump every pod the plugin is asked about, as upstream's ``-verbose`` does."""
    strict: bool = False
    """Fail the pod when a device cannot be moved in (or out). Upstream logs nothing and
    reports success, so the pod runs without the device."""
    configure_devices: bool = False
    """Apply ``address``/``prefix`` and ``mtu`` inside the pod, as upstream's README says it
    does (its code parses them but never applies them)."""
    default_new_name: bool = False
    """A device without ``new_name`` keeps its host name in the pod. Upstream's default never
    takes effect, so without ``new_name`` its plugin cannot inject the device."""
    documented_key: bool = False
    """Also read ``netdevices.noderesource.dev``, the key of upstream's README and sample."""
    allow: Allowlist = field(default_factory=Allowlist)
    """Which namespaces and pods may ask for devices (default: all, as upstream)."""


def parse_config(text: str, source: str) -> Config:
    """Parse a YAML configuration (``allow`` included); ConfigError naming ``source``."""
    return load_config_with_allowlist(text, Config, source=source)


def pod_netns(pod: pb.PodSandbox) -> str:
    """Path of the pod's network namespace; ``""`` when it uses the host's network."""
    for namespace in pod.linux.namespaces:
        if namespace.type == "network":
            return str(namespace.path)
    return ""


class NetworkDeviceInjector(Plugin):
    """Move the devices of ``netdevice.noderesource.dev`` annotations into pods."""

    def __init__(self, config: Config | None = None, **overrides: Any) -> None:
        """Create the plugin; ``overrides`` (command-line flags) win over any configuration."""
        self.overrides = overrides
        self.config = dataclasses.replace(config or Config(), **overrides)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            parsed = parse_config(config, "network-device-injector configuration")
            self.config = dataclasses.replace(parsed, **self.overrides)

    def _dump(self, event: str, pod: pb.PodSandbox) -> None:
        self.log.info("%s: pod:", event)
        text = yaml.safe_dump(message_to_data(pod), sort_keys=True, default_flow_style=False)
        for line in text.strip().splitlines():
            self.log.info("%s:    %s", event, line)

    def _devices(self, event: str, pod: pb.PodSandbox) -> list[Netdevice]:
        """The devices the pod asks for; none for a pod outside the allowlist.

        At RunPodSandbox such a pod is refused (InjectionDenied) or logged once and ignored
        (``on-denied: ignore``); at StopPodSandbox it is skipped quietly, for nothing was
        moved in: a pod's namespace and labels do not change.
        """
        self.log.debug("%s: pod %s/%s", event, pod.namespace, pod.name)
        if self.config.verbose:
            self._dump(event, pod)
        documented = self.config.documented_key
        key = next((k for k in annotation_keys(documented) if k in pod.annotations), "")
        if not key:
            return []
        allow = self.config.allow
        if event == "RunPodSandbox":
            if not allow.check(pod, f"annotation {key!r}", self.log):
                return []
        elif not allow.allows(pod.namespace, pod.labels):
            self.log.debug("%s: pod %s/%s: not in the allowlist", event, pod.namespace, pod.name)
            return []
        _key, devices = parse_netdevices(pod.annotations, documented_key=documented)
        return devices

    def _failed(self, pod: pb.PodSandbox, what: str, rest: list[Netdevice], outcome: str) -> None:
        message = f"pod {pod.namespace}/{pod.name}: {what}"
        if self.config.strict:
            raise DeviceInjectionError(message)
        skipped = f"; not handling {', '.join(repr(d.name) for d in rest)}" if rest else ""
        self.log.error("%s (%s%s)", message, outcome, skipped)

    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Move the annotated devices into the pod's network namespace."""
        devices = self._devices("RunPodSandbox", pod)
        if not devices:
            return
        netns = pod_netns(pod)
        if not netns:
            self.log.info(
                "pod %s/%s uses the host network namespace, not injecting %d device(s)",
                pod.namespace,
                pod.name,
                len(devices),
            )
            raise DeviceInjectionError(HOST_NETWORK_ERROR)
        injected: list[str] = []
        for i, device in enumerate(devices):
            new_name = device.pod_name(self.config.default_new_name)
            try:
                if not new_name:
                    raise NetdevError(
                        "it has no new_name (enable default-new-name to keep its host name)"
                    )
                config = None
                if self.config.configure_devices:
                    ip = device.ip()
                    config = DeviceConfig(
                        address=str(ip) if ip is not None else "",
                        prefix=device.prefix_length(),
                        mtu=device.mtu,
                    )
                await asyncio.to_thread(inject, netns, device.name, new_name, config)
            except NetdevError as exc:
                # Like upstream, the first failure ends the injection.
                if self.config.strict:
                    await self._undo(netns, injected)
                self._failed(
                    pod,
                    f"cannot inject network device {device.name!r}: {exc}",
                    devices[i + 1 :],
                    "the pod runs without it",
                )
                return
            injected.append(new_name)
            self.log.info(
                "pod %s/%s: injected network device %r as %r into %s",
                pod.namespace,
                pod.name,
                device.name,
                new_name,
                netns,
            )

    async def _undo(self, netns: str, injected: list[str]) -> None:
        """Give back what a failing RunPodSandbox moved in: the runtime will not stop the pod."""
        for new_name in reversed(injected):
            try:
                await asyncio.to_thread(release, netns, new_name)
            except NetdevError as exc:
                self.log.error("cannot give back network device %r: %s", new_name, exc)

    async def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Move the annotated devices back to the host network namespace."""
        devices = self._devices("StopPodSandbox", pod)
        if not devices:
            return
        netns = pod_netns(pod)
        if not netns:
            return
        for i, device in enumerate(devices):
            new_name = device.pod_name(self.config.default_new_name)
            try:
                if not new_name:
                    raise NetdevError("it has no new_name, so it was never injected")
                host_name = await asyncio.to_thread(release, netns, new_name)
            except NetdevError as exc:
                self._failed(
                    pod,
                    f"cannot give back network device {device.name!r}: {exc}",
                    devices[i + 1 :],
                    "the pod stops anyway",
                )
                return
            self.log.info(
                "pod %s/%s: released network device %r to the host as %r",
                pod.namespace,
                pod.name,
                new_name,
                host_name,
            )
