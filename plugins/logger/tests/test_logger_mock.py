"""nri-logger launched by the mock runtime (the ``nri_runtime`` fixture): its log and its
injections in the OCI spec."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import ConflictError
from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.mock import SyncMockRuntime
from nri.stub import Plugin

OWNER_KEY = "example.com/owner"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
README_PLUGIN = (
    "nri-logger --idx 10 --name logger --events pod,createcontainer --set-env LOGGER_PID"
)


class EarlierPlugin(Plugin):
    """Runs before the logger: sets LOGGER_PID in container "a", the annotation in "b"."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        if container.name == "a":
            return Adjustment().add_env("LOGGER_PID", "earlier")
        return Adjustment().add_annotation(OWNER_KEY, "earlier")


def test_logger_logs_and_injects_into_the_spec(
    nri_runtime: SyncMockRuntime,
    tmp_path: Path,
    assert_valid_oci_spec: Callable[[dict[str, Any]], None],
) -> None:
    log_file = tmp_path / "logger.log"
    command = [
        sys.executable, "-m", "nri_logger", "--log-file", str(log_file),
        "--set-env", "LOGGER_PID", "--add-annotation", OWNER_KEY,
    ]  # fmt: skip
    nri_runtime.add_plugin(EarlierPlugin(), name="earlier", idx="05")
    handle = nri_runtime.launch_plugin(command, name="logger", idx="10")
    marker = f"logger-pid-{handle.pid}"
    pod = nri_runtime.run_pod("web", labels={"app": "web"})
    ctr = nri_runtime.create_container(pod, "a", args=["nginx", "-g", "daemon off;"])

    env = ctr.spec["process"]["env"]
    assert f"LOGGER_PID={marker}" in env  # set: overrides the earlier plugin's value
    assert not any(e == "LOGGER_PID=earlier" for e in env)
    assert ctr.spec["annotations"][OWNER_KEY] == marker
    assert ctr.owners["Env:LOGGER_PID"] == "10-logger"
    assert ctr.owners[f"Annotations:{OWNER_KEY}"] == "10-logger"
    assert_valid_oci_spec(ctr.spec)

    with pytest.raises(ConflictError, match=OWNER_KEY):  # add: both set the annotation
        nri_runtime.create_container(pod, "b")
    assert [c.name for c in nri_runtime.containers.values()] == ["a"]
    nri_runtime.start_container(ctr)
    nri_runtime.close()  # the logger stops: its log file is complete

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


def test_readme_scenario_passes_and_shows_the_log() -> None:
    # README.md's nri-mock-runtime command, with the plugin run by this interpreter.
    assert f'nri-mock-runtime run scenario.yaml --plugin "{README_PLUGIN}"' in (
        (PLUGIN_DIR / "README.md").read_text()
    )
    plugin = README_PLUGIN.replace("nri-logger", f"{shlex.quote(sys.executable)} -m nri_logger")
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", "scenario.yaml", "--plugin", plugin],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    create = out[out.index("[2] create-container nginx") : out.index("[3] start-container")]
    assert re.search(r"^  10-logger \| .* CreateContainer:    - daemon off;$", create, re.M), out
    assert re.search(r"^  10-logger \| .* StopPodSandbox:    name: web-0$", out, re.M), out
