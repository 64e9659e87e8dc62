"""The request logger: dumps every subscribed request as YAML, optionally injects markers."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from nri.api import Adjustment, EventMask
from nri.api import api_pb2 as pb
from nri.stub import LogFile, Plugin
from nri_logger._config import LoggerConfig, merge, parse_config
from nri_logger._dump import dump_lines


class RequestLogger(Plugin):
    """Log each request and event the runtime sends, with pod and container data as YAML.

    Subscribes to ``config.events`` (all events when empty). In CreateContainer it can add
    or set an annotation and an environment variable whose value is ``logger-pid-<pid>``:
    *add* fails the request when another plugin set the same key, *set* overrides it.
    """

    def __init__(
        self,
        config: LoggerConfig | None = None,
        *,
        startup_config: str | None = None,
        output: logging.Logger | None = None,
    ) -> None:
        self.config = config or LoggerConfig()
        self.events: EventMask | None = self.config.event_mask()
        self.output = output or logging.getLogger("nri.logger")
        self._startup_config = startup_config
        self._log_file = LogFile(self.output)
        self.set_log_file(self.config.log_file)

    # -- output --------------------------------------------------------------------------

    def set_log_file(self, path: str) -> None:
        """Send the log to ``path`` (appending), or back to stderr when ``path`` is empty.

        Raises ConfigError when the file cannot be opened; the old output stays then.
        """
        self._log_file.switch(path)

    def dump(self, prefix: str, *pairs: tuple[str, Any]) -> None:
        """Log ``(tag, object)`` pairs as upstream does: a header line, then YAML lines."""
        for line in dump_lines(prefix, pairs):
            self.output.info("%s", line)

    def close(self) -> None:
        """Close the log file, if any."""
        self._log_file.close()

    # -- requests without an event bit -----------------------------------------------------

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> EventMask | None:
        """Apply the runtime's configuration over the command line's; return the events."""
        self.output.info(
            "got configuration data: %r from runtime %s %s", config, runtime_name, runtime_version
        )
        if not config.strip() or config == self._startup_config:
            return self.events
        update, given = parse_config(config, source="runtime configuration")
        merged = merge(self.config, update, given)
        events = merged.event_mask("runtime configuration")
        self.set_log_file(merged.log_file)
        self.config, self.events = merged, events
        return events

    def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> None:
        """Log the pods and containers the runtime already has."""
        self.dump("Synchronize", ("pods", list(pods)), ("containers", list(containers)))

    def shutdown(self) -> None:
        """Log that the runtime asked the plugin to shut down."""
        self.output.info("Shutdown")

    def on_close(self) -> None:
        """Log that the connection to the runtime was lost."""
        self.output.info("connection to the runtime lost")

    # -- pod sandbox events ----------------------------------------------------------------

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Log a pod being started."""
        self.dump("RunPodSandbox", ("pod", pod))

    def update_pod_sandbox(
        self,
        pod: pb.PodSandbox,
        overhead_resources: pb.LinuxResources,
        resources: pb.LinuxResources,
    ) -> None:
        """Log a pod's resources being updated."""
        self.dump(
            "UpdatePodSandbox",
            ("pod", pod),
            ("overHeadResources", overhead_resources),
            ("resources", resources),
        )

    def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Log a pod's resources having been updated."""
        self.dump("PostUpdatePodSandbox", ("pod", pod))

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Log a pod being stopped."""
        self.dump("StopPodSandbox", ("pod", pod))

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Log a pod being removed."""
        self.dump("RemovePodSandbox", ("pod", pod))

    # -- container events ------------------------------------------------------------------

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        """Log a container being created and apply the configured injections."""
        self.dump("CreateContainer", ("pod", pod), ("container", container))
        return self.adjustment()

    def adjustment(self) -> Adjustment:
        """The CreateContainer adjustment the configuration asks for (maybe empty)."""
        value = f"logger-pid-{os.getpid()}"
        adjust = Adjustment()
        cfg = self.config
        if cfg.add_annotation:
            adjust.add_annotation(cfg.add_annotation, value)
        if cfg.set_annotation:
            adjust.remove_annotation(cfg.set_annotation)
            adjust.add_annotation(cfg.set_annotation, value)
        if cfg.add_env:
            adjust.add_env(cfg.add_env, value)
        if cfg.set_env:
            adjust.remove_env(cfg.set_env)
            adjust.add_env(cfg.set_env, value)
        return adjust

    def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Log a container having been created."""
        self.dump("PostCreateContainer", ("pod", pod), ("container", container))

    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Log a container being started."""
        self.dump("StartContainer", ("pod", pod), ("container", container))

    def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Log a container having been started."""
        self.dump("PostStartContainer", ("pod", pod), ("container", container))

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> None:
        """Log a container's resources being updated."""
        self.dump(
            "UpdateContainer", ("pod", pod), ("container", container), ("resources", resources)
        )

    def post_update_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Log a container's resources having been updated."""
        self.dump("PostUpdateContainer", ("pod", pod), ("container", container))

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Log a container being stopped."""
        self.dump("StopContainer", ("pod", pod), ("container", container))

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Log a container being removed."""
        self.dump("RemoveContainer", ("pod", pod), ("container", container))

    def validate_container_adjustment(self, request: pb.ValidateContainerAdjustmentRequest) -> None:
        """Log the merged adjustment of a container being created (never rejects it)."""
        self.dump("ValidateContainerAdjustment", ("request", request))
