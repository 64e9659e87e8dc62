"""The command line, the sample configuration and the README's example run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nri_network_logger import Config

from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import SyncMockRuntime
from nri.stub import load_config
from nri.testing import PluginCommandCheck, Rejection

PLUGIN_DIR = Path(__file__).resolve().parents[1]
README = (PLUGIN_DIR / "README.md").read_text()
COMMAND = [sys.executable, "-m", "nri_network_logger"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="network-logger")


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--json")
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    # upstream's -socket spelling as well
    check.check_bad_flags(Rejection(["-socket", check.socket, "-json=maybe"], "got 'maybe'"))


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(wrong_type=("json: 1", "json: expected bool"))


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    (info,) = check.check_registers(nri_runtime, "-json").plugins
    assert info.events == mask_of(pb.RUN_POD_SANDBOX, pb.STOP_POD_SANDBOX, pb.REMOVE_POD_SANDBOX)


def test_sample_config_is_the_default() -> None:
    sample = PLUGIN_DIR / "sample-config.yaml"
    assert load_config(sample.read_text(), Config, source=str(sample)) == Config()


def play(*flags: str) -> list[str]:
    plugin = shlex.join([*COMMAND, "--idx", "10", *flags])
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", "scenario.yaml", "--plugin", plugin],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    marker = "INFO    10-network-logger: "
    return [line.split(marker, 1)[1] for line in done.stdout.splitlines() if marker in line]


@pytest.mark.timeout(60)
def test_readme_scenario_output() -> None:
    assert 'nri-mock-runtime run scenario.yaml --plugin "nri-network-logger --idx 10"' in README
    lines = play()
    shown = [line.split(marker, 1)[1] for line in README.splitlines()
             if (marker := "INFO    10-network-logger: ") in line]  # fmt: skip
    assert shown and lines[-len(shown) :] == shown


@pytest.mark.timeout(60)
def test_readme_json_example() -> None:
    (example,) = re.findall(r"^\{.*\}$", README, re.M)
    records = [json.loads(line) for line in play("--json") if line.startswith("{")]
    run_pod = next(r for r in records if r["event"] == "RunPodSandbox")
    expected = json.loads(example)
    assert run_pod.keys() == expected.keys()
    assert {k: v for k, v in run_pod.items() if expected[k] != "..."} == {
        k: v for k, v in expected.items() if v != "..."
    }
