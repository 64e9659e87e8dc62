"""PEP 517 build backend of the plugin distributions: setuptools, plus ``nri`` from a checkout.

A plugin's ``pyproject.toml`` requires the released core distribution (``nri>=X``). Built
straight from a checkout of this repository (``pip install ./plugins/NAME``, where no index
has ``nri``), the wheel requires ``nri @ file:///<checkout>/stub`` instead, so that pip
installs the core distribution from the same checkout. Built from the sdist (``python -m
build``, a wheelhouse, an index) or with ``NRI_BUILD_RELEASE=1``, nothing is changed.
Editable builds are never changed: a development environment installs ``./stub`` itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  (hooks passed through unchanged)
    build_editable,
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
)

_NRI_REQUIREMENT = re.compile(r"^Requires-Dist: nri(?=[\s<>=!~;(\[]|$).*$", re.MULTILINE)


def _checkout_stub() -> Path | None:
    """The checkout's ``stub/`` when building ``plugins/NAME`` of a checkout, else None."""
    if os.environ.get("NRI_BUILD_RELEASE"):
        return None
    stub = Path.cwd().parent.parent / "stub"
    if (stub / "pyproject.toml").is_file() and (stub / "src" / "nri" / "__init__.py").is_file():
        return stub.resolve()
    return None


def _pointed(metadata: str, stub: Path) -> str:
    return _NRI_REQUIREMENT.sub(f"Requires-Dist: nri @ {stub.as_uri()}", metadata)


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    """setuptools' metadata, with the ``nri`` requirement pointed at a checkout's stub."""
    name: str = _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    stub = _checkout_stub()
    if stub is not None:
        path = Path(metadata_directory, name, "METADATA")
        path.write_text(_pointed(path.read_text(encoding="utf-8"), stub), encoding="utf-8")
    return name


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """setuptools' wheel, with the ``nri`` requirement pointed at a checkout's stub."""
    name: str = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    stub = _checkout_stub()
    if stub is not None:
        _rewrite_wheel(Path(wheel_directory, name), stub)
    return name


def _rewrite_wheel(wheel: Path, stub: Path) -> None:
    with zipfile.ZipFile(wheel) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    metadata_name = next(
        i.filename for i, _ in entries if i.filename.endswith(".dist-info/METADATA")
    )
    record_name = metadata_name.removesuffix("METADATA") + "RECORD"
    contents = dict((i.filename, data) for i, data in entries)
    metadata = _pointed(contents[metadata_name].decode("utf-8"), stub).encode("utf-8")
    digest = base64.urlsafe_b64encode(hashlib.sha256(metadata).digest()).rstrip(b"=").decode()
    record = [
        f"{metadata_name},sha256={digest},{len(metadata)}"
        if line.startswith(f"{metadata_name},")
        else line
        for line in contents[record_name].decode("utf-8").splitlines()
    ]
    contents[metadata_name] = metadata
    contents[record_name] = ("\n".join(record) + "\n").encode("utf-8")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as target:
        for info, _ in entries:
            target.writestr(info, contents[info.filename])
