"""The ``allow`` section of nri-rdt: unit checks and through the real command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nri_rdt import Config, RdtPlugin, parse_config

from nri.adaptation import PluginError
from nri.api import pb
from nri.mock import MockRuntime
from nri.stub import InjectionDenied

KEY = "closid.rdt.noderesource.dev/container.app"
ALLOW = "allow:\n  namespaces: [rdt-jobs]\n  on-denied: ON_DENIED\n"


def pod(namespace: str) -> pb.PodSandbox:
    return pb.PodSandbox(name="p", namespace=namespace, annotations={KEY: "gold"})


def test_default_allows_every_pod() -> None:
    adjust = RdtPlugin(Config()).create_container(pod("any"), pb.Container(name="app"))
    assert adjust.message.linux.rdt.clos_id.value == "gold"


def test_refuse_and_ignore() -> None:
    refuse = RdtPlugin(parse_config(ALLOW.replace("ON_DENIED", "refuse"), "t"))
    with pytest.raises(InjectionDenied, match="namespace 'other'"):
        refuse.create_container(pod("other"), pb.Container(name="app"))
    ignore = RdtPlugin(parse_config(ALLOW.replace("ON_DENIED", "ignore"), "t"))
    assert not ignore.create_container(
        pod("other"), pb.Container(name="app")
    ).message.linux.rdt.clos_id.value
    assert (
        refuse.create_container(
            pod("rdt-jobs"), pb.Container(name="app")
        ).message.linux.rdt.clos_id.value
        == "gold"
    )


@pytest.mark.timeout(30)
async def test_refused_through_the_command(tmp_path: Path) -> None:
    config = tmp_path / "rdt.yaml"
    config.write_text(ALLOW.replace("ON_DENIED", "refuse"))
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, "-m", "nri_rdt", "--config", str(config)], name="rdt", idx="10"
        )
        allowed = await rt.run_pod("a", namespace="rdt-jobs", annotations={KEY: "gold"})
        ctr = await rt.create_container(allowed, "app")
        assert ctr.spec["linux"]["intelRdt"] == {"closID": "gold"}
        denied = await rt.run_pod("d", namespace="default", annotations={KEY: "gold"})
        with pytest.raises(PluginError, match="may not request injection"):
            await rt.create_container(denied, "app")


def test_a_malformed_allow_section_stops_the_command(
    tmp_path: Path, nri_unused_socket: str
) -> None:
    config = tmp_path / "rdt.yaml"
    config.write_text("allow: {on-denied: drop}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nri_rdt",
            "--socket-path",
            nri_unused_socket,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("allow.on-denied: expected refuse or ignore, got 'drop'")
    ), result.stderr
