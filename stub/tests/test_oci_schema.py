"""OCI runtime-spec 1.3.0 JSON-schema validation helper used by the nri.oci tests.

The helper itself is tested here: the upstream good examples validate, the bad ones do not.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import check_oci_spec as assert_valid_spec
from conftest import oci_schema_errors as schema_errors

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "oci-runtime-spec"
EXAMPLES = DATA / "examples"

__all__ = ["GOOD", "assert_valid_spec", "load_example", "schema_errors"]


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
