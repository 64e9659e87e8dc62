"""The network-logger plugin: one line per pod event with the pod's network namespace and IPs.

The lines are upstream's, word for word (its ``%v`` of the IP list included)::

    Synchronized state with the runtime (2 pods, 3 containers)...
    pod default/web: namespace=/var/run/netns/cni-1234 ips=[10.244.1.22]
    Started pod default/web: namespace=/var/run/netns/cni-1234 ips=[10.244.1.22]
    Stopped pod default/web: ips=[10.244.1.22]
    Removed pod default/web: ips=[10.244.1.22]

A pod without a network namespace uses the host's network: ``namespace=<host-network>``.
With ``json`` each line is a JSON object instead (see :func:`pod_record`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nri.api import api_pb2 as pb
from nri.stub import Plugin, load_config

__all__ = [
    "HOST_NETWORK",
    "Config",
    "NetworkLogger",
    "format_ips",
    "network_namespace",
    "pod_line",
    "pod_record",
]

HOST_NETWORK = "<host-network>"
"""What upstream prints as the namespace of a pod without a network namespace."""


@dataclass
class Config:
    """Configuration of the network-logger (YAML)."""

    json: bool = False
    """Log each pod as a one-line JSON object instead of upstream's readable line."""


def network_namespace(pod: pb.PodSandbox) -> str:
    """The path of the pod's first network namespace (``""`` if that has none), else
    :data:`HOST_NETWORK`."""
    for namespace in pod.linux.namespaces:
        if namespace.type == "network":
            return str(namespace.path)
    return HOST_NETWORK


def format_ips(ips: Sequence[str]) -> str:
    """The IPs as Go's ``%v`` prints a string slice: ``[10.0.0.1 fd00::1]``."""
    return "[" + " ".join(ips) + "]"


def pod_line(event: str, pod: pb.PodSandbox) -> str:
    """Upstream's readable line for ``event`` (``Synchronize``, ``RunPodSandbox``,
    ``StopPodSandbox`` or ``RemovePodSandbox``)."""
    who = f"{pod.namespace}/{pod.name}"
    ips = format_ips(pod.ips)
    if event == "Synchronize":
        return f"pod {who}: namespace={network_namespace(pod)} ips={ips}"
    if event == "RunPodSandbox":
        return f"Started pod {who}: namespace={network_namespace(pod)} ips={ips}"
    verb = {"StopPodSandbox": "Stopped", "RemovePodSandbox": "Removed"}[event]
    return f"{verb} pod {who}: ips={ips}"


def pod_record(event: str, pod: pb.PodSandbox) -> dict[str, Any]:
    """The JSON form of a line: the event, the pod's identity and its network.

    ``netns`` is the namespace path, ``null`` for a host-network pod; unlike the readable
    lines, every event carries it.
    """
    netns = network_namespace(pod)
    return {
        "event": event,
        "namespace": pod.namespace,
        "name": pod.name,
        "uid": pod.uid,
        "id": pod.id,
        "netns": None if netns == HOST_NETWORK else netns,
        "ips": list(pod.ips),
    }


class NetworkLogger(Plugin):
    """Log the network namespace and IPs of pods as they start, stop and go away."""

    def __init__(self, config: Config | None = None, **overrides: bool) -> None:
        """Create the plugin; ``overrides`` (command-line flags) win over any configuration."""
        self.overrides = overrides
        self.config = dataclasses.replace(config or Config(), **overrides)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            parsed = load_config(config, Config, source="network-logger configuration")
            self.config = dataclasses.replace(parsed, **self.overrides)

    def _pod(self, event: str, pod: pb.PodSandbox) -> None:
        if self.config.json:
            record = pod_record(event, pod)
            self.log.info("%s", json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        else:
            self.log.info("%s", pod_line(event, pod))

    def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> None:
        """Log the number of pods and containers, then every pod."""
        if self.config.json:
            summary = {"event": "Synchronize", "pods": len(pods), "containers": len(containers)}
            self.log.info("%s", json.dumps(summary, separators=(",", ":")))
        else:
            self.log.info(
                "Synchronized state with the runtime (%d pods, %d containers)...",
                len(pods),
                len(containers),
            )
        for pod in pods:
            self._pod("Synchronize", pod)

    def shutdown(self) -> None:
        """The runtime is shutting down."""
        self.log.info("Runtime shutting down...")

    def on_close(self) -> None:
        """The connection to the runtime is gone."""
        self.log.info("Connection to the runtime lost, exiting...")

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """A pod started: its network namespace exists and CNI gave it its IPs."""
        self._pod("RunPodSandbox", pod)

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """A pod is stopping: CNI has not released its IPs yet."""
        self._pod("StopPodSandbox", pod)

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """A pod was removed, its network resources released."""
        self._pod("RemovePodSandbox", pod)
