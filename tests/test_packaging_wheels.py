"""Installable by name: every distribution builds as sdist + wheel, and a plugin installs
from a wheelhouse alone (``pip install --no-index --find-links``) or from a checkout alone
(``pip install ./plugins/NAME``), then runs with no checkout on ``sys.path``."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from _packaging import (
    ROOT,
    assert_adjusts_rlimits,
    clean_env,
    command_of,
    distributions,
    make_venv,
    offline_pip_env,
    plugin_dirs,
    project,
    wheelhouse,
)

pytestmark = pytest.mark.slow


def _wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode())
    return {key: message.get_all(key) or [] for key in set(message.keys())}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with nri-ulimit-adjuster installed by name from the wheelhouse."""
    return make_venv(tmp_path_factory.mktemp("venv") / "v", wheelhouse(), "nri-ulimit-adjuster")


def test_every_distribution_builds_sdist_and_wheel() -> None:
    house = wheelhouse()
    for directory in distributions():
        meta = project(directory)
        stem = str(meta["name"]).replace("-", "_")
        wheels = list(house.glob(f"{stem}-*-py3-none-any.whl"))
        assert len(wheels) == 1, (directory, wheels)
        version = wheels[0].name.split("-")[1]
        assert (house / f"{stem}-{version}.tar.gz").is_file()
        metadata = _wheel_metadata(wheels[0])
        assert metadata["License-Expression"] == ["Apache-2.0"]
        assert metadata["Requires-Python"] == [">=3.11"]
        assert metadata["Project-URL"]
        assert metadata["Version"] == [version]
        if directory.parent.name == "plugins":
            # a released wheel never points at a checkout
            nri = [r for r in metadata["Requires-Dist"] if r.split(">")[0].strip() == "nri"]
            assert nri and nri[0].startswith("nri>="), metadata["Requires-Dist"]


def test_installed_by_name_runs_without_a_checkout(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin/python"
    done = subprocess.run(
        [python, "-c", "import json, sys, nri, nri_ulimit_adjuster as p;"
         "print(json.dumps([nri.__file__, p.__file__, sys.path]))"],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env(), check=True,
    )  # fmt: skip
    nri_file, plugin_file, path = json.loads(done.stdout)
    for file in (nri_file, plugin_file):
        assert Path(file).is_relative_to(venv), file
    assert not any(Path(p).is_relative_to(ROOT) for p in path if p)
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, env=offline_pip_env(wheelhouse()), check=True,
    )  # fmt: skip
    names = {d["name"] for d in json.loads(listed.stdout)}
    assert {"nri", "nri-ulimit-adjuster", "protobuf", "PyYAML"} <= names


def test_installed_command_registers_with_the_runtime(venv: Path, nri_runtime) -> None:  # type: ignore[no-untyped-def]
    command = str(venv / "bin/nri-ulimit-adjuster")
    nri_runtime.launch_plugin([command], name="ulimit-adjuster", idx="10")
    assert_adjusts_rlimits(nri_runtime, "10-ulimit-adjuster")
    # and as an external plugin that connects to the socket by itself
    process = subprocess.Popen(
        [command, "--idx", "20", "--socket-path", nri_runtime.socket_path],
        env=clean_env(), stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        nri_runtime.wait_for_plugins(names=["20-ulimit-adjuster"])
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_plugin_installs_by_name(tmp_path: Path) -> None:
    names = [str(project(d)["name"]) for d in plugin_dirs()]
    venv = make_venv(tmp_path / "all", wheelhouse(), *names)
    for directory in plugin_dirs():
        command = venv / "bin" / command_of(directory)
        done = subprocess.run(
            [command, "--help"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "--socket-path" in done.stdout


def test_checkout_install_finds_nri_in_the_checkout(tmp_path: Path) -> None:
    """``pip install ./plugins/ulimit-adjuster`` alone, in a copy of the checkout."""
    checkout = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("*.egg-info", "build", "__pycache__", "tests")
    for part in ("stub", "plugins/ulimit-adjuster", "deploy/build"):
        shutil.copytree(ROOT / part, checkout / part, symlinks=True, ignore=ignore)
    venv = tmp_path / "v"
    subprocess.run([sys_python(), "-m", "venv", venv], check=True)
    env = offline_pip_env(wheelhouse())
    env["PIP_FIND_LINKS"] = str(tmp_path / "deps")  # protobuf and PyYAML only, no nri
    (tmp_path / "deps").mkdir()
    for wheel in wheelhouse().glob("*.whl"):
        if not wheel.name.startswith("nri"):
            shutil.copy(wheel, tmp_path / "deps")
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "--quiet", "./plugins/ulimit-adjuster"],
        cwd=checkout, env=env, check=True, capture_output=True,
    )  # fmt: skip
    [direct_url] = venv.glob("lib/python*/site-packages/nri-*.dist-info/direct_url.json")
    assert json.loads(direct_url.read_text())["url"] == (checkout / "stub").as_uri()
    done = subprocess.run(
        [venv / "bin/nri-ulimit-adjuster", "--help"], capture_output=True, text=True,
        env=clean_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def sys_python() -> str:
    import sys

    return sys.executable
