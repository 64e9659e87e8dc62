"""The nri-logger command: bad input exits 2 before connecting; end to end over a socket."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nri.api import api_pb2 as pb
from nri.api import parse_event_list
from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection
from nri.testing import ScriptedRuntime as Runtime

COMMAND = [sys.executable, "-m", "nri_logger"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="logger")


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--events", "--log-file", "--add-annotation", "--set-env")
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    check.check_bad_flags(
        Rejection(["-events", "createcontainer,bogus"], "--events: "),
        Rejection(["--log-file", "/nonexistent/dir/x.log"], "cannot open log file"),
    )


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(wrong_type=("logFile: [1]\n", "log_file: expected str"))
    check.assert_rejects(config="events: [nope]\n", message="events: ")


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime, tmp_path: Path
) -> None:
    log_file = tmp_path / "requests.log"
    seen = check.check_registers(nri_runtime, "-events=runpodsandbox", "-log-file", str(log_file))
    assert seen.plugins[0].events == int(parse_event_list("runpodsandbox"))
    assert log_file.exists()


@pytest.mark.timeout(30)
async def test_end_to_end_over_a_unix_socket(tmp_path: Path) -> None:
    sock_path = tmp_path / "nri.sock"
    stderr_path = tmp_path / "stderr.txt"
    async with Runtime(sock_path) as runtime:
        with stderr_path.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "nri_logger",
                "--idx",
                "10",
                "--socket-path",
                str(sock_path),
                "--events",
                "runpodsandbox,createcontainer",
                "--set-env",
                "LOGGER_ENV",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={k: v for k, v in os.environ.items() if not k.startswith("NRI_")},
            )
        try:
            peer = await runtime.accept()
            registered = await peer.registered
            assert (registered.plugin_name, registered.plugin_idx) == ("logger", "10")
            events = await peer.handshake()
            assert events == int(parse_event_list("runpodsandbox,createcontainer"))
            pod = pb.PodSandbox(id="pod-1", name="web", namespace="default")
            await peer.call(
                "RunPodSandbox", pb.RunPodSandboxRequest(pod=pod), pb.RunPodSandboxResponse
            )
            reply = await peer.call(
                "CreateContainer",
                pb.CreateContainerRequest(pod=pod, container=pb.Container(id="c1", name="app")),
                pb.CreateContainerResponse,
            )
            value = f"logger-pid-{process.pid}"
            assert [(e.key, e.value) for e in reply.adjust.env] == [
                ("-LOGGER_ENV", ""),
                ("LOGGER_ENV", value),
            ]
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await process.wait()
    text = stderr_path.read_text()
    assert code == 0, text
    assert "RunPodSandbox: pod:" in text
    assert "RunPodSandbox:    name: web" in text
    assert "CreateContainer:    name: app" in text


def test_sample_config_is_valid() -> None:
    from nri_logger import parse_config

    sample = Path(__file__).parent.parent / "sample-config.yaml"
    parse_config(sample.read_text(), source=str(sample))
