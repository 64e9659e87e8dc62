"""The ``allow`` section: only allowed pods get devices, and only theirs are given back."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from network_device_injector_lab import NetnsLab
from nri_network_device_injector import NetworkDeviceInjector, parse_config

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.mock import MockPod, SyncMockRuntime
from nri.testing import allow_example

KEY = "netdevice.noderesource.dev"
README = Path(__file__).resolve().parents[1] / "README.md"
ALLOW = "allow:\n  namespaces: [net-jobs]\n  on-denied: ON_DENIED\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on_denied", ["refuse", "ignore"])
def test_only_allowed_pods_get_devices(
    nri_runtime: SyncMockRuntime, lab: NetnsLab, tmp_path: Path, on_denied: str
) -> None:
    host, allowed_ns, denied_ns = lab.netns("host"), lab.netns("ok"), lab.netns("no")
    lab.veth(host, "dev0", "peer0")
    lab.veth(host, "dev1", "peer1")
    # the denied pod has a device of the name it asks for: giving it "back" would steal it
    lab.veth(denied_ns, "eth33", "own33")
    config = tmp_path / "network-device-injector.yaml"
    config.write_text(ALLOW.replace("ON_DENIED", on_denied))
    command = [*lab.exec_prefix(host), sys.executable, "-m", "nri_network_device_injector"]
    handle = nri_runtime.launch_plugin([*command, "-idx", "10", "--config", str(config)])

    allowed = nri_runtime.run_pod(
        "a",
        namespace="net-jobs",
        netns=lab.path(allowed_ns),
        annotations={KEY: "- {name: dev0, new_name: eth33}"},
    )
    assert lab.links(allowed_ns) == ["lo", "eth33"]

    def run_denied() -> MockPod:
        return nri_runtime.run_pod(
            "d",
            namespace="default",
            netns=lab.path(denied_ns),
            annotations={KEY: "- {name: dev1, new_name: eth33}"},
        )

    expected = "pod 'd' in namespace 'default' may not request injection (annotation"
    if on_denied == "refuse":
        with pytest.raises(PluginError, match=re.escape(expected)):
            run_denied()
        assert "d" not in {p.name for p in nri_runtime.pods.values()}
    else:
        denied = run_denied()
        nri_runtime.stop_pod(denied)
        nri_runtime.remove_pod(denied)
    assert lab.link(host, "dev1") is not None
    assert sorted(lab.links(denied_ns)) == ["eth33", "lo", "own33"]
    assert lab.link(host, "eth33") is None
    output: str = nri_runtime.run_coroutine(handle.wait_for_output(expected))
    assert output.count(expected) == 1
    assert "Traceback" not in output

    nri_runtime.stop_pod(allowed)
    assert lab.links(allowed_ns) == ["lo"]
    assert lab.link(host, "dev0") is not None


def test_a_denied_pod_with_a_bad_annotation_is_ignored_not_failed() -> None:
    plugin = NetworkDeviceInjector(parse_config(ALLOW.replace("ON_DENIED", "ignore"), "t"))
    pod = pb.PodSandbox(name="d", namespace="default", annotations={KEY: "- name: x\n  mtu: big"})
    asyncio.run(plugin.run_pod_sandbox(pod))  # no AnnotationError: the pod asked for nothing
    asyncio.run(plugin.stop_pod_sandbox(pod))


def test_readme_example() -> None:
    example = allow_example(README)
    config = parse_config(example, "README.md")
    assert config.strict  # the other keys stay beside it
    assert config.allow.on_denied == "refuse"
    assert config.allow.allows("net-jobs", {"net": "sriov"})
    assert not config.allow.allows("net-jobs", {})
    assert not config.allow.allows("default", {"net": "sriov"})
