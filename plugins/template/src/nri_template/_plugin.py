"""The template plugin: the handlers upstream's template has, each with a one-line log and
what it may return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.stub import Plugin, load_config


@dataclass
class TemplateConfig:
    """The plugin's configuration; replace these with your own settings."""

    cfg_param1: str = ""
    """An example setting (YAML key ``cfg_param1``, ``cfg-param1`` or upstream's
    ``cfgParam1``)."""


def parse_config(text: str, source: str = "config") -> TemplateConfig:
    """Parse YAML ``text``; ConfigError names ``source`` and the bad key."""
    return load_config(text, TemplateConfig, source=source)


def _ctr(pod: pb.PodSandbox, container: pb.Container) -> str:
    return f"{pod.namespace}/{pod.name}/{container.name}"


class TemplatePlugin(Plugin):
    """A plugin that implements upstream's template handlers and changes nothing. Copy it
    and fill in.

    Delete the handlers you do not need: the stub subscribes to exactly the events whose
    handlers are overridden (here every pod and container lifecycle event, mask 0x7ff, as
    upstream's template). Three more handlers exist, commented out at the end of the class:
    a plugin implementing them is also called for pod resource updates and becomes a
    validator of every container creation.
    """

    def __init__(self, config: TemplateConfig | None = None) -> None:
        self.config = config or TemplateConfig()

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Connected: take the configuration (from the runtime, else --config)."""
        self.log.info("connected to %s/%s", runtime_name, runtime_version)
        if config.strip():
            self.config = parse_config(config, "runtime configuration")
            self.log.info("got configuration %s", self.config)
        # may return an event list/mask to subscribe to fewer events; None keeps them all

    def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> list[Update]:
        """Synchronized with the runtime's existing pods and containers."""
        self.log.info("synchronized state (%d pods, %d containers)", len(pods), len(containers))
        # may return Updates for existing containers
        return []

    def shutdown(self) -> None:
        """The runtime asked the plugin to shut down."""
        self.log.info("shutdown requested")

    def on_close(self) -> None:
        """The connection to the runtime was lost."""
        self.log.info("connection to the runtime lost")

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """A pod is being started (notification only)."""
        self.log.info("started pod %s/%s", pod.namespace, pod.name)

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """A pod is being stopped (notification only)."""
        self.log.info("stopped pod %s/%s", pod.namespace, pod.name)

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """A pod is being removed (notification only)."""
        self.log.info("removed pod %s/%s", pod.namespace, pod.name)

    def create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> list[Adjustment | Update]:
        """A container is being created."""
        self.log.info("creating container %s", _ctr(pod, container))
        # The widest set of changes: return an Adjustment of this container (env, mounts,
        # devices, annotations, resources, hooks, ...), Updates of other containers and
        # evictions (nri.api.eviction).
        return [Adjustment()]

    def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """A container was created (notification only)."""
        self.log.info("created container %s", _ctr(pod, container))

    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """A container is being started (notification only)."""
        self.log.info("starting container %s", _ctr(pod, container))

    def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """A container was started (notification only)."""
        self.log.info("started container %s", _ctr(pod, container))

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> list[Update]:
        """A container's resources are being updated."""
        self.log.info("updating container %s", _ctr(pod, container))
        # may return Updates (of this pending update or other containers) and evictions
        return []

    def post_update_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """A container's resources were updated (notification only)."""
        self.log.info("updated container %s", _ctr(pod, container))

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> list[Update]:
        """A container is being stopped."""
        self.log.info("stopped container %s", _ctr(pod, container))
        # may return Updates of the remaining containers
        return []

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """A container is being removed (notification only)."""
        self.log.info("removed container %s", _ctr(pod, container))

    # Handlers upstream's template leaves out; uncomment to subscribe to them as well.
    #
    # def update_pod_sandbox(self, pod, overhead_resources, resources) -> None:
    #     """A pod's resources are being updated (notification only)."""
    #
    # def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
    #     """A pod's resources were updated (notification only)."""
    #
    # def validate_container_adjustment(self, request) -> None:
    #     """Check the merged adjustment of every new container; raise to reject it."""
