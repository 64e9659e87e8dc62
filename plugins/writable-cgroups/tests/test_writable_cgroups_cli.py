"""The nri-writable-cgroups command: the shared checks and its flags in upstream's spellings."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck

COMMAND = [sys.executable, "-m", "nri_writable_cgroups"]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="writable-cgroups")


@pytest.mark.slow  # many short-lived processes
def test_help_version_and_bad_flags(check: PluginCommandCheck) -> None:
    help_text = check.check_help("--host-mount-file", "--reject-undelegated", "--verbose")
    assert "/host/proc/1/mountinfo" in help_text
    check.check_version()
    check.check_bad_flags()
    check.assert_rejects("-reject-undelegated=perhaps", message="expected true or false")


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    table = DATA / "mountinfo-nsdelegate"
    log = check.check_registers(nri_runtime, f"-host-mount-file={table}", "-verbose")
    assert "enabling writable cgroups support" in log.stderr


def test_verbose_logs_decisions(nri_runtime: SyncMockRuntime) -> None:
    handle = nri_runtime.launch_plugin(
        [*COMMAND, "-idx", "20", "-host-mount-file", str(DATA / "mountinfo-nsdelegate"), "-verbose"]
    )
    assert handle.info.full_name == "20-writable-cgroups"
    pod = nri_runtime.run_pod("p", namespace="ns")
    nri_runtime.create_container(pod, "c")
    nri_runtime.run_coroutine(handle.wait_for_output("ns/p/c: writable cgroups not requested"))


def test_default_mount_file_is_upstreams(nri_runtime: SyncMockRuntime) -> None:
    if Path("/host/proc/1/mountinfo").exists():
        pytest.skip("this machine has a /host/proc/1/mountinfo")
    handle = nri_runtime.launch_plugin("nri-writable-cgroups -idx 20")
    output = nri_runtime.run_coroutine(handle.wait_for_output("disabling writable cgroups"))
    assert "failed to open mount file '/host/proc/1/mountinfo'" in output
