"""The ``allow`` section of nri-rdt: unit checks and through the real command."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from nri_rdt import Config, RdtPlugin, parse_config

from nri.adaptation import PluginError
from nri.api import pb
from nri.mock import MockRuntime
from nri.stub import InjectionDenied
from nri.testing import allow_example

KEY = "closid.rdt.noderesource.dev/container.app"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
README = PLUGIN_DIR / "README.md"
SAMPLE = PLUGIN_DIR / "sample-config.yaml"
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
@pytest.mark.parametrize("on_denied", ["refuse", "ignore"])
async def test_through_the_command(tmp_path: Path, on_denied: str) -> None:
    config = tmp_path / "rdt.yaml"
    config.write_text(ALLOW.replace("ON_DENIED", on_denied))
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(
            [sys.executable, "-m", "nri_rdt", "--config", str(config)], name="rdt", idx="10"
        )
        allowed = await rt.run_pod("a", namespace="rdt-jobs", annotations={KEY: "gold"})
        ctr = await rt.create_container(allowed, "app")
        assert ctr.spec["linux"]["intelRdt"] == {"closID": "gold"}
        denied = await rt.run_pod("d", namespace="default", annotations={KEY: "gold"})
        expected = f"pod 'd' in namespace 'default' may not request injection (annotation {KEY!r})"
        if on_denied == "refuse":
            with pytest.raises(PluginError, match=re.escape(expected)):
                await rt.create_container(denied, "app")
            assert "app" not in {c.name for c in rt.containers.values() if c.pod_id == denied.id}
        else:
            ctr = await rt.create_container(denied, "app")
            assert "intelRdt" not in ctr.spec.get("linux", {})
        output = await handle.wait_for_output(expected)
        assert output.count(expected) == 1
        assert "Traceback" not in output
        # a pod outside the allowlist that asks for nothing is neither refused nor logged
        plain = await rt.run_pod("plain", namespace="default")
        await rt.create_container(plain, "app")
        assert "'plain'" not in handle.stderr.decode()


def test_sample_config_allows_every_pod() -> None:
    assert parse_config(SAMPLE.read_text(), str(SAMPLE)) == Config()
    example = allow_example(SAMPLE)
    allow = parse_config(example, str(SAMPLE)).allow
    assert allow.namespaces == ("rdt-jobs", "batch-*")
    assert allow.on_denied == "refuse"


def test_readme_example() -> None:
    example = allow_example(README)
    allow = parse_config(example, "README.md").allow
    assert allow.on_denied == "ignore"
    assert allow.allows("rdt-jobs", {"qos": "gold"})
    assert allow.allows("batch-nightly", {"qos": "gold"})
    assert not allow.allows("batch-nightly", {"qos": "silver"})
    assert not allow.allows("default", {"qos": "gold"})
