"""Upstream's YAML typing, the annotation kinds upstream added, path rules and hostile input."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from nri_device_injector import Config
from nri_device_injector._annotations import (
    AnnotationError,
    annotation_keys,
    parse_cdi_devices,
    parse_devices,
    parse_memory_policy,
    parse_mounts,
    parse_net_devices,
    parse_scheduler,
    parse_sysctl,
)
from nri_device_injector._plugin import build_adjustment

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime

KEY = "devices.noderesource.dev/pod"


def test_numbers_are_typed_like_go() -> None:
    text = (
        "- path: /dev/x\n  type: c\n  major: 1.0\n  minor: 3e0\n"
        "  file_mode: 0o666\n  uid: 1e3\n  gid: 0x10\n"
        "- PATH: /dev/y\n  Type: b\n  MAJOR: 8\n  minor: 0666\n"
    )
    first, second = parse_devices(KEY, text)
    assert (first.major, first.minor, first.file_mode, first.uid, first.gid) == (
        1,
        3,
        438,
        1000,
        16,
    )
    assert (second.path, second.type, second.major, second.minor) == ("/dev/y", "b", 8, 438)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- path: /dev/x\n  type: c\n  major: 1024.5\n  minor: 0\n", "number 1024.5 into int64"),
        ("- path: /dev/x\n  type: c\n  major: 1e21\n  minor: 0\n", r"number 1e\+21 into int64"),
        ("- path: /dev/x\n  type: c\n  major: '1'\n  minor: 0\n", "cannot unmarshal string"),
        ("- path: /dev/x\n  type: c\n  major: 1\n  minor: 0\n  uid: 4294967296\n", "uint32"),
        ("- path: /dev/x\n  type: c\n  major: .nan\n  minor: 0\n", "unsupported value NaN"),
    ],
)
def test_numbers_go_refuses(text: str, problem: str) -> None:
    with pytest.raises(AnnotationError, match=problem):
        parse_devices(KEY, text)


def test_scalars_fill_string_fields_like_sigs_yaml() -> None:
    (mount,) = parse_mounts(
        "m", "- source: 123\n  destination: /d\n  type: yes\n  options: [ro, 1, 1.5]\n"
    )
    assert (mount.source, mount.type, mount.options) == ("123", "true", ("ro", "1", "1.5"))
    assert parse_cdi_devices("c", "- 42\n- vendor.com/x=1\n") == ["42", "vendor.com/x=1"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- destination: mnt\n", "destination 'mnt' must be an absolute path"),
        ("- destination: /mnt/../etc\n", "destination '/mnt/../etc' must not contain '..'"),
        ("- source: ../etc\n  destination: /d\n  type: bind\n", "bind mount source '../etc'"),
        ("- source: etc\n  destination: /d\n  options: [rbind]\n", "bind mount source 'etc'"),
        ("- source: /a/../etc\n  destination: /d\n", "source '/a/../etc' must not contain"),
    ],
)
def test_mount_paths(text: str, problem: str) -> None:
    with pytest.raises(AnnotationError, match=problem):
        parse_mounts("m", text)


def test_a_fifo_needs_no_numbers() -> None:
    (fifo,) = parse_devices(KEY, "- path: /dev/my-fifo\n  type: p\n")
    adjust = build_adjustment({KEY: "- path: /dev/my-fifo\n  type: p\n"}, "c").message
    assert (fifo.major, fifo.minor) == (None, None)
    assert list(adjust.linux.devices) == [pb.LinuxDevice(path="/dev/my-fifo", type="p")]
    with pytest.raises(AnnotationError, match="missing mandatory field.s.: minor"):
        parse_devices(KEY, "- path: /dev/x\n  type: u\n  major: 4\n")


def test_non_path_mount_sources_stay_allowed() -> None:
    (mount,) = parse_mounts("m", "- source: tmpfs\n  destination: /tmp/x\n  type: tmpfs\n")
    assert mount.source == "tmpfs"
    (device,) = parse_devices(KEY, "- path: /opt/dev/x\n  type: c\n  major: 1\n  minor: 3\n")
    assert device.path == "/opt/dev/x"  # the OCI spec allows device nodes outside /dev


def test_network_devices() -> None:
    key = "network-devices.noderesource.dev/container.c0"
    assert annotation_keys("network-devices", "c0")[1] == "network-devices.nri.io/container.c0"
    text = "- hostIf: dummy0\n  name: eth1\n- hostif: dummy1\n"
    adjust = build_adjustment({key: text}, "c0").message
    assert dict(adjust.linux.net_devices) == {
        "dummy0": pb.LinuxNetDevice(name="eth1"),
        "dummy1": pb.LinuxNetDevice(),
    }
    with pytest.raises(AnnotationError, match="entry #0: missing mandatory field 'hostIf'"):
        parse_net_devices(key, "- name: eth1\n")
    with pytest.raises(AnnotationError, match="entry #0: expected a mapping"):
        parse_net_devices(key, "- ~\n")  # upstream's plugin dereferences nil here


def test_scheduling_policy_like_upstream(caplog: pytest.LogCaptureFixture) -> None:
    key = "scheduling-policy.nri.io/pod"
    text = "policy: SCHED_FIFO\npriority: 10.0\nnice: -5\nflags: [SCHED_FLAG_RECLAIM]\n"
    adjust = build_adjustment({key: text}, "c").message
    assert adjust.linux.scheduler == pb.LinuxScheduler(
        policy=pb.SCHED_FIFO, priority=10, nice=-5, flags=[pb.SCHED_FLAG_RECLAIM]
    )
    # upstream maps unknown names to 0, and an empty value sets the zero scheduler
    adjust = build_adjustment({key: "policy: FAST\nflags: [X]\n"}, "c").message
    assert adjust.linux.scheduler == pb.LinuxScheduler(flags=[pb.SCHED_FLAG_RESET_ON_FORK])
    assert "FAST" in caplog.text
    assert build_adjustment({key: ""}, "c").message.linux.HasField("scheduler")
    with pytest.raises(AnnotationError, match="unknown scheduling policy or flag: FAST, X"):
        build_adjustment({key: "policy: FAST\nflags: [X]\n"}, "c", Config(strict_scheduling=True))
    with pytest.raises(AnnotationError, match="runtime: cannot unmarshal number -1 into uint64"):
        parse_scheduler(key, "runtime: -1\n")


def test_sysctl_has_no_old_domain() -> None:
    assert annotation_keys("sysctl", "c") == (
        "sysctl.noderesource.dev/container.c",
        "sysctl.noderesource.dev/pod",
        "sysctl.noderesource.dev",
    )
    annotations = {
        "sysctl.nri.io/pod": "net.ipv4.ip_forward: 0\n",
        "sysctl.noderesource.dev": "net.core.somaxconn: 1024\nkernel.msgmax: 65536.0\n",
    }
    adjust = build_adjustment(annotations, "c").message
    assert dict(adjust.linux.sysctl) == {"net.core.somaxconn": "1024", "kernel.msgmax": "65536"}
    with pytest.raises(AnnotationError, match="expected a mapping of sysctls"):
        parse_sysctl("sysctl.noderesource.dev", "- a\n")


def test_memory_policy_like_upstream() -> None:
    key = "memory-policy.noderesource.dev/container.c"
    text = "mode: MPOL_BIND\nnodes: 0-1\nflags: [MPOL_F_STATIC_NODES]\n"
    adjust = build_adjustment({key: text}, "c").message
    assert adjust.linux.memory_policy == pb.LinuxMemoryPolicy(
        mode=pb.MPOL_BIND, nodes="0-1", flags=[pb.MPOL_F_STATIC_NODES]
    )
    assert parse_memory_policy(key, "mode: MPOL_INTERLEAVE\nnodes: 1\n").nodes == "1"
    with pytest.raises(AnnotationError, match="invalid memory policy mode ''"):
        build_adjustment({key: ""}, "c")  # upstream fails on an empty value too
    with pytest.raises(AnnotationError, match="invalid memory policy flag 'MPOL_F_X'"):
        parse_memory_policy(key, "mode: MPOL_BIND\nflags: [MPOL_F_X]\n")


def bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\n- path: *a{levels - 1}\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (bomb(), "aliases expand to more than"),
        ("- " + "[" * 10_000 + "]" * 10_000, "nesting"),
        ("- path: /dev/x\n  type: c\n" + "#" * (300 * 1024), "too large"),
    ],
)
def test_hostile_annotations_fail_fast(text: str, problem: str) -> None:
    started = time.monotonic()
    with pytest.raises(AnnotationError, match=problem) as info:
        parse_devices(KEY, text)
    assert str(info.value).startswith(f"annotation {KEY!r}: invalid YAML: ")
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 5  # generous: the real bound is on work, not time


@pytest.mark.timeout(60)
async def test_new_kinds_and_hostile_input_through_the_runtime(tmp_path: Path) -> None:
    annotations = {
        "network-devices.noderesource.dev/container.c0": "- hostIf: dummy0\n  name: eth9\n",
        "sysctl.noderesource.dev/pod": "net.core.somaxconn: 1024\n",
        "memory-policy.noderesource.dev/pod": "mode: MPOL_PREFERRED\nnodes: 0\n",
        "scheduling-policy.noderesource.dev/container.c0": "policy: SCHED_BATCH\nnice: 5\n",
        "mounts.noderesource.dev/container.c0": "- source: 123\n  destination: /mnt/x\n",
        "devices.noderesource.dev/container.bomb": bomb(),
        "devices.noderesource.dev/container.deep": "[" * 5000,
    }
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, "-m", "nri_device_injector"], name="device-injector", idx="20"
        )
        pod = await rt.run_pod("p", annotations=annotations)
        for name, problem in (("bomb", "aliases expand"), ("deep", "nesting")):
            with pytest.raises(PluginError, match=f"container {name}: annotation"):
                await rt.create_container(pod, name)
            assert problem in (rt.last("CreateContainer").error or "")
        c0 = await rt.create_container(pod, "c0")
        linux = c0.spec["linux"]
        assert linux["netDevices"] == {"dummy0": {"name": "eth9"}}
        assert linux["sysctl"] == {"net.core.somaxconn": "1024"}
        assert linux["memoryPolicy"] == {"mode": "MPOL_PREFERRED", "nodes": "0"}
        assert c0.spec["process"]["scheduler"] == {"policy": "SCHED_BATCH", "nice": 5}
        assert c0.spec["mounts"][-1]["source"] == "123"


def readme_blocks() -> list[dict[str, str]]:
    """The annotations of each YAML example of the README (not the ``allow`` example)."""
    import re

    import yaml

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", readme, re.S)]
    return [block for block in blocks if "allow" not in block]


def test_readme_examples() -> None:
    basic, linux_kinds, lookups = readme_blocks()
    adjust = build_adjustment(basic, "c0").message
    assert [(d.path, d.major, d.minor, d.file_mode.value) for d in adjust.linux.devices] == [
        ("/dev/nri-null", 1, 3, 0o666)
    ]
    assert getattr(adjust.linux.io_priority, "class") == pb.IOPRIO_CLASS_BE
    assert [m.destination for m in adjust.mounts] == ["/mnt/dst"]
    cdi = build_adjustment(basic, "c1").message
    assert [d.name for d in cdi.CDI_devices] == ["vendor0.com/device=null"]
    linux = build_adjustment(linux_kinds, "c0").message.linux
    assert linux.scheduler == pb.LinuxScheduler(
        policy=pb.SCHED_FIFO, priority=10, flags=[pb.SCHED_FLAG_RESET_ON_FORK]
    )
    assert dict(linux.net_devices) == {"dummy0": pb.LinuxNetDevice(name="eth1")}
    assert dict(linux.sysctl) == {"net.core.somaxconn": "1024"}
    assert linux.memory_policy == pb.LinuxMemoryPolicy(
        mode=pb.MPOL_BIND, nodes="0-1", flags=[pb.MPOL_F_STATIC_NODES]
    )
    devices = build_adjustment(lookups, "c0").message.linux.devices
    assert [d.path for d in devices] == ["/dev/zero", "/dev/my-null", "/dev/full"]


def test_strict_scheduling_is_a_configuration_option() -> None:
    from nri_device_injector import DeviceInjector, InjectionError

    plugin = DeviceInjector()
    plugin.configure("strict-scheduling: true\n", "rt", "1")
    assert plugin.config.strict_scheduling
    pod = pb.PodSandbox(
        name="p", annotations={"scheduling-policy.noderesource.dev": "policy: SCHED_FAST\n"}
    )
    with pytest.raises(InjectionError, match="unknown scheduling policy or flag: SCHED_FAST"):
        plugin.create_container(pod, pb.Container(name="c"))


def test_upstream_readme_examples_of_the_new_kinds() -> None:
    annotations = {
        "network-devices.noderesource.dev/container.c0": "- hostIf: ens2.100\n  Name: netdev0\n",
        "network-devices.noderesource.dev/container.c1": "- hostIf: ens2.101\n  Name: netdev1\n",
        "sysctl.noderesource.dev/container.c0": 'net.core.somaxconn: "256"\n',
        "memory-policy.noderesource.dev/container.c1": (
            'mode: MPOL_INTERLEAVE\nnodes: "2,3"\nflags: [ MPOL_F_STATIC_NODES ]\n'
        ),
    }
    c0 = build_adjustment(annotations, "c0").message.linux
    assert dict(c0.net_devices) == {"ens2.100": pb.LinuxNetDevice(name="netdev0")}
    assert dict(c0.sysctl) == {"net.core.somaxconn": "256"}
    assert not c0.HasField("memory_policy")
    c1 = build_adjustment(annotations, "c1").message.linux
    assert dict(c1.net_devices) == {"ens2.101": pb.LinuxNetDevice(name="netdev1")}
    assert c1.memory_policy == pb.LinuxMemoryPolicy(
        mode=pb.MPOL_INTERLEAVE, nodes="2,3", flags=[pb.MPOL_F_STATIC_NODES]
    )
