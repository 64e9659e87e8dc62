"""nri-differ around another plugin in the mock runtime (the ``nri_runtime`` fixture): it
reports what that plugin changed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nri.mock import SyncMockRuntime

PLUGIN_DIR = Path(__file__).resolve().parents[1]
README_SOCKET = "/tmp/nri-differ.sock"


def test_differ_reports_the_changes_of_a_plugin_between_its_indices(
    nri_runtime: SyncMockRuntime,
    tmp_path: Path,
    assert_valid_oci_spec: Callable[[dict[str, Any]], None],
) -> None:
    log_file = tmp_path / "differ.log"
    # One process, three connections: it dials the runtime's socket like an external plugin.
    differ = subprocess.Popen(
        [sys.executable, "-m", "nri_differ", "--socket-path", nri_runtime.socket_path,
         "--indices", "0,50,99", "--log-file", str(log_file)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("NRI_")},
    )  # fmt: skip
    try:
        nri_runtime.wait_for_plugins(names=["00-differ", "50-differ", "99-differ"])
        logger = nri_runtime.launch_plugin(
            [sys.executable, "-m", "nri_logger", "--events", "createcontainer",
             "--set-env", "LOGGER_PID", "--log-file", os.devnull],
            name="logger",
            idx="30",
        )  # fmt: skip
        pod = nri_runtime.run_pod("web")
        ctr = nri_runtime.create_container(pod, "app", args=["sleep", "1"])
        nri_runtime.start_container(ctr)
        marker = f"LOGGER_PID=logger-pid-{logger.pid}"
        assert marker in ctr.spec["process"]["env"]
        assert_valid_oci_spec(ctr.spec)
    finally:
        differ.terminate()
        differ.wait(10)
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


def test_readme_scenario_passes_and_shows_the_differences(tmp_path: Path) -> None:
    # README.md's nri-mock-runtime command, on a socket of this test, plugins run by this
    # interpreter.
    readme = (PLUGIN_DIR / "README.md").read_text()
    start = readme.index("nri-mock-runtime run scenario.yaml")
    words = shlex.split(readme[start : readme.index("```", start)].replace("\\\n", " "))
    python = shlex.quote(sys.executable)
    args = [
        word.replace(README_SOCKET, str(tmp_path / "nri.sock"))
        .replace("nri-differ ", f"{python} -m nri_differ ")
        .replace("nri-logger ", f"{python} -m nri_logger ")
        for word in words[2:]
    ]
    assert "--external-plugin" in args and "--wait-for" in args
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", *args],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(
        r"^  differ \| .*\[99\] CreateContainer: container: create: env\[2\]: From: <none> -> "
        r"To: LOGGER_PID=logger-pid-\d+$",
        out,
        re.M,
    ), out
    assert re.search(
        r"^  differ \| .*\[00\] PostStartContainer: container \(since StartContainer\): update: "
        r"state: From: CONTAINER_CREATED -> To: CONTAINER_RUNNING$",
        out,
        re.M,
    ), out
