"""The command line: bad flags or configuration exit 2 before any connection attempt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nri_ulimit_adjuster", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_help_lists_shared_and_own_flags() -> None:
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--socket-path", "--idx", "--config", "--verbose", "--log-level"):
        assert flag in result.stdout


def test_unknown_flag(nri_unused_socket: str) -> None:
    result = run("--socket-path", nri_unused_socket, "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_bad_config_key(tmp_path: Path, nri_unused_socket: str) -> None:
    config = tmp_path / "di.yaml"
    config.write_text("verbose: false\ncolour: red\n")
    result = run("--socket-path", nri_unused_socket, "--idx", "10", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: unknown key 'colour'" in result.stderr


def test_bad_config_type_and_yaml(tmp_path: Path, nri_unused_socket: str) -> None:
    config = tmp_path / "di.yaml"
    config.write_text("verbose: maybe\n")
    result = run("--socket-path", nri_unused_socket, "--idx", "10", "--config", str(config))
    assert result.returncode == 2
    assert "verbose: expected bool, got 'maybe'" in result.stderr
    config.write_text("verbose: [\n")
    result = run("--socket-path", nri_unused_socket, "--idx", "10", "--config", str(config))
    assert result.returncode == 2
    assert "invalid YAML" in result.stderr


def test_missing_config_file(tmp_path: Path, nri_unused_socket: str) -> None:
    missing = tmp_path / "nope.yaml"
    result = run("--socket-path", nri_unused_socket, "--idx", "10", "--config", str(missing))
    assert result.returncode == 2
    assert f"cannot read {missing}" in result.stderr


def test_bad_index(nri_unused_socket: str) -> None:
    result = run("--socket-path", nri_unused_socket, "--idx", "7", "--name", "ulimit-adjuster")
    assert result.returncode == 2
    assert "7" in result.stderr


def test_sample_config_is_valid() -> None:
    from nri_ulimit_adjuster import Config

    from nri.stub import load_config

    sample = Path(__file__).parent.parent / "sample-config.yaml"
    assert isinstance(load_config(sample.read_text(), Config, source=str(sample)), Config)
