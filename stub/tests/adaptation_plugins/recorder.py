"""Test plugin for the adaptation tests: records what it gets, optionally misbehaves.

Configured by YAML (``--config FILE`` or the runtime's Configure): ``record`` is a file that
gets one line per request (``Configure <config>``, ``<Event> <id>``), ``mode`` is ``normal``,
``hang`` (CreateContainer never answers), ``die`` (SIGKILLs itself inside CreateContainer)
or ``fail`` (CreateContainer raises), ``events`` optionally narrows the subscription.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.stub import Plugin, load_config, run


@dataclass
class Settings:
    record: str = ""
    mode: str = "normal"
    events: str = ""


class Recorder(Plugin):
    def __init__(self) -> None:
        self.settings = Settings()

    def _note(self, line: str) -> None:
        if self.settings.record:
            with open(self.settings.record, "a", encoding="utf-8") as f:
                f.write(line.replace("\n", "\\n") + "\n")

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> Any:
        self.settings = load_config(config, Settings, source="Configure")
        self._note(f"Configure {config}")
        return self.settings.events or None

    def synchronize(self, pods: Any, containers: Any) -> None:
        self._note(f"Synchronize {len(pods)} {len(containers)}")

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note(f"RunPodSandbox {pod.id}")

    def update_pod_sandbox(self, pod: pb.PodSandbox, overhead: Any, resources: Any) -> None:
        self._note(f"UpdatePodSandbox {pod.id}")

    def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note(f"PostUpdatePodSandbox {pod.id}")

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note(f"StopPodSandbox {pod.id}")

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note(f"RemovePodSandbox {pod.id}")

    async def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        self._note(f"CreateContainer {container.id}")
        if self.settings.mode == "hang":
            await asyncio.sleep(3600)
        if self.settings.mode == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.settings.mode == "fail":
            raise RuntimeError("recorder was told to fail")
        assert self.stub is not None
        return Adjustment().add_env(f"ADDED_BY_{self.stub.idx}", self.stub.full_name)

    def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note(f"PostCreateContainer {container.id}")

    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note(f"StartContainer {container.id}")

    def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note(f"PostStartContainer {container.id}")

    def update_container(self, pod: pb.PodSandbox, container: pb.Container, resources: Any) -> Any:
        self._note(f"UpdateContainer {container.id}")
        return Update(container.id).set_linux_cpu_shares(256)

    def post_update_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note(f"PostUpdateContainer {container.id}")

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        self._note(f"StopContainer {container.id}")
        return Update("other").set_linux_cpu_shares(128)

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note(f"RemoveContainer {container.id}")

    def shutdown(self) -> None:
        self._note("Shutdown")


if __name__ == "__main__":
    sys.exit(run(Recorder))
