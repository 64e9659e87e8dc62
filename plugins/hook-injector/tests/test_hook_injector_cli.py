"""The nri-hook-injector command: the shared command-line checks and its own flags."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection, allow_example

COMMAND = [sys.executable, "-m", "nri_hook_injector"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="hook-injector")


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--hook-dirs", "--poll-interval", "--disable-watch", "--verbose")
    check.check_version()


def test_bad_flags(check: PluginCommandCheck) -> None:
    check.check_bad_flags(
        Rejection(["--hook-dirs", "/a,,/b"], "--hook-dirs: entry 2 of '/a,,/b' is empty"),
        Rejection(["-hook-dirs", sys.executable], "is not a directory"),
        Rejection(["--poll-interval", "-1"], "--poll-interval: must be >= 0"),
        Rejection(["-poll-interval=soon"], "not a number of seconds: 'soon'"),
        Rejection(["-disableWatch=never"], "expected true or false, got 'never'"),
    )


def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(
        wrong_type=("hookDirs: /etc/containers/oci/hooks.d\n", "hookDirs: expected a list")
    )
    check.assert_all_rejected(
        [
            Rejection(config="hookdirs: [/x]\n", message="unknown key 'hookdirs'"),
            Rejection(config="pollInterval: -2\n", message="pollInterval: must be >= 0"),
            Rejection(config="hookDirs: ['']\n", message="hookDirs[0]: empty directory name"),
        ]
    )


def test_bad_allow_sections(check: PluginCommandCheck) -> None:
    check.check_bad_allow_sections()


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime, tmp_path: Path
) -> None:
    log = check.check_registers(
        nri_runtime, "-disableWatch", "-verbose", "--hook-dirs", str(tmp_path)
    )
    assert f"watching hook directories {tmp_path} (0 hooks loaded" in log.stderr
    assert " DEBUG " in log.stderr  # -verbose logs at debug level


def test_sample_config_is_valid() -> None:
    from nri_hook_injector import parse_config

    sample = Path(__file__).resolve().parents[1] / "sample-config.yaml"
    config = parse_config(sample.read_text(), str(sample))
    assert config.hookDirs == [
        "/usr/share/containers/oci/hooks.d",
        "/etc/containers/oci/hooks.d",
    ]
    assert config.pollInterval == 5
    assert config.allow.allows_all  # the example is commented out
    allow = parse_config(allow_example(sample), str(sample)).allow
    assert allow.namespaces == ("gpu-jobs", "ml-*")
