"""End to end: the plugin command, started by the mock runtime inside a stand-in host
network namespace, moving veths into pod namespaces at RunPodSandbox and back at
StopPodSandbox."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from network_device_injector_lab import NetnsLab
from nri_network_device_injector import HOST_NETWORK_ERROR

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import PluginProcess, SyncMockRuntime

KEY = "netdevice.noderesource.dev"
OLD = "netdevices.nri.containerd.io"
DOC = "netdevices.noderesource.dev"


def launch(nri_runtime: SyncMockRuntime, lab: NetnsLab, host: str, *flags: str) -> PluginProcess:
    command = [*lab.exec_prefix(host), sys.executable, "-m", "nri_network_device_injector"]
    handle = nri_runtime.launch_plugin([*command, "-idx", "10", *flags])
    assert handle.info.events == mask_of(pb.RUN_POD_SANDBOX, pb.STOP_POD_SANDBOX)
    assert [p.full_name for p in nri_runtime.plugins] == ["10-network-device-injector"]
    return handle


def wait_for(nri_runtime: SyncMockRuntime, handle: PluginProcess, text: str) -> str:
    line: str = nri_runtime.run_coroutine(handle.wait_for_output(text))
    return line


def pod_error(nri_runtime: SyncMockRuntime, name: str, **fields: Any) -> str:
    with pytest.raises(PluginError) as caught:
        nri_runtime.run_pod(name, **fields)
    assert name not in {p.name for p in nri_runtime.pods.values()}
    return str(caught.value)


@pytest.mark.timeout(60)
def test_upstream_behaviour(nri_runtime: SyncMockRuntime, lab: NetnsLab) -> None:
    host, pod = lab.netns("host"), lab.netns("pod")
    for n in range(3):
        lab.veth(host, f"dev{n}", f"peer{n}", up=n == 0)
    handle = launch(nri_runtime, lab, host, "-verbose")

    annotation = (
        "- name: dev0\n  new_name: eth33\n  address: 192.168.2.2\n  prefix: 24\n  mtu: 1400\n"
        "- name: dev1\n"  # no new_name: upstream cannot inject it
        "- name: dev2\n  new_name: eth2\n"  # not reached: the failure before ends injection
    )
    web = nri_runtime.run_pod("web", netns=lab.path(pod), annotations={KEY: annotation})
    inside = lab.link(pod, "eth33")
    assert inside is not None and "UP" in inside["flags"]
    assert inside["mtu"] == 1500  # parsed but not applied, as upstream
    assert lab.addresses(pod, "eth33") == []
    assert lab.link(host, "dev0") is None
    assert lab.link(host, "dev1") is not None and lab.link(host, "dev2") is not None
    wait_for(nri_runtime, handle, "pod default/web: cannot inject network device 'dev1': it has")
    wait_for(nri_runtime, handle, "not handling 'dev2'")
    stderr = wait_for(nri_runtime, handle, f"RunPodSandbox:      - path: {lab.path(pod)}")
    assert "RunPodSandbox: pod:" in stderr  # upstream's -verbose dump

    nri_runtime.stop_pod(web)
    assert lab.links(pod) == ["lo"]
    back = lab.link(host, "dev0")
    assert back is not None and "UP" not in back["flags"]

    # the deprecated key, with /pod
    nri_runtime.run_pod(
        "old", netns=lab.path(pod), annotations={f"{OLD}/pod": "- {name: dev2, new_name: x2}"}
    )
    assert lab.links(pod) == ["lo", "x2"]
    # the README's key is not read by upstream's code
    nri_runtime.run_pod(
        "doc", netns=lab.path(pod), annotations={DOC: "- {name: dev1, new_name: x1}"}
    )
    assert lab.links(pod) == ["lo", "x2"]

    # a missing device: logged, the pod runs without it
    nri_runtime.run_pod(
        "ghost", netns=lab.path(pod), annotations={KEY: "- {name: nosuch0, new_name: e0}"}
    )
    wait_for(
        nri_runtime,
        handle,
        "pod default/ghost: cannot inject network device 'nosuch0': network device 'nosuch0' "
        "not found in the host network namespace",
    )
    # a missing namespace: likewise
    nri_runtime.run_pod(
        "nons", netns=lab.path(pod) + "-gone", annotations={KEY: "- {name: dev1, new_name: e1}"}
    )
    wait_for(nri_runtime, handle, f"network namespace {lab.path(pod)}-gone: No such file")

    # what fails the pod: a host-network pod naming devices, an invalid annotation
    error = pod_error(nri_runtime, "hostnet", annotations={KEY: "- name: dev1"})
    assert HOST_NETWORK_ERROR in error
    assert "failed to handle RunPodSandbox" in error or "RunPodSandbox" in error
    error = pod_error(
        nri_runtime, "bad", netns=lab.path(pod), annotations={KEY: "- name: x\n  mtu: big\n"}
    )
    assert f'invalid device annotation "{KEY}": [0].mtu: cannot unmarshal string into int64' in (
        error
    )
    error = pod_error(nri_runtime, "badip", annotations={KEY: "- {name: x, address: 10.1}"})
    assert "error parsing address 10.1" in error

    # no annotation, or a host-network pod without devices: nothing happens
    nri_runtime.run_pod("plain", netns=lab.path(pod))
    nri_runtime.run_pod("hostnet-plain")
    assert [p.full_name for p in nri_runtime.plugins] == ["10-network-device-injector"]
    assert lab.link(host, "dev1") is not None


@pytest.mark.timeout(60)
def test_improvements_as_options(nri_runtime: SyncMockRuntime, lab: NetnsLab) -> None:
    host, pod = lab.netns("host"), lab.netns("pod")
    lab.veth(host, "dev0", "peer0")
    lab.veth(host, "dev1", "peer1")
    handle = launch(
        nri_runtime,
        lab,
        host,
        "--strict",
        "--configure-devices",
        "--default-new-name",
        "--documented-key",
    )
    annotation = "- name: dev0\n  address: 192.168.2.2\n  prefix: 24\n  mtu: 1400\n"
    web = nri_runtime.run_pod("web", netns=lab.path(pod), annotations={DOC: annotation})
    inside = lab.link(pod, "dev0")  # new_name defaults to the host name
    assert inside is not None and inside["mtu"] == 1400
    assert lab.addresses(pod, "dev0") == ["192.168.2.2/24"]
    nri_runtime.stop_pod(web)
    assert lab.link(host, "dev0") is not None

    # strict: a missing device fails the pod, and what was moved in already goes back
    annotation = "- {name: dev0, new_name: e0}\n- {name: dev1}\n- {name: nosuch0}\n"
    error = pod_error(nri_runtime, "ghost", netns=lab.path(pod), annotations={KEY: annotation})
    assert (
        "pod default/ghost: cannot inject network device 'nosuch0': network device 'nosuch0' "
        "not found in the host network namespace"
    ) in error
    assert lab.links(pod) == ["lo"]
    assert lab.link(host, "dev0") is not None and lab.link(host, "dev1") is not None
    wait_for(nri_runtime, handle, "injected network device 'dev1' as 'dev1'")
