"""The nri-template command: the checks every plugin command shares, and a lifecycle in the
mock runtime through the ``nri_runtime`` fixture."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck

NAME = "template"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = PLUGIN_DIR / "sample-config.yaml"
COMMAND = [sys.executable, "-m", "nri_template"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name=NAME)


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help()
    check.check_version()


def test_bad_flags_and_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_flags()
    check.check_bad_config_files(wrong_type=("cfg_param1: [x]\n", "cfg_param1: expected str"))


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    seen = check.check_registers(nri_runtime, "-config", str(SAMPLE_CONFIG))
    assert "got configuration" in seen.stderr


def test_runs_in_the_mock_runtime(nri_runtime: SyncMockRuntime) -> None:
    # nri_runtime (from the nri package's pytest plugin) launches the command the way a
    # runtime launches a pre-installed plugin; each call returns once the plugin answered.
    plugin = nri_runtime.launch_plugin(
        [sys.executable, "-m", "nri_template", "--idx", "50", "--config", str(SAMPLE_CONFIG)]
    )
    assert [p.full_name for p in nri_runtime.plugins] == [f"50-{NAME}"]
    pod = nri_runtime.run_pod("web", namespace="shop")
    ctr = nri_runtime.create_container(pod, "app", args=["sleep", "inf"])
    assert ctr.owners == {}  # no field set by any plugin: the template changes nothing
    assert ctr.spec["process"]["args"] == ["sleep", "inf"]
    nri_runtime.start_container(ctr)
    nri_runtime.remove_pod(pod)

    nri_runtime.close()  # stops the plugin, so that all it logged has arrived
    log = plugin.stderr.decode()
    assert "got configuration TemplateConfig(cfg_param1='some value')" in log
    for line in ("creating container shop/web/app", "started container shop/web/app"):
        assert f"50-{NAME}: {line}" in log, log


def test_sample_config_is_valid() -> None:
    from nri_template import parse_config

    parse_config(SAMPLE_CONFIG.read_text(), source=str(SAMPLE_CONFIG))


def test_scenario_passes() -> None:
    # scenario.yaml played by the nri-mock-runtime command, as README.md shows.
    plugin = f"{shlex.quote(sys.executable)} -m nri_template --idx 50 --config sample-config.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", "scenario.yaml", "--plugin", plugin],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"50-{NAME}: creating container shop/web-0/app" in done.stdout
