"""Shared pytest setup for every test directory of the repository.

- ``async def`` tests run on a fresh event loop with a hard time limit: a hung protocol test
  must fail, not stall CI, so every coroutine test is bounded by ``NRI_TEST_TIMEOUT`` seconds
  (default 60) unless it carries ``@pytest.mark.timeout(N)``.
- :func:`oci_schema_errors` and the ``assert_valid_oci_spec`` fixture check specs against the
  OCI runtime-spec 1.3.0 JSON schema copied into ``tests/data``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DEFAULT_TIMEOUT = float(os.environ.get("NRI_TEST_TIMEOUT", "60"))
OCI_SCHEMA_DIR = Path(__file__).parent / "tests" / "data" / "oci-runtime-spec" / "schema"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timeout(seconds): time limit of an async test")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker else DEFAULT_TIMEOUT
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await pyfuncitem.obj(**kwargs)

    asyncio.run(bounded())
    return True


@functools.cache
def _oci_validator() -> Any:
    import jsonschema  # type: ignore[import-untyped]
    import referencing
    from referencing.jsonschema import DRAFT4

    schemas = {path: json.loads(path.read_text()) for path in sorted(OCI_SCHEMA_DIR.glob("*.json"))}
    # The schema lists only the non-recursive rootfs propagations; runc and crun accept the
    # recursive ones too, and upstream's generator (so containerd and CRI-O) writes rshared
    # and rslave.
    propagation = schemas[OCI_SCHEMA_DIR / "defs-linux.json"]["definitions"]["RootfsPropagation"]
    propagation["enum"] = [*propagation["enum"], "rprivate", "rshared", "rslave", "runbindable"]
    resources = [
        (path.as_uri(), DRAFT4.create_resource(schema)) for path, schema in schemas.items()
    ]
    registry: Any = referencing.Registry().with_resources(resources)
    root_path = OCI_SCHEMA_DIR / "config-schema.json"
    root = json.loads(root_path.read_text())
    # draft-04 names the base URI "id"; relative $refs ("defs.json#/...") resolve against it
    root["id"] = root_path.as_uri()
    return jsonschema.Draft4Validator(root, registry=registry)


def oci_schema_errors(spec: dict[str, Any]) -> list[str]:
    """Return every OCI runtime-spec schema violation of ``spec`` (empty if valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _oci_validator().iter_errors(spec)
    ]


def check_oci_spec(spec: dict[str, Any]) -> None:
    """Fail with every violation if ``spec`` is not a valid OCI runtime config."""
    errors = oci_schema_errors(spec)
    assert not errors, "spec is not OCI runtime-spec 1.3.0 valid:\n" + "\n".join(errors)


@pytest.fixture(scope="session")
def assert_valid_oci_spec() -> Callable[[dict[str, Any]], None]:
    """:func:`check_oci_spec`, for test directories that cannot import the root conftest."""
    return check_oci_spec
