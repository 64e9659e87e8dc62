"""Moving devices for real, between network namespaces the tests create (see conftest)."""

from __future__ import annotations

import pytest
from network_device_injector_lab import NetnsLab
from nri_network_device_injector import DeviceConfig, NetdevError, inject, release


def setup_host(lab: NetnsLab, *, up: bool = False) -> tuple[str, str, str]:
    """A stand-in host with the veth pair dev0/peer0, and an empty pod namespace."""
    host, pod = lab.netns("host"), lab.netns("pod")
    lab.veth(host, "dev0", "peer0", up=up)
    return host, pod, lab.path(pod)


def test_inject_moves_renames_and_sets_up_then_release_restores(lab: NetnsLab) -> None:
    host, pod, pod_path = setup_host(lab)
    index = lab.run_in(host, lambda: inject(pod_path, "dev0", "eth33"))

    assert lab.link(host, "dev0") is None
    inside = lab.link(pod, "eth33")
    assert inside is not None
    assert inside["ifindex"] == index
    assert "UP" in inside["flags"]
    assert inside["ifalias"] == "dev0"  # the way back reads the host name from here
    assert lab.addresses(pod, "eth33") == []  # nothing configured unless asked
    assert lab.links(pod) == ["lo", "eth33"]

    assert lab.run_in(host, lambda: release(pod_path, "eth33")) == "dev0"
    assert lab.links(pod) == ["lo"]
    back = lab.link(host, "dev0")
    assert back is not None
    assert "UP" not in back["flags"]  # left down, like upstream
    assert lab.link(host, "peer0") is not None


def test_configuration_applied_inside_the_pod(lab: NetnsLab) -> None:
    host, pod, pod_path = setup_host(lab)
    config = DeviceConfig(address="192.168.2.2", prefix=24, mtu=1400)
    lab.run_in(host, lambda: inject(pod_path, "dev0", "eth1", config))
    inside = lab.link(pod, "eth1")
    assert inside is not None
    assert inside["mtu"] == 1400
    assert lab.addresses(pod, "eth1") == ["192.168.2.2/24"]
    brd = lab.ip(pod, "-j", "addr", "show", "dev", "eth1").stdout
    assert '"broadcast":"192.168.2.255"' in brd

    lab.veth(host, "dev1", "peer1")
    v6 = DeviceConfig(address="fd00::7")
    lab.run_in(host, lambda: inject(pod_path, "dev1", "eth2", v6))
    assert "fd00::7/128" in lab.addresses(pod, "eth2")


def test_missing_device_names_it_and_changes_nothing(lab: NetnsLab) -> None:
    host, pod, pod_path = setup_host(lab)
    with pytest.raises(NetdevError) as caught:
        lab.run_in(host, lambda: inject(pod_path, "nosuch0", "eth1"))
    assert str(caught.value) == "network device 'nosuch0' not found in the host network namespace"
    assert lab.links(pod) == ["lo"]
    with pytest.raises(NetdevError, match=f"^network device 'eth1' not found in {pod_path}$"):
        lab.run_in(host, lambda: release(pod_path, "eth1"))


def test_missing_or_wrong_namespace_names_the_path(lab: NetnsLab) -> None:
    host, _pod, pod_path = setup_host(lab)
    gone = pod_path + "-gone"
    with pytest.raises(NetdevError, match=f"^network namespace {gone}: No such file or directory$"):
        lab.run_in(host, lambda: inject(gone, "dev0", "eth1"))
    not_netns = "/proc/self/ns/uts"
    with pytest.raises(NetdevError, match=f"^network namespace {not_netns}: not a network"):
        lab.run_in(host, lambda: inject(not_netns, "dev0", "eth1"))
    with pytest.raises(NetdevError, match="^network namespace /etc/hostname: not a network"):
        lab.run_in(host, lambda: release("/etc/hostname", "eth1"))
    dev = lab.link(host, "dev0")
    assert dev is not None and dev["ifname"] == "dev0"


def test_failed_rename_in_the_pod_rolls_back(lab: NetnsLab) -> None:
    host, pod, pod_path = setup_host(lab, up=True)
    lab.ip(pod, "link", "add", "eth1", "type", "veth", "peer", "name", "other")
    with pytest.raises(NetdevError, match=r"^failed to rename device 'temp_\d+' to 'eth1': File"):
        lab.run_in(host, lambda: inject(pod_path, "dev0", "eth1"))
    back = lab.link(host, "dev0")
    assert back is not None
    assert "UP" in back["flags"]  # restored, as it was up
    assert sorted(lab.links(pod)) == ["eth1", "lo", "other"]


def test_failed_configuration_rolls_back(lab: NetnsLab) -> None:
    host, pod, pod_path = setup_host(lab)
    with pytest.raises(NetdevError, match="^failed to set the MTU of 'eth1' to 9999999: "):
        lab.run_in(host, lambda: inject(pod_path, "dev0", "eth1", DeviceConfig(mtu=9999999)))
    assert lab.link(host, "dev0") is not None
    assert lab.links(pod) == ["lo"]
    with pytest.raises(NetdevError, match="^invalid prefix 33 for address 10.0.0.1 of 'eth1'$"):
        config = DeviceConfig(address="10.0.0.1", prefix=33)
        lab.run_in(host, lambda: inject(pod_path, "dev0", "eth1", config))
    assert lab.link(host, "dev0") is not None


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", "a b", "a:b", ".", ".."])
def test_invalid_interface_names(name: str) -> None:
    # checked before anything is opened, so no namespace is needed
    with pytest.raises(NetdevError, match="not a valid interface name"):
        inject("/nonexistent", name, "eth1")
    with pytest.raises(NetdevError, match="not a valid interface name"):
        inject("/nonexistent", "dev0", name)
    with pytest.raises(NetdevError, match="not a valid interface name"):
        release("/nonexistent", name)
