"""One differ plugin per index, sharing a tracker that compares what consecutive indices see."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from nri.api import api_pb2 as pb
from nri.stub import LogFile, Plugin
from nri_differ._config import DifferConfig, parse_config
from nri_differ._data import field_changes, to_data, to_yaml, yaml_diff

_REMOVALS = {"RemoveContainer": "container", "RemovePodSandbox": "pod"}


class Tracker:
    """State shared by the differ's plugins: who runs where and what each one saw.

    For each event and object (pod, container) the plugin at one index records a snapshot;
    the plugin at the next index compares what it receives with it, which shows what the
    plugins registered between the two indices changed. The last index also remembers
    every pod and container, so the first index can show what changed since the previous
    event for the same object (for example the state and pid between create and update).
    """

    def __init__(self, indices: Sequence[str], config: DifferConfig | None = None) -> None:
        self.indices = list(indices)
        self.config = config or DifferConfig(indices=",".join(indices))
        self.output = logging.getLogger("nri.differ")
        self.pending: dict[tuple[str, str, str, str], tuple[str, Any]] = {}
        self.seen: dict[tuple[str, str], tuple[str, Any]] = {}
        self._log_file = LogFile(self.output)
        self._startup_config: str | None = None
        self.set_log_file(self.config.log_file)

    # -- output --------------------------------------------------------------------------

    def set_log_file(self, path: str) -> None:
        """Append the log to ``path``, or log to stderr when empty; ConfigError if unopenable."""
        self._log_file.switch(path)

    def close(self) -> None:
        """Close the log file, if any."""
        self._log_file.close()

    def configure(self, text: str, startup: str | None) -> None:
        """Apply configuration text from the runtime (log file, verbosity, format)."""
        if not text.strip() or text == startup:
            return
        update, given = parse_config(text, source="runtime configuration")
        if "indices" in given and update.index_list() != self.indices:
            self.output.warning(
                "runtime configuration asks for indices %s; indices are fixed at start (%s)",
                update.indices,
                ",".join(self.indices),
            )
        if "log_file" in given:
            self.set_log_file(update.log_file)
            self.config.log_file = update.log_file
        if "verbose_level" in given:
            self.config.verbose_level = update.verbose_level
        if "yaml" in given:
            self.config.yaml = update.yaml

    def dump(self, idx: str, prefix: str, tag: str, data: Any) -> None:
        """Log ``data`` as YAML lines, upstream style."""
        self.output.info("[%s] %s: %s:", idx, prefix, tag)
        for line in to_yaml(data).strip().splitlines():
            self.output.info("[%s] %s:    %s", idx, prefix, line)

    # -- diffing -------------------------------------------------------------------------

    def observe(
        self, idx: str, event: str, pod: pb.PodSandbox, container: pb.Container | None = None
    ) -> None:
        """Record what the plugin at ``idx`` received for ``event`` and report the changes
        since the previous index (or, at the first index, since the object was last seen)."""
        position = self.indices.index(idx)
        last = position == len(self.indices) - 1
        ctr_id = container.id if container is not None else ""
        objects: list[tuple[str, str, Any]] = [("pod", pod.id, to_data(pod))]
        if container is not None:
            objects.append(("container", container.id, to_data(container)))
        for kind, object_id, data in objects:
            key = (event, pod.id, ctr_id, kind)
            if position == 0:
                if self.config.verbose_level > 0:
                    self.dump(idx, event, kind, data)
                before = self.seen.get((kind, object_id))
                if before is not None and before[1] != data:
                    self.report(idx, event, f"{kind} (since {before[0]})", before[1], data)
            else:
                previous = self.pending.get(key)
                if previous is None:
                    # the earlier index had not registered yet when this event passed it
                    self.output.debug(
                        "[%s] %s: %s: no snapshot from earlier index", idx, event, kind
                    )
                else:
                    self.report(idx, event, kind, previous[1], data, old_idx=previous[0])
            if last:
                self.pending.pop(key, None)
                self.seen[(kind, object_id)] = (event, data)
            else:
                self.pending[key] = (idx, data)
        removed = _REMOVALS.get(event)
        if last and removed is not None:
            self.forget(removed, ctr_id if removed == "container" else pod.id)

    def forget(self, kind: str, object_id: str) -> None:
        """Drop everything remembered about a removed pod or container."""
        self.seen.pop((kind, object_id), None)
        if kind == "container":
            stale = [k for k in self.pending if k[2] == object_id]
        else:
            stale = [k for k in self.pending if k[1] == object_id]
        for k in stale:
            del self.pending[k]

    def report(
        self,
        idx: str,
        event: str,
        what: str,
        old: Any,
        new: Any,
        *,
        old_idx: str | None = None,
    ) -> None:
        """Log the difference between two snapshots, as field paths or a YAML diff."""
        prefix = f"[{idx}] {event}: {what}:"
        verbose = self.config.verbose_level > 1
        if verbose:
            self.output.info("[%s] original values for %s", idx, what)
            self.dump(idx, event, what, old)
        if self.config.yaml:
            label = f"{what}@{old_idx}" if old_idx else f"{what} before"
            lines = yaml_diff(old, new, label, f"{what}@{idx}")
        else:
            lines = [str(change) for change in field_changes(old, new)]
        if not lines:
            self.output.info("%s <no changes>", prefix)
        for line in lines:
            self.output.info("%s %s", prefix, line)
        if verbose and lines:
            self.output.info("[%s] values after changes for %s", idx, what)
            self.dump(idx, event, what, new)


class DifferPlugin(Plugin):
    """The differ's plugin at one index; every event goes to the shared :class:`Tracker`."""

    def __init__(self, tracker: Tracker, idx: str, startup_config: str | None = None) -> None:
        self.tracker = tracker
        self.idx = idx
        self._startup_config = startup_config

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Apply the runtime's configuration (shared by all indices)."""
        self.tracker.output.info(
            "[%s] connected to %s %s; configuration %r",
            self.idx,
            runtime_name,
            runtime_version,
            config,
        )
        self.tracker.configure(config, self._startup_config)

    def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> None:
        """Dump the runtime's pods and containers at verbose level 3."""
        if self.tracker.config.verbose_level > 2:
            self.tracker.dump(self.idx, "Synchronize", "pods", to_data(list(pods)))
            self.tracker.dump(self.idx, "Synchronize", "containers", to_data(list(containers)))

    def on_close(self) -> None:
        """Log the lost connection."""
        self.tracker.output.info("[%s] connection to the runtime lost", self.idx)

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Diff a pod being started."""
        self.tracker.observe(self.idx, "RunPodSandbox", pod)

    def update_pod_sandbox(
        self,
        pod: pb.PodSandbox,
        overhead_resources: pb.LinuxResources,
        resources: pb.LinuxResources,
    ) -> None:
        """Diff a pod being updated."""
        self.tracker.observe(self.idx, "UpdatePodSandbox", pod)

    def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Diff a pod after its update."""
        self.tracker.observe(self.idx, "PostUpdatePodSandbox", pod)

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Diff a pod being stopped."""
        self.tracker.observe(self.idx, "StopPodSandbox", pod)

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """Diff a pod being removed (and forget it after the last index)."""
        self.tracker.observe(self.idx, "RemovePodSandbox", pod)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff a container being created: shows what earlier plugins adjusted."""
        self.tracker.observe(self.idx, "CreateContainer", pod, container)

    def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff a created container."""
        self.tracker.observe(self.idx, "PostCreateContainer", pod, container)

    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff a container being started."""
        self.tracker.observe(self.idx, "StartContainer", pod, container)

    def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff a started container."""
        self.tracker.observe(self.idx, "PostStartContainer", pod, container)

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> None:
        """Diff a container being updated."""
        self.tracker.observe(self.idx, "UpdateContainer", pod, container)

    def post_update_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff an updated container."""
        self.tracker.observe(self.idx, "PostUpdateContainer", pod, container)

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff a container being stopped."""
        self.tracker.observe(self.idx, "StopContainer", pod, container)

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """Diff a container being removed (and forget it after the last index)."""
        self.tracker.observe(self.idx, "RemoveContainer", pod, container)
