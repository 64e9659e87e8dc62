"""The command line: bad flags, configuration or host description exit 2 before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest
from nri_resource_tuner import Config, HostTopology, ResourceTuner
from nri_resource_tuner.__main__ import main

from nri.stub import load_config

SAMPLE = Path(__file__).parent.parent / "sample-config.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[object, str, str]:
    """Run the command in this process; (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.fixture
def absent_socket(tmp_path: Path) -> Path:
    """A socket path nothing listens on: a plugin that tried to connect would exit 1."""
    return tmp_path / "absent.sock"


def test_help_lists_shared_and_own_flags(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for flag in ("--socket-path", "--idx", "--config", "--host", "--verbose", "--log-level"):
        assert flag in out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("colour: red\n", "unknown key 'colour'"),
        ("classes: {a: {numa: maybe}}\n", "classes.a.numa: expected one of prefer"),
        ("default-class: gold\n", "default-class: class 'gold' is not defined"),
        ("reserved-cpus: 0-999\n", "reserved-cpus: reserved CPUs 4-999 do not exist"),
        (
            "reserved-cpus: 0-1\nmin-shared-cpus: 3\n",
            "min-shared-cpus: 3, but only CPUs 2-3 are not reserved",
        ),
        ("classes: [\n", "invalid YAML"),
    ],
)
def test_bad_config(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    absent_socket: Path,
    content: str,
    problem: str,
) -> None:
    config = tmp_path / "rt.yaml"
    config.write_text(content)
    host = tmp_path / "host.yaml"
    host.write_text("cores_per_node: 4\nmemory: 1Gi\n")
    status, _, err = run(
        capsys, "--socket-path", str(absent_socket), "--idx", "10", "--config", str(config),
        "--host", str(host),
    )  # fmt: skip
    assert status == 2
    assert f"nri-resource-tuner: error: {config}: " in err
    assert problem in err


def test_bad_or_missing_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, absent_socket: Path
) -> None:
    host = tmp_path / "host.yaml"
    host.write_text("cores_per_node: 4\nmemory: 1 bucket\n")
    status, _, err = run(capsys, "--socket-path", str(absent_socket), "--host", str(host))
    assert status == 2
    assert f"{host}: memory: invalid size '1 bucket'" in err
    missing = tmp_path / "no"
    status, _, err = run(capsys, "--socket-path", str(absent_socket), "--host", str(missing))
    assert status == 2
    assert f"cannot read host description {missing}" in err
    status, _, err = run(capsys, "--socket-path", str(absent_socket), "--config", str(missing))
    assert status == 2
    assert f"cannot read {missing}" in err


def test_runtime_gone_exits_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, absent_socket: Path
) -> None:
    host = tmp_path / "host.yaml"
    host.write_text("cores_per_node: 4\nmemory: 1Gi\n")
    status, _, _ = run(
        capsys, "--socket-path", str(absent_socket), "--idx", "10", "--host", str(host)
    )
    assert status == 1  # a valid command line gets as far as connecting


def test_sample_config_is_valid() -> None:
    config = load_config(SAMPLE.read_text(), Config, source=str(SAMPLE))
    host = HostTopology.synthetic(cores_per_node=4, memory=2**30)
    plugin = ResourceTuner(config, topology=host)
    assert sorted(plugin.policy.classes) == ["background", "dedicated", "guaranteed", "shared"]
    assert plugin.allocator.shared_pool == {1, 2, 3}
