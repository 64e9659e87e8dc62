"""container_from_spec and the *_from_spec helpers: OCI spec -> NRI messages."""

from __future__ import annotations

from typing import Any

import pytest
from test_oci_schema import GOOD, assert_valid_spec, load_example

from nri.api import api_pb2 as pb
from nri.oci import (
    SpecError,
    SpecGenerator,
    container_from_spec,
    devices_from_spec,
    hooks_from_spec,
    linux_resources_from_spec,
    memory_policy_from_spec,
    mounts_from_spec,
    namespaces_from_spec,
    rlimits_from_spec,
    user_from_spec,
)


def describe(spec: dict[str, Any]) -> pb.Container:
    return container_from_spec(
        spec, id="c1", pod_sandbox_id="p1", name="ctr", state=pb.CONTAINER_CREATED
    )


@pytest.mark.parametrize("name", GOOD)
def test_every_good_example_converts(name: str) -> None:
    ctr = describe(load_example(name))
    assert (ctr.id, ctr.pod_sandbox_id, ctr.name) == ("c1", "p1", "ctr")
    assert ctr.state == pb.CONTAINER_CREATED


def test_spec_example_fields() -> None:
    spec = load_example("good-spec-example.json")
    ctr = container_from_spec(
        spec,
        id="c1",
        pod_sandbox_id="p1",
        name="ctr",
        labels={"app": "x"},
        pid=42,
        cdi_devices=["vendor.com/gpu=0"],
        image=pb.Image(name="busybox"),
    )
    assert list(ctr.args) == spec["process"]["args"]
    assert list(ctr.env) == spec["process"]["env"]
    assert dict(ctr.annotations) == spec["annotations"]
    assert dict(ctr.labels) == {"app": "x"}
    assert ctr.pid == 42
    assert [d.name for d in ctr.CDI_devices] == ["vendor.com/gpu=0"]
    assert ctr.image.name == "busybox"
    assert [m.destination for m in ctr.mounts] == [m["destination"] for m in spec["mounts"]]
    assert ctr.mounts[1] == pb.Mount(
        destination="/dev",
        type="tmpfs",
        source="tmpfs",
        options=["nosuid", "strictatime", "mode=755", "size=65536k"],
    )
    assert [h.path for h in ctr.hooks.prestart] == [h["path"] for h in spec["hooks"]["prestart"]]
    assert ctr.hooks.poststart[0].path == spec["hooks"]["poststart"][0]["path"]
    assert [(r.type, r.hard, r.soft) for r in ctr.rlimits] == [
        ("RLIMIT_CORE", 1024, 1024),
        ("RLIMIT_NOFILE", 1024, 1024),
    ]
    assert ctr.user == pb.User(uid=1, gid=1, additional_gids=[5, 6])
    lx = ctr.linux
    assert [n.type for n in lx.namespaces] == [n["type"] for n in spec["linux"]["namespaces"]]
    assert lx.cgroups_path == "/myRuntime/myContainer"
    assert dict(lx.sysctl) == spec["linux"]["sysctl"]
    assert [d.path for d in lx.devices] == ["/dev/fuse", "/dev/sda"]
    assert lx.devices[0].file_mode.value == 438
    assert lx.devices[0].uid.value == 0
    assert lx.seccomp_policy.default_action == "SCMP_ACT_ALLOW"
    assert lx.seccomp_policy.syscalls[0].names == ["getcwd", "chmod"]
    res = lx.resources
    assert res.memory.limit.value == 536870912
    assert res.memory.HasField("swappiness")
    assert res.cpu.quota.value == 1000000
    assert res.cpu.cpus == "2-3"
    assert res.pids.limit == 32771
    assert res.devices[0].allow is False
    assert res.devices[0].access == "rwm"
    assert not res.devices[0].HasField("major")
    assert res.hugepage_limits[1] == pb.HugepageLimit(page_size="64KB", limit=1000000)


def test_minimal_spec_has_empty_description() -> None:
    ctr = describe(load_example("good-minimal.json"))
    assert not ctr.args and not ctr.mounts and not ctr.rlimits
    assert not ctr.HasField("hooks")
    assert not ctr.HasField("user")
    assert not ctr.linux.HasField("resources")
    assert not ctr.linux.HasField("oom_score_adj")
    assert linux_resources_from_spec({}) is None
    assert hooks_from_spec({}) is None
    assert user_from_spec({}) is None


def test_round_trip_reflects_adjustment() -> None:
    g = SpecGenerator(load_example("good-spec-example.json"))
    adj = pb.ContainerAdjustment(
        annotations={"nri": "yes"},
        env=[pb.KeyValue(key="NRI", value="1")],
        args=["/bin/app"],
        mounts=[pb.Mount(destination="/nri", type="bind", source="/host", options=["rbind"])],
        hooks=pb.Hooks(poststop=[pb.Hook(path="/bin/cleanup", timeout=pb.OptionalInt(value=3))]),
        rlimits=[pb.POSIXRlimit(type="RLIMIT_NPROC", hard=10, soft=5)],
    )
    lx = adj.linux
    lx.devices.append(pb.LinuxDevice(path="/dev/nri", type="c", major=42, minor=1))
    lx.cgroups_path = "/nri.slice"
    lx.oom_score_adj.value = 123
    lx.io_priority.CopyFrom(pb.LinuxIOPriority(priority=7, **{"class": pb.IOPRIO_CLASS_IDLE}))
    lx.seccomp_policy.default_action = "SCMP_ACT_LOG"
    lx.namespaces.append(pb.LinuxNamespace(type="network", path="/run/netns/nri"))
    lx.sysctl["net.nri"] = "1"
    lx.net_devices["eth9"].name = "nri0"
    lx.scheduler.policy = pb.SCHED_BATCH
    lx.scheduler.nice = 3
    lx.rdt.clos_id.value = "nri"
    lx.rdt.enable_monitoring.value = True
    lx.memory_policy.mode = pb.MPOL_BIND
    lx.memory_policy.nodes = "1"
    r = lx.resources
    r.cpu.shares.value = 99
    r.memory.limit.value = 1 << 26
    r.pids.limit = 77
    r.unified["cpu.weight"] = "5"
    g.adjust(adj)
    assert_valid_spec(g.spec)

    ctr = describe(g.spec)
    assert ctr.annotations["nri"] == "yes"
    assert "NRI=1" in ctr.env
    assert list(ctr.args) == ["/bin/app"]
    assert (
        pb.Mount(destination="/nri", type="bind", source="/host", options=["rbind"]) in ctr.mounts
    )
    assert ctr.hooks.poststop[-1] == pb.Hook(path="/bin/cleanup", timeout=pb.OptionalInt(value=3))
    assert pb.POSIXRlimit(type="RLIMIT_NPROC", hard=10, soft=5) in ctr.rlimits
    c = ctr.linux
    assert pb.LinuxDevice(path="/dev/nri", type="c", major=42, minor=1) in c.devices
    assert c.cgroups_path == "/nri.slice"
    assert c.oom_score_adj.value == 123
    assert getattr(c.io_priority, "class") == pb.IOPRIO_CLASS_IDLE
    assert c.io_priority.priority == 7
    assert c.seccomp_policy == pb.LinuxSeccomp(default_action="SCMP_ACT_LOG")
    assert pb.LinuxNamespace(type="network", path="/run/netns/nri") in c.namespaces
    assert c.sysctl["net.nri"] == "1"
    assert c.net_devices["eth9"].name == "nri0"
    assert c.scheduler == pb.LinuxScheduler(policy=pb.SCHED_BATCH, nice=3)
    assert c.rdt.clos_id.value == "nri"
    assert c.rdt.enable_monitoring.value is True
    assert not c.rdt.HasField("schemata")
    assert c.resources.cpu.shares.value == 99
    assert c.resources.memory.limit.value == 1 << 26
    assert c.resources.memory.swap.value == 1 << 26
    assert c.resources.pids.limit == 77
    assert c.resources.unified["cpu.weight"] == "5"
    assert memory_policy_from_spec(g.spec) == pb.LinuxMemoryPolicy(mode=pb.MPOL_BIND, nodes="1")
    assert ctr.linux.resources.devices[-1] == pb.LinuxDeviceCgroup(
        allow=True,
        type="c",
        major=pb.OptionalInt64(value=42),
        minor=pb.OptionalInt64(value=1),
        access="rw",
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"linux": {"devices": [{"type": "c"}]}}, "linux.devices[0].path"),
        ({"linux": {"devices": [{"path": "/dev/x", "type": "q"}]}}, "linux.devices[0].type"),
        ({"linux": {"namespaces": [{"type": "nope"}]}}, "linux.namespaces[0].type"),
        ({"process": {"cwd": "/", "rlimits": [{"type": "NOFILE"}]}}, "process.rlimits[0].type"),
        ({"hooks": {"poststop": [{"args": ["x"]}]}}, "hooks.poststop[0].path"),
        ({"hooks": {"prestart": {}}}, "hooks.prestart"),
        ({"mounts": [{"source": "/x"}]}, "mounts[0].destination"),
        ({"mounts": [{"destination": "/x", "options": "ro"}]}, "mounts[0].options"),
        ({"process": {"cwd": "/", "args": "sh"}}, "process.args"),
        ({"process": {"cwd": "/", "oomScoreAdj": "1"}}, "process.oomScoreAdj"),
        ({"process": {"cwd": "/", "user": {"uid": -1}}}, "process.user.uid"),
        ({"process": {"cwd": "/", "ioPriority": {"class": "X"}}}, "process.ioPriority.class"),
        ({"process": {"cwd": "/", "scheduler": {"policy": "SCHED_X"}}}, "process.scheduler.policy"),
        ({"linux": {"resources": {"memory": {"limit": True}}}}, "linux.resources.memory.limit"),
        (
            {"linux": {"resources": {"memory": {"useHierarchy": 1}}}},
            "linux.resources.memory.useHierarchy",
        ),
        (
            {"linux": {"resources": {"hugepageLimits": [{"pageSize": "2M"}]}}},
            "linux.resources.hugepageLimits[0].pageSize",
        ),
        ({"linux": {"sysctl": {"a": 1}}}, "linux.sysctl.a"),
        ({"linux": {"intelRdt": {"schemata": "L3"}}}, "linux.intelRdt.schemata"),
        ({"linux": {"netDevices": {"eth0": []}}}, "linux.netDevices.eth0"),
        ({"annotations": {"a": None}}, "annotations.a"),
    ],
)
def test_invalid_spec_content_named(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        describe(spec)
    assert info.value.field == field


def test_helpers_individually() -> None:
    spec = load_example("good-spec-example.json")
    assert len(mounts_from_spec(spec)) == len(spec["mounts"])
    assert len(devices_from_spec(spec)) == 2
    assert [n.type for n in namespaces_from_spec(spec)][:2] == ["pid", "network"]
    assert rlimits_from_spec(spec)[0].type == "RLIMIT_CORE"
    res = linux_resources_from_spec(spec)
    assert res is not None and res.cpu.shares.value == 1024
    assert not res.HasField("blockio_class")
    alias = {"linux": {"namespaces": [{"type": "net"}]}}
    assert namespaces_from_spec(alias)[0].type == "network"
