"""nri-differ around another plugin in the mock runtime: it reports what that plugin changed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.mock import MockRuntime


@pytest.mark.timeout(30)
async def test_differ_reports_the_changes_of_a_plugin_between_its_indices(
    tmp_path: Path, assert_valid_oci_spec: Callable[[dict[str, Any]], None]
) -> None:
    log_file = tmp_path / "differ.log"
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        differ = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nri_differ", "--socket-path", rt.socket_path,
            "--indices", "0,50,99", "--log-file", str(log_file),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("NRI_")},
        )  # fmt: skip
        try:
            await rt.wait_for_plugins(names=["00-differ", "50-differ", "99-differ"])
            logger = await rt.launch_plugin(
                [sys.executable, "-m", "nri_logger", "--events", "createcontainer",
                 "--set-env", "LOGGER_PID", "--log-file", os.devnull],
                name="logger",
                idx="30",
            )  # fmt: skip
            pod = await rt.run_pod("web")
            ctr = await rt.create_container(pod, "app", args=["sleep", "1"])
            await rt.start_container(ctr)
            marker = f"LOGGER_PID=logger-pid-{logger.pid}"
            assert marker in ctr.spec["process"]["env"]
            assert_valid_oci_spec(ctr.spec)
        finally:
            if differ.returncode is None:
                differ.terminate()
            await differ.wait()
    # lines are "<date> <time> INFO    <message>"
    lines = [line.split(maxsplit=3)[-1] for line in log_file.read_text().splitlines()]
    for expected in (
        "[50] RunPodSandbox: pod: <no changes>",
        "[50] CreateContainer: container: create: env[2]: From: <none> -> To: " + marker,
        "[99] CreateContainer: container: <no changes>",
        "[00] PostStartContainer: container (since StartContainer): update: state: "
        "From: CONTAINER_CREATED -> To: CONTAINER_RUNNING",
    ):
        assert expected in lines, "\n".join(lines)
    assert not any(line.startswith("[50] StartContainer: container: create") for line in lines)
