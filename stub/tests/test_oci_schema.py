"""OCI runtime-spec 1.3.0 JSON-schema validation helper used by the nri.oci tests.

The helper itself is tested here: the upstream good examples validate, the bad ones do not.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import referencing
from referencing.jsonschema import DRAFT4

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "oci-runtime-spec"
SCHEMA_DIR = DATA / "schema"
EXAMPLES = DATA / "examples"


@functools.cache
def _validator() -> jsonschema.Draft4Validator:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((path.as_uri(), DRAFT4.create_resource(contents)))
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(resources)
    root = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    # draft-04 names the base URI "id"; relative $refs ("defs.json#/...") resolve against it
    root["id"] = (SCHEMA_DIR / "config-schema.json").as_uri()
    return jsonschema.Draft4Validator(root, registry=registry)


def schema_errors(spec: dict[str, Any]) -> list[str]:
    """Return every schema violation of ``spec`` (empty if it is a valid OCI config)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(spec)
    ]


def assert_valid_spec(spec: dict[str, Any]) -> None:
    """Fail with every violation if ``spec`` does not validate against the OCI schema."""
    errors = schema_errors(spec)
    assert not errors, "spec is not OCI runtime-spec 1.3.0 valid:\n" + "\n".join(errors)


def load_example(name: str) -> dict[str, Any]:
    """Return a deep copy of ``examples/<name>``."""
    return copy.deepcopy(json.loads((EXAMPLES / name).read_text()))


GOOD = sorted(p.name for p in EXAMPLES.glob("good-*.json"))
BAD = sorted(p.name for p in EXAMPLES.glob("bad-*.json"))


@pytest.mark.parametrize("name", GOOD)
def test_good_examples_validate(name: str) -> None:
    assert_valid_spec(load_example(name))


@pytest.mark.parametrize("name", BAD)
def test_bad_examples_are_rejected(name: str) -> None:
    assert schema_errors(load_example(name))


def test_refs_into_sibling_files_are_followed() -> None:
    spec = load_example("good-minimal.json")
    spec["linux"] = {"namespaces": [{"type": "net"}]}  # enum lives in defs-linux.json
    assert any("net" in e for e in schema_errors(spec))
    spec["linux"] = {"namespaces": [{"type": "network"}]}
    assert_valid_spec(spec)


def test_examples_present() -> None:
    assert "good-spec-example.json" in GOOD
    assert BAD
