"""The lines and JSON records, for pods as runtimes describe them."""

from __future__ import annotations

import json
import logging

import pytest
from nri_network_logger import (
    HOST_NETWORK,
    Config,
    NetworkLogger,
    format_ips,
    network_namespace,
    pod_line,
    pod_record,
)

from nri.api import api_pb2 as pb

NETNS = "/var/run/netns/cni-d3f41d35-dde9-382d-9502-3cb05c99543a"


def make_pod(netns: str | None = NETNS, ips: tuple[str, ...] = ("10.244.1.22",)) -> pb.PodSandbox:
    pod = pb.PodSandbox(id="p1", uid="u1", name="webapp", namespace="default", ips=list(ips))
    pod.linux.namespaces.add(type="ipc")
    if netns is not None:
        pod.linux.namespaces.add(type="network", path=netns)
    return pod


def test_network_namespace_as_upstream_finds_it() -> None:
    assert network_namespace(make_pod()) == NETNS
    assert network_namespace(make_pod(netns=None)) == HOST_NETWORK == "<host-network>"
    assert network_namespace(pb.PodSandbox()) == HOST_NETWORK  # no linux part at all
    # a network entry without a path is not the host network: upstream prints it empty
    assert network_namespace(make_pod(netns="")) == ""
    pod = make_pod()
    pod.linux.namespaces.add(type="network", path="/second")
    assert network_namespace(pod) == NETNS  # the first one counts


@pytest.mark.parametrize(
    ("ips", "text"),
    [((), "[]"), (("10.0.0.1",), "[10.0.0.1]"), (("10.0.0.1", "fd00::1"), "[10.0.0.1 fd00::1]")],
)
def test_ips_as_go_prints_a_slice(ips: tuple[str, ...], text: str) -> None:
    assert format_ips(ips) == text


def test_upstream_lines() -> None:
    pod = make_pod()
    assert (
        pod_line("Synchronize", pod) == f"pod default/webapp: namespace={NETNS} ips=[10.244.1.22]"
    )
    assert pod_line("RunPodSandbox", pod) == (
        f"Started pod default/webapp: namespace={NETNS} ips=[10.244.1.22]"
    )
    assert pod_line("StopPodSandbox", pod) == "Stopped pod default/webapp: ips=[10.244.1.22]"
    assert pod_line("RemovePodSandbox", pod) == "Removed pod default/webapp: ips=[10.244.1.22]"
    host = make_pod(netns=None, ips=())
    assert pod_line("RunPodSandbox", host) == (
        "Started pod default/webapp: namespace=<host-network> ips=[]"
    )


def test_json_record() -> None:
    assert pod_record("StopPodSandbox", make_pod(ips=("10.0.0.1", "fd00::1"))) == {
        "event": "StopPodSandbox",
        "namespace": "default",
        "name": "webapp",
        "uid": "u1",
        "id": "p1",
        "netns": NETNS,
        "ips": ["10.0.0.1", "fd00::1"],
    }
    assert pod_record("RunPodSandbox", make_pod(netns=None))["netns"] is None


def test_configuration_and_flags(caplog: pytest.LogCaptureFixture) -> None:
    plugin = NetworkLogger()
    plugin.configure("json: true\n", "containerd", "2.1.0")
    assert plugin.config == Config(json=True)
    with caplog.at_level(logging.INFO):
        plugin.run_pod_sandbox(make_pod())
    assert json.loads(caplog.records[-1].getMessage())["event"] == "RunPodSandbox"
    flagged = NetworkLogger(Config(), json=False)
    flagged.configure("json: true", "containerd", "2.1.0")
    assert flagged.config.json is False  # the command line wins


def test_shutdown_and_lost_connection(caplog: pytest.LogCaptureFixture) -> None:
    plugin = NetworkLogger()
    with caplog.at_level(logging.INFO):
        plugin.shutdown()
        plugin.on_close()
    assert [r.getMessage() for r in caplog.records] == [
        "Runtime shutting down...",
        "Connection to the runtime lost, exiting...",
    ]
