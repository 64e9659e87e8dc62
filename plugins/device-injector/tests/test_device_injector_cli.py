"""The nri-device-injector command: the shared command-line checks and its own flags."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nri.mock import SyncMockRuntime
from nri.stub import load_config_with_allowlist
from nri.testing import PluginCommandCheck

COMMAND = [sys.executable, "-m", "nri_device_injector"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="device-injector")


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--verbose", "--no-host-lookup")
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    check.check_bad_flags()


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(wrong_type=("verbose: maybe\n", "verbose: expected bool"))


def test_bad_allow_sections(check: PluginCommandCheck) -> None:
    check.check_bad_allow_sections()


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    log = check.check_registers(nri_runtime, "-verbose", "-no-host-lookup=true")
    assert "host_lookup=False" in log.stderr and "verbose=True" in log.stderr


def test_sample_config_is_valid() -> None:
    from nri_device_injector import Config

    sample = Path(__file__).parent.parent / "sample-config.yaml"
    assert load_config_with_allowlist(sample.read_text(), Config, source=str(sample)) == Config()
