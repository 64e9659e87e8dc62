"""The nri-logger command: bad input exits 2 before connecting; end to end over a socket."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nri.api import api_pb2 as pb
from nri.api import parse_event_list
from nri.testing import ScriptedRuntime as Runtime


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nri_logger", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--events", "createcontainer,bogus"], None, "bogus"),
        ([], "events: [nope]\n", "nope"),
        ([], "colour: red\n", "unknown key 'colour'"),
        ([], "logFile: [1]\n", "log_file"),
        (["--log-file", "/nonexistent/dir/x.log"], None, "cannot open log file"),
        (["--idx", "7"], None, "index"),
        (["--config", "/nonexistent/logger.yaml"], None, "cannot read config file"),
    ],
)
def test_bad_input_exits_2_without_connecting(
    tmp_path: Path, nri_unused_socket: str, args: list[str], config: str | None, message: str
) -> None:
    extra = list(args)
    if config is not None:
        (tmp_path / "logger.yaml").write_text(config)
        extra += ["--config", str(tmp_path / "logger.yaml")]
    if "--idx" not in extra:
        extra += ["--idx", "10"]
    result = run_cli("--socket-path", nri_unused_socket, *extra, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_help_lists_upstream_flags(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in ("--events", "--log-file", "--add-annotation", "--set-env", "--socket-path"):
        assert flag in result.stdout


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
