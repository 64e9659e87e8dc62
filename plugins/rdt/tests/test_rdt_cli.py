"""The nri-rdt command: the shared command-line checks, upstream's flags, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from nri.adaptation import PluginError
from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck

COMMAND = [sys.executable, "-m", "nri_rdt"]


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="rdt")


@pytest.mark.slow  # many short-lived processes
def test_help_version_and_bad_flags(check: PluginCommandCheck) -> None:
    check.check_help("--verbose")
    check.check_version()
    check.check_bad_flags()


def test_bad_allow_sections(check: PluginCommandCheck) -> None:
    check.check_bad_allow_sections()


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    log = check.check_registers(nri_runtime, "-verbose")
    assert "registering plugin 10-rdt" in log.stderr


def test_failed_request_is_one_log_line(nri_runtime: SyncMockRuntime) -> None:
    handle = nri_runtime.launch_plugin("nri-rdt -idx 15 -verbose")
    assert handle.info.full_name == "15-rdt"
    key = "enablemonitoring.rdt.noderesource.dev/container.c"
    pod = nri_runtime.run_pod("p", namespace="ns", annotations={key: "x"})
    with pytest.raises(PluginError, match="invalid syntax"):
        nri_runtime.create_container(pod, "c")
    output = nri_runtime.run_coroutine(handle.wait_for_output("invalid syntax"))
    assert "ns/p/c: create container" in output  # debug output with -verbose
    assert "Traceback" not in output  # an expected failure: one line
    assert output.count("invalid syntax") == 1
