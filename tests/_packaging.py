"""Shared by the packaging and deployment tests: the distributions and a wheelhouse of them.

The wheelhouse holds an sdist and a wheel (built from that sdist, as ``python -m build``
does) of every distribution of the repository, plus the wheels of their dependencies, so
that installs from it run with ``--no-index``. Downloading the dependencies is the only
step that needs the package index; ``NRI_WHEELHOUSE`` names a directory that already has
them (it is filled in place and kept; the repository's own distributions are rebuilt each
session).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nri.mock import SyncMockRuntime

ROOT = Path(__file__).resolve().parent.parent

# what building the distributions needs: installed once into a build venv from the
# wheelhouse, in which every distribution is built without a fresh isolated environment each
BUILD_REQUIREMENTS = ("setuptools>=77", "build>=1")


def distributions() -> list[Path]:
    """The directories of every distribution: the core ``stub/``, then each plugin."""
    plugins = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
    return [ROOT / "stub", *plugins]


def plugin_dirs() -> list[Path]:
    """The plugin distributions' directories."""
    return distributions()[1:]


def project(directory: Path) -> dict[str, object]:
    """The ``[project]`` table of a distribution's pyproject.toml."""
    with (directory / "pyproject.toml").open("rb") as file:
        table: dict[str, object] = tomllib.load(file)["project"]
    return table


def command_of(directory: Path) -> str:
    """The console script a plugin distribution installs (``nri-<name>``)."""
    scripts = project(directory)["scripts"]
    assert isinstance(scripts, dict) and len(scripts) == 1, directory
    return str(next(iter(scripts)))


def offline_pip_env(wheelhouse: Path) -> dict[str, str]:
    """Environment for pip (and isolated builds) that uses the wheelhouse and no index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse), PIP_CONFIG_FILE=os.devnull)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 300) -> None:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _names_of(wheelhouse: Path) -> set[str]:
    return {_name(w.name.split("-")[0]) for w in wheelhouse.glob("*.whl")}


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    return re.findall(r"^Requires-Dist: (.*)$", metadata, flags=re.MULTILINE)


def _download(wheelhouse: Path, *requirements: str) -> None:
    """Fetch wheels of ``requirements`` (and theirs) unless the wheelhouse has them all."""
    offline = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         "--dest", str(wheelhouse), *requirements],
        capture_output=True, env=offline_pip_env(wheelhouse), check=False,
    )  # fmt: skip
    if offline.returncode == 0:
        return
    # the index is used here only; everything after runs with --no-index
    _run(
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
        "--dest", wheelhouse, "--find-links", wheelhouse, *requirements,
    )  # fmt: skip


@functools.cache
def wheelhouse() -> Path:
    """Build (once per test session) the wheelhouse of all distributions and dependencies."""
    given = os.environ.get("NRI_WHEELHOUSE")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="nri-wheelhouse-"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    _download(path, *BUILD_REQUIREMENTS)
    env = offline_pip_env(path)
    builder = Path(tempfile.mkdtemp(prefix="nri-build-venv-"))
    atexit.register(shutil.rmtree, builder, ignore_errors=True)
    _run(sys.executable, "-m", "venv", builder)
    _run(builder / "bin/python", "-m", "pip", "install", "--quiet", *BUILD_REQUIREMENTS, env=env)
    dists = distributions()
    for stale in [*path.glob("nri-*"), *path.glob("nri_*")]:
        stale.unlink()  # from an earlier run of a kept NRI_WHEELHOUSE: always rebuilt
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        builds = [
            pool.submit(
                _run,
                builder / "bin/python",
                "-m",
                "build",
                "--no-isolation",
                "--outdir",
                path,
                d,
                env=env,
            )
            for d in dists
        ]
        for build in builds:
            build.result()
    ours = {str(project(d)["name"]) for d in dists}
    needed = {
        r for wheel in path.glob("nri*.whl") for r in _requirements(wheel) if _name(r) not in ours
    }
    _download(path, *sorted(needed), "rich>=13")
    return path


ULIMIT_ANNOTATION = {
    "ulimits.noderesource.dev/container.app": "- {type: nofile, soft: 1024, hard: 4096}\n"
}


def assert_adjusts_rlimits(runtime: SyncMockRuntime, plugin_name: str) -> None:
    """With ulimit-adjuster registered as ``plugin_name``, a container gets the annotated rlimit."""
    assert plugin_name in [p.full_name for p in runtime.plugins]
    pod = runtime.run_pod("web", namespace="deploy", annotations=ULIMIT_ANNOTATION)
    container = runtime.create_container(pod, "app")
    assert container.spec["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}
    ]


def make_venv(path: Path, wheelhouse: Path, *requirements: str) -> Path:
    """A new venv at ``path`` with ``requirements`` installed from the wheelhouse alone."""
    _run(sys.executable, "-m", "venv", path)
    _run(
        path / "bin/python", "-m", "pip", "install", "--quiet", *requirements,
        env=offline_pip_env(wheelhouse),
    )  # fmt: skip
    return path


def clean_env() -> dict[str, str]:
    """This environment without Python or pip settings, so no checkout is on ``sys.path``."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
