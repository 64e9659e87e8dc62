"""The nri-differ command: bad input exits 2 before connecting; two indices end to end."""

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
from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection
from nri.testing import ScriptedRuntime as Runtime


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NRI_")}


COMMAND = [sys.executable, "-m", "nri_differ"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="differ", idx=None)


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--indices", "--log-file", "--verbose-level", "--yaml")
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    check.check_bad_flags(
        Rejection(["-indices", "10"], "at least two"),
        Rejection(["--indices=10,abc"], "'abc'"),
        Rejection(["-idx", "10"], "--idx does not apply"),
        Rejection(["-verbose-level", "9"], "invalid choice"),
        Rejection(["-name", "10-foo"], "starts with an index"),
        Rejection(["--log-file", "/nonexistent/dir/d.log"], "cannot open log file"),
    )


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(wrong_type=("verboseLevel: high\n", "verbose_level"))
    check.assert_rejects(config="indices: '7'\n", message="at least two")


def test_registers_at_every_index(check: PluginCommandCheck, nri_runtime: SyncMockRuntime) -> None:
    seen = check.check_registers(nri_runtime, "-yaml=false", names=["00-differ", "99-differ"])
    assert len(seen.plugins) == 2


@pytest.mark.timeout(30)
async def test_two_indices_in_one_process_stop_together(tmp_path: Path) -> None:
    sock_path = tmp_path / "nri.sock"
    stderr_path = tmp_path / "stderr.txt"
    async with Runtime(sock_path) as runtime:
        with stderr_path.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "nri_differ",
                "--indices",
                "50,05",
                "--socket-path",
                str(sock_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=clean_env(),
            )
        try:
            peers = {}
            for _ in range(2):
                peer = await runtime.accept()
                registered = await peer.registered
                assert registered.plugin_name == "differ"
                peers[registered.plugin_idx] = peer
            assert sorted(peers) == ["05", "50"]
            for peer in peers.values():
                assert await peer.handshake() == 0x1FFF
            pod = pb.PodSandbox(id="pod-1", name="web", namespace="default")
            before = pb.Container(id="c1", pod_sandbox_id="pod-1", name="app")
            after = pb.Container(id="c1", pod_sandbox_id="pod-1", name="app", env=["X=1"])
            for idx, ctr in (("05", before), ("50", after)):
                reply = await peers[idx].call(
                    "CreateContainer",
                    pb.CreateContainerRequest(pod=pod, container=ctr),
                    pb.CreateContainerResponse,
                )
                assert reply == pb.CreateContainerResponse()
            peers["05"].mux.close()  # one index loses the runtime: the whole process stops
            code = await asyncio.wait_for(process.wait(), 20)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await process.wait()
    text = stderr_path.read_text()
    assert code == 1, text
    assert "went away" in text
    assert "[50] CreateContainer: pod: <no changes>" in text
    assert "[50] CreateContainer: container: create: env[0]: From: <none> -> To: X=1" in text


def test_sample_config_is_valid() -> None:
    from nri_differ import parse_config

    sample = Path(__file__).parent.parent / "sample-config.yaml"
    parse_config(sample.read_text(), source=str(sample))
