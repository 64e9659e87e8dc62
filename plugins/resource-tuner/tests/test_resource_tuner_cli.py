"""The nri-resource-tuner command: the shared command-line checks, and bad configuration or
host description exit 2 before connecting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nri_resource_tuner import Config, HostTopology, ResourceTuner

from nri.mock import SyncMockRuntime
from nri.stub import load_config
from nri.testing import PluginCommandCheck, Rejection

SAMPLE = Path(__file__).parent.parent / "sample-config.yaml"
COMMAND = [sys.executable, "-m", "nri_resource_tuner"]


@pytest.fixture
def check(
    nri_plugin_command: Callable[..., PluginCommandCheck], tmp_path: Path
) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="resource-tuner")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host description with 4 CPUs, so that results do not depend on this machine."""
    path = tmp_path / "host.yaml"
    path.write_text("cores_per_node: 4\nmemory: 1Gi\n")
    return path


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--host", "--verbose")
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    check.check_bad_flags()


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(wrong_type=("verbose: 3\n", "verbose: expected bool"))


def test_bad_policy_and_host(check: PluginCommandCheck, tmp_path: Path, host: Path) -> None:
    bad_host = tmp_path / "bad-host.yaml"
    bad_host.write_text("cores_per_node: 4\nmemory: 1 bucket\n")
    missing = tmp_path / "no"
    with_host = ("--host", str(host))
    check.assert_all_rejected(
        [
            Rejection(with_host, "classes.a.numa: expected one of prefer", "classes: {a: {numa: x}}"),
            Rejection(with_host, "default-class: class 'gold' is not defined", "default-class: gold"),
            Rejection(with_host, "reserved-cpus: reserved CPUs 4-999 do not exist", "reserved-cpus: 0-999"),
            Rejection(
                with_host,
                "min-shared-cpus: 3, but only CPUs 2-3 are not reserved",
                "reserved-cpus: 0-1\nmin-shared-cpus: 3\n",
            ),
            Rejection(["--host", str(bad_host)], f"{bad_host}: memory: invalid size '1 bucket'"),
            Rejection(["--host", str(missing)], f"cannot read host description {missing}"),
        ]
    )  # fmt: skip


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime, host: Path
) -> None:
    check.check_registers(nri_runtime, "-host", str(host), "-verbose=true")


def test_sample_config_is_valid() -> None:
    config = load_config(SAMPLE.read_text(), Config, source=str(SAMPLE))
    topology = HostTopology.synthetic(cores_per_node=4, memory=2**30)
    plugin = ResourceTuner(config, topology=topology)
    assert sorted(plugin.policy.classes) == ["background", "dedicated", "guaranteed", "shared"]
    assert plugin.allocator.shared_pool == {1, 2, 3}
