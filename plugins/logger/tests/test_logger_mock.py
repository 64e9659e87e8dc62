"""nri-logger launched by the mock runtime: its log and its injections in the OCI spec."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import ConflictError
from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime
from nri.stub import Plugin

OWNER_KEY = "example.com/owner"


class EarlierPlugin(Plugin):
    """Runs before the logger: sets LOGGER_PID in container "a", the annotation in "b"."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        if container.name == "a":
            return Adjustment().add_env("LOGGER_PID", "earlier")
        return Adjustment().add_annotation(OWNER_KEY, "earlier")


@pytest.mark.timeout(30)
async def test_logger_logs_and_injects_into_the_spec(
    tmp_path: Path, assert_valid_oci_spec: Callable[[dict[str, Any]], None]
) -> None:
    log_file = tmp_path / "logger.log"
    command = [
        sys.executable, "-m", "nri_logger", "--log-file", str(log_file),
        "--set-env", "LOGGER_PID", "--add-annotation", OWNER_KEY,
    ]  # fmt: skip
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(EarlierPlugin(), name="earlier", idx="05")
        handle = await rt.launch_plugin(command, name="logger", idx="10")
        marker = f"logger-pid-{handle.pid}"
        pod = await rt.run_pod("web", labels={"app": "web"})
        ctr = await rt.create_container(pod, "a", args=["nginx", "-g", "daemon off;"])

        env = ctr.spec["process"]["env"]
        assert f"LOGGER_PID={marker}" in env  # set: overrides the earlier plugin's value
        assert not any(e == "LOGGER_PID=earlier" for e in env)
        assert ctr.spec["annotations"][OWNER_KEY] == marker
        assert ctr.owners["Env:LOGGER_PID"] == "10-logger"
        assert ctr.owners[f"Annotations:{OWNER_KEY}"] == "10-logger"
        assert_valid_oci_spec(ctr.spec)

        with pytest.raises(ConflictError, match=OWNER_KEY):  # add: both set the annotation
            await rt.create_container(pod, "b")
        assert [c.name for c in rt.containers.values()] == ["a"]
        await rt.start_container(ctr)

    text = log_file.read_text()
    for line in (
        "RunPodSandbox: pod:",
        "RunPodSandbox:    name: web",
        "RunPodSandbox:      app: web",
        "CreateContainer: container:",
        "CreateContainer:    - daemon off;",
        "CreateContainer:    name: a",
        "CreateContainer:    name: b",
        "ValidateContainerAdjustment: request:",
        "StartContainer:    state: CONTAINER_CREATED",
        "PostStartContainer:    state: CONTAINER_RUNNING",
    ):
        assert line in text, line
    # the validator sees the merged adjustment, the logger's value included
    assert f"value: {marker}" in text.split("ValidateContainerAdjustment: request:", 1)[1]
