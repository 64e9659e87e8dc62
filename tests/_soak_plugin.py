"""Plugin process of the chaos soak (tests/test_soak.py).

Appends ``<Event> <id>`` to ``<log-dir>/<NN-name>.<pid>.log`` for every event it gets,
before answering, and marks each container it sees created with ``SOAK_<NAME>=<container
name>``. It reconnects when the runtime drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.stub import Plugin, Stub


def env_key(name: str) -> str:
    """The environment variable a soak plugin called ``name`` sets."""
    return "SOAK_" + name.upper().replace("-", "_")


class SoakPlugin(Plugin):
    def __init__(self, name: str, log_path: str) -> None:
        self.key = env_key(name)
        self._fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _note(self, event: str, ident: str) -> None:
        os.write(self._fd, f"{event} {ident}\n".encode())

    def synchronize(self, pods: Any, containers: Any) -> None:
        self._note("Synchronize", str(len(containers)))

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note("RunPodSandbox", pod.id)

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note("StopPodSandbox", pod.id)

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._note("RemovePodSandbox", pod.id)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        self._note("CreateContainer", container.id)
        return Adjustment().add_env(self.key, container.name)

    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note("StartContainer", container.id)

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> None:
        self._note("UpdateContainer", f"{container.id} {resources.cpu.shares.value}")

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note("StopContainer", container.id)

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._note("RemoveContainer", container.id)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idx", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--socket-path", required=True)
    parser.add_argument("--log-dir", required=True)
    args = parser.parse_args()
    log = os.path.join(args.log_dir, f"{args.idx}-{args.name}.{os.getpid()}.log")
    plugin = SoakPlugin(args.name, log)
    stub = Stub(
        plugin,
        idx=args.idx,
        name=args.name,
        socket_path=args.socket_path,
        reconnect=True,
        reconnect_delay=0.1,
        reconnect_max_delay=0.5,
        environ={},
    )
    await stub.run()


if __name__ == "__main__":
    asyncio.run(main())
