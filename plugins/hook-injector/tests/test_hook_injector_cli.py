"""The nri-hook-injector command: bad flags and configuration exit 2 before connecting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nri_hook_injector", "--idx", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("hookDirs: /etc/containers/oci/hooks.d\n", "hookDirs: expected a list"),
        ("hookdirs: [/x]\n", "unknown key 'hookdirs'"),
        ("pollInterval: -2\n", "pollInterval: must be >= 0"),
        ("hookDirs: ['']\n", "hookDirs[0]: empty directory name"),
        ("hookDirs: [\n", "invalid YAML"),
    ],
)
def test_bad_config_file_exits_2(
    tmp_path: Path, nri_unused_socket: str, config: str, message: str
) -> None:
    path = nri_unused_socket
    config_file = tmp_path / "hook-injector.yaml"
    config_file.write_text(config)
    result = run("--socket-path", path, "--config", str(config_file))
    assert result.returncode == 2, result.stderr
    assert f"--config: {config_file}: " in result.stderr
    assert message in result.stderr


def test_unreadable_config_file_exits_2(tmp_path: Path, nri_unused_socket: str) -> None:
    path = nri_unused_socket
    result = run("--socket-path", path, "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "--config: cannot read" in result.stderr and "missing.yaml" in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hook-dirs", "/a,,/b"], "--hook-dirs: entry 2 of '/a,,/b' is empty"),
        (["--hook-dirs", sys.executable], "is not a directory"),
        (["--poll-interval", "-1"], "--poll-interval: must be >= 0"),
        (["--poll-interval", "soon"], "invalid float value: 'soon'"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_flags_exit_2(nri_unused_socket: str, flags: list[str], message: str) -> None:
    path = nri_unused_socket
    result = run("--socket-path", path, *flags)
    assert result.returncode == 2
    assert message in result.stderr


def test_sample_config_is_valid(tmp_path: Path) -> None:
    from nri_hook_injector import parse_config

    sample = Path(__file__).resolve().parents[1] / "sample-config.yaml"
    config = parse_config(sample.read_text(), str(sample))
    assert config.hookDirs == [
        "/usr/share/containers/oci/hooks.d",
        "/etc/containers/oci/hooks.d",
    ]
    assert config.pollInterval == 5
