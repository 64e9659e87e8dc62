"""The command line, the sample files and the README's examples."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from network_device_injector_lab import NetnsLab
from nri_network_device_injector import Config, Netdevice, parse_config, parse_netdevices

from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection, allow_example

PLUGIN_DIR = Path(__file__).resolve().parents[1]
README = (PLUGIN_DIR / "README.md").read_text()
COMMAND = [sys.executable, "-m", "nri_network_device_injector"]
SWITCHES = ("verbose", "strict", "configure-devices", "default-new-name", "documented-key")


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="network-device-injector")


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help(*(f"--{s}" for s in SWITCHES))
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    # upstream's -socket spelling as well
    bad_switch = Rejection(["-socket", check.socket, "-strict=maybe"], "got 'maybe'")
    check.check_bad_flags(bad_switch)


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(wrong_type=("strict: maybe", "strict: expected bool"))


def test_bad_allow_sections(check: PluginCommandCheck) -> None:
    check.check_bad_allow_sections()


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    (info,) = check.check_registers(nri_runtime, "-verbose").plugins
    assert info.events == mask_of(pb.RUN_POD_SANDBOX, pb.STOP_POD_SANDBOX)


def test_sample_config_is_the_defaults() -> None:
    sample = PLUGIN_DIR / "sample-config.yaml"
    assert parse_config(sample.read_text(), str(sample)) == Config()
    # its allow example, commented out
    allow = parse_config(allow_example(sample), str(sample)).allow
    assert allow.namespaces == ("net-jobs", "sriov-*")


def test_sample_pod_spec_names_a_device_read_by_default() -> None:
    spec = yaml.safe_load((PLUGIN_DIR / "sample-network-device-inject.yaml").read_text())
    key, devices = parse_netdevices(spec["metadata"]["annotations"])
    assert key == "netdevice.noderesource.dev"
    assert devices == [Netdevice("dummy0", "eth33", "192.168.2.2", 24, 1500)]


def test_readme_annotation_example() -> None:
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "new_name" in b]
    key, devices = parse_netdevices(yaml.safe_load(block))
    assert key == "netdevice.noderesource.dev/pod"
    assert devices == [
        Netdevice("enp2s2f0", "eth1", "192.168.2.2", 24, 1500),
        Netdevice("enp2s2f1", "eth2"),
    ]


@pytest.mark.timeout(60)
def test_readme_scenario(lab: NetnsLab, tmp_path: Path) -> None:
    readme_command = (
        'nri-mock-runtime run scenario.yaml --plugin "nri-network-device-injector --idx 10"'
    )
    assert readme_command in README
    # The README's setup, inside namespaces of the test: a stand-in host holds demo0/demo1.
    host, pod = lab.netns("host"), lab.netns("pod")
    lab.veth(host, "demo0", "demo1")
    scenario = (PLUGIN_DIR / "scenario.yaml").read_text()
    assert "/var/run/netns/nri-demo-pod" in scenario
    (tmp_path / "scenario.yaml").write_text(scenario.replace("nri-demo-pod", pod))
    plugin = shlex.join([*lab.exec_prefix(host), *COMMAND, "--idx", "10"])
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", "scenario.yaml", "--plugin", plugin],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert (
        out.splitlines()[-1]
        == "network-device-injector: 3 steps, 1 expectations, 1 passed, 0 failed"
    )
    assert f"injected network device 'demo0' as 'eth33' into {lab.path(pod)}" in out
    assert "released network device 'eth33' to the host as 'demo0'" in out
    assert lab.link(host, "demo0") is not None
    assert lab.links(pod) == ["lo"]
