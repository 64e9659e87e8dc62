"""The nri-default-validator command: the shared checks; a bad configuration exits 2 with
one line naming the file, before connecting."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection

COMMAND = [sys.executable, "-m", "nri_default_validator"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="default-validator")


@pytest.mark.slow  # many short-lived processes
def test_help_version_and_bad_flags(check: PluginCommandCheck) -> None:
    check.check_help("--verbose", "--config")
    check.check_version()
    check.check_bad_flags()


@pytest.mark.slow  # many short-lived processes
def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(schema=False)
    lines = check.assert_all_rejected(
        [
            Rejection(config="enable: " + "[" * 100 + "]" * 100, message="nesting deeper than"),
            Rejection(config="requiredPlugins: [\n", message="line 2"),
            Rejection(config="- a\n- b\n", message="expected a mapping"),
            Rejection(config="rejectOCIHooks: true\n", message="unknown option 'rejectOCIHooks'"),
            Rejection(
                config="rejectSysctlAdjustment: sometimes\n",
                message="rejectSysctlAdjustment must be true or false",
            ),
        ]
    )
    assert all(str(check.workdir) in line for line in lines)


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    config = check.config_file("rejectNamespaceAdjustment: true\n")
    log = check.check_registers(nri_runtime, "-config", str(config))
    assert "validating for nri-mock-runtime" in log.stderr
    assert "rejectNamespaceAdjustment" in log.stderr
