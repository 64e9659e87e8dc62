"""Every distribution's packaging metadata: licence, URLs, classifiers, one version, ``nri>=``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from _packaging import ROOT, distributions, plugin_dirs, project

BACKEND = ROOT / "deploy/build/nri_checkout_backend.py"
DISTRIBUTIONS = [pytest.param(d, id=d.name) for d in distributions()]
PLUGINS = [pytest.param(d, id=d.name) for d in plugin_dirs()]


def _package_init(directory: Path) -> Path:
    inits = sorted(directory.glob("src/*/__init__.py"))
    assert len(inits) == 1, inits
    return inits[0]


@pytest.mark.parametrize("directory", DISTRIBUTIONS)
def test_complete_metadata(directory: Path) -> None:
    meta = project(directory)
    assert meta["license"] == "Apache-2.0"
    assert meta["requires-python"] == ">=3.11"
    assert isinstance(meta["urls"], dict) and meta["urls"]
    assert all(str(u).startswith("https://") for u in meta["urls"].values())
    classifiers = meta["classifiers"]
    assert isinstance(classifiers, list)
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX expression says it
    assert (directory / str(meta["readme"])).is_file()


@pytest.mark.parametrize("directory", DISTRIBUTIONS)
def test_one_version(directory: Path) -> None:
    """The version is written once: in pyproject.toml, or in ``__version__`` read from there."""
    meta = project(directory)
    tree = ast.parse(_package_init(directory).read_text())
    literal = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    if "version" in meta:
        assert "version" not in meta.get("dynamic", [])
        assert not literal, "__version__ repeats pyproject.toml's version"
    else:
        assert meta["dynamic"] == ["version"]
        assert len(literal) == 1
        text = (directory / "pyproject.toml").read_text()
        package = _package_init(directory).parent.name
        assert f'version = {{ attr = "{package}.__version__" }}' in text


@pytest.mark.parametrize("directory", PLUGINS)
def test_plugin_requires_released_nri(directory: Path) -> None:
    dependencies = project(directory)["dependencies"]
    assert isinstance(dependencies, list)
    pins = [d for d in dependencies if re.match(r"nri\b(?!-)", d)]
    assert len(pins) == 1 and re.fullmatch(r"nri>=\d+\.\d+(\.\d+)?", pins[0]), pins


@pytest.mark.parametrize("directory", PLUGINS)
def test_plugin_builds_with_the_checkout_backend(directory: Path) -> None:
    """``pip install ./plugins/NAME`` finds ``nri`` in the checkout, and the sdist builds alone."""
    text = (directory / "pyproject.toml").read_text()
    assert 'build-backend = "nri_checkout_backend"' in text
    assert 'backend-path = ["_build"]' in text
    backend = directory / "_build/nri_checkout_backend.py"
    assert backend.resolve() == BACKEND
    manifest = (directory / "MANIFEST.in").read_text().splitlines()
    assert "include _build/nri_checkout_backend.py" in manifest
    for sample in directory.glob("*.yaml"):
        assert f"include {sample.name}" in manifest
