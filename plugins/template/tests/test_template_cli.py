"""The nri-template command: bad input exits 2 before connecting; end to end over a socket."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nri.api import api_pb2 as pb
from nri.testing import ScriptedRuntime as Runtime


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NRI_")}


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--idx", "1"], None, "invalid plugin identity"),
        (["--idx", "10"], "bogus: 1\n", "unknown key 'bogus'"),
        (["--idx", "10"], "cfg_param1: [x]\n", "cfg_param1: expected str"),
        (["--idx", "10", "--config", "/nonexistent.yaml"], None, "cannot read config file"),
        (["--log-level", "loud"], None, "invalid choice"),
    ],
)
def test_bad_input_exits_2_without_connecting(
    tmp_path: Path, args: list[str], config: str | None, message: str
) -> None:
    sock_path = tmp_path / "nri.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen()
    listener.setblocking(False)
    extra = list(args)
    if config is not None:
        (tmp_path / "template.yaml").write_text(config)
        extra += ["--config", str(tmp_path / "template.yaml")]
    result = subprocess.run(
        [sys.executable, "-m", "nri_template", "--socket-path", str(sock_path), *extra],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()


@pytest.mark.timeout(30)
async def test_end_to_end_runtime_config_and_exit_when_runtime_goes(tmp_path: Path) -> None:
    sock_path = tmp_path / "nri.sock"
    stderr_path = tmp_path / "stderr.txt"
    async with Runtime(sock_path) as runtime:
        with stderr_path.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "nri_template",
                "--idx",
                "42",
                "--socket-path",
                str(sock_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=clean_env(),
            )
        try:
            peer = await runtime.accept()
            registered = await peer.registered
            assert (registered.plugin_name, registered.plugin_idx) == ("template", "42")
            assert await peer.handshake("cfg_param1: hello\n") == 0x3FFF
            pod = pb.PodSandbox(id="p1", name="web", namespace="ns")
            reply = await peer.call(
                "CreateContainer",
                pb.CreateContainerRequest(pod=pod, container=pb.Container(id="c1", name="app")),
                pb.CreateContainerResponse,
            )
            assert reply == pb.CreateContainerResponse(adjust=pb.ContainerAdjustment())
            peer.mux.close()  # the runtime goes away: the plugin exits 1
            code = await asyncio.wait_for(process.wait(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = stderr_path.read_text()
    assert code == 1, text
    assert "got configuration TemplateConfig(cfg_param1='hello')" in text
    assert "creating container ns/web/app" in text
    assert "went away" in text


def test_sample_config_is_valid() -> None:
    from nri_template import parse_config

    sample = Path(__file__).parent.parent / "sample-config.yaml"
    parse_config(sample.read_text(), source=str(sample))
