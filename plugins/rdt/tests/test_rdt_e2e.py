"""End to end: nri-rdt launched by the mock runtime, checked on the OCI specs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import SyncMockRuntime

SAMPLE = Path(__file__).resolve().parents[1] / "sample-rdt-adjust.yaml"

ANNOTATIONS = {
    "closid.rdt.noderesource.dev/container.a": "gold",
    "schemata.rdt.noderesource.dev/container.a": "L3:0=f,MB:0=50",
    "enablemonitoring.rdt.noderesource.dev/container.a": "true",
    "enablemonitoring.rdt.noderesource.dev/container.b": "0",
    "colour.rdt.noderesource.dev/container.b": "blue",
    "enablemonitoring.rdt.noderesource.dev/container.bad": "maybe",
}


def test_annotations_set_intel_rdt(
    nri_runtime: SyncMockRuntime, assert_valid_oci_spec: Callable[[dict[str, Any]], None]
) -> None:
    handle = nri_runtime.launch_plugin([sys.executable, "-m", "nri_rdt"], idx="10")
    assert handle.info.name == "rdt"
    assert handle.info.events == mask_of(pb.CREATE_CONTAINER)
    pod = nri_runtime.run_pod("p", namespace="ns", annotations=ANNOTATIONS)

    a = nri_runtime.create_container(pod, "a")
    assert a.spec["linux"]["intelRdt"] == {
        "closID": "gold",
        "schemata": ["L3:0=f", "MB:0=50"],
        "enableMonitoring": True,
    }
    b = nri_runtime.create_container(pod, "b")
    assert b.spec["linux"]["intelRdt"] == {"enableMonitoring": False}
    other = nri_runtime.create_container(pod, "other")
    assert "intelRdt" not in other.spec["linux"]
    for ctr in (a, b, other):
        assert_valid_oci_spec(ctr.spec)
    assert a.owners["RdtClosID"] == "10-rdt"

    with pytest.raises(PluginError, match="enablemonitoring.rdt.noderesource.dev/container.bad"):
        nri_runtime.create_container(pod, "bad")
    error = nri_runtime.last("CreateContainer").error or ""
    assert 'strconv.ParseBool: parsing "maybe": invalid syntax' in error
    assert "bad" not in {c.name for c in nri_runtime.containers.values()}
    # the plugin survived, and logged what it did
    assert nri_runtime.create_container(pod, "a").spec["linux"]["intelRdt"]["closID"] == "gold"
    nri_runtime.run_coroutine(handle.wait_for_output("ns/p/b: unknown rdt field 'colour'"))
    nri_runtime.run_coroutine(handle.wait_for_output("ns/p/a: adjusting closid to 'gold'"))


def test_sample_pod_spec(nri_runtime: SyncMockRuntime) -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    nri_runtime.launch_plugin("nri-rdt --idx 10")
    pod = nri_runtime.run_pod(
        sample["metadata"]["name"], annotations=sample["metadata"]["annotations"]
    )
    name = sample["spec"]["containers"][0]["name"]
    ctr = nri_runtime.create_container(pod, name)
    assert ctr.spec["linux"]["intelRdt"] == {
        "closID": "gold",
        "schemata": ["L3:0=f", "MB:0=50"],
        "enableMonitoring": True,
    }
