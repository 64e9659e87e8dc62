"""End to end: nri-network-logger launched by the mock runtime, its stderr checked."""

from __future__ import annotations

import json
import sys

import pytest

from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import PluginProcess, SyncMockRuntime

COMMAND = [sys.executable, "-m", "nri_network_logger", "-idx", "10"]
NETNS = "/var/run/netns/cni-2b46640c-8073-214b-77ae-fdebdcd7c223"


def output(nri_runtime: SyncMockRuntime, handle: PluginProcess, text: str) -> list[str]:
    """The plugin's messages (after ``10-network-logger: ``) once ``text`` showed up."""
    stderr: str = nri_runtime.run_coroutine(handle.wait_for_output(text))
    marker = "10-network-logger: "
    return [line.split(marker, 1)[1] for line in stderr.splitlines() if marker in line]


@pytest.mark.timeout(60)
def test_logs_pods_at_sync_run_stop_remove(nri_runtime: SyncMockRuntime) -> None:
    nri_runtime.add_existing_pod("webapp", netns="/var/run/netns/cni-old", ips=["10.244.1.22"])
    nri_runtime.add_existing_pod("kube-proxy", namespace="kube-system")
    handle = nri_runtime.launch_plugin(COMMAND)
    assert handle.info.events == mask_of(
        pb.RUN_POD_SANDBOX, pb.STOP_POD_SANDBOX, pb.REMOVE_POD_SANDBOX
    )
    pod = nri_runtime.run_pod("test-nri-1", netns=NETNS, ips=["10.244.1.24", "fd00::18"])
    nri_runtime.create_container(pod, "c0")  # container events are not logged
    nri_runtime.stop_pod(pod)
    nri_runtime.remove_pod(pod)
    lines = output(nri_runtime, handle, "Removed pod")
    assert lines[-6:] == [
        "Synchronized state with the runtime (2 pods, 0 containers)...",
        "pod default/webapp: namespace=/var/run/netns/cni-old ips=[10.244.1.22]",
        "pod kube-system/kube-proxy: namespace=<host-network> ips=[]",
        f"Started pod default/test-nri-1: namespace={NETNS} ips=[10.244.1.24 fd00::18]",
        "Stopped pod default/test-nri-1: ips=[10.244.1.24 fd00::18]",
        "Removed pod default/test-nri-1: ips=[10.244.1.24 fd00::18]",
    ]
    assert [p.full_name for p in nri_runtime.plugins] == ["10-network-logger"]


@pytest.mark.timeout(60)
def test_json_lines(nri_runtime: SyncMockRuntime) -> None:
    handle = nri_runtime.launch_plugin([*COMMAND, "--json"])
    nri_runtime.run_pod("web", namespace="prod", uid="u-1", netns=NETNS, ips=["10.0.0.7"])
    nri_runtime.run_pod("host", ips=["192.168.1.10"])
    lines = output(nri_runtime, handle, '"name":"host"')
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records[0] == {"event": "Synchronize", "pods": 0, "containers": 0}
    web, host = records[-2:]
    assert web == {
        "event": "RunPodSandbox",
        "namespace": "prod",
        "name": "web",
        "uid": "u-1",
        "id": web["id"],
        "netns": NETNS,
        "ips": ["10.0.0.7"],
    }
    assert web["id"] in {p.id for p in nri_runtime.pods.values()}
    assert (host["netns"], host["ips"]) == (None, ["192.168.1.10"])
