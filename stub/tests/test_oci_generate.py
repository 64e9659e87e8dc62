"""SpecGenerator: every NRI adjustment and update applied to OCI specs.

Every spec a test builds through the ``gen`` fixture is validated against the OCI
runtime-spec 1.3.0 schema when the test finishes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_oci_schema import GOOD, assert_valid_spec, load_example

from nri.api import api_pb2 as pb
from nri.oci import SpecError, SpecGenerator, rdt_class_as_clos_id

MakeGen = Callable[..., SpecGenerator]


def minimal() -> dict[str, Any]:
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"], "env": ["PATH=/bin", "A=1", "B=2"]},
    }


@pytest.fixture
def gen() -> Iterator[MakeGen]:
    """Make generators; every spec they produced must be schema-valid at teardown."""
    made: list[SpecGenerator] = []

    def make(spec: dict[str, Any] | None = None, **opts: Any) -> SpecGenerator:
        g = SpecGenerator(minimal() if spec is None else spec, **opts)
        made.append(g)
        return g

    yield make
    for g in made:
        assert_valid_spec(g.spec)


def adjustment(**kw: Any) -> pb.ContainerAdjustment:
    return pb.ContainerAdjustment(**kw)


def linux(**kw: Any) -> pb.ContainerAdjustment:
    return pb.ContainerAdjustment(linux=pb.LinuxContainerAdjustment(**kw))


# -- basics -------------------------------------------------------------------


def test_spec_is_edited_in_place_and_returned(gen: MakeGen) -> None:
    spec = minimal()
    g = gen(spec)
    g.adjust(adjustment(annotations={"a": "b"}))
    assert g.spec is spec
    assert spec["annotations"] == {"a": "b"}


def test_empty_adjustment_changes_nothing(gen: MakeGen) -> None:
    for name in GOOD:
        spec = load_example(name)
        g = gen(load_example(name))
        g.adjust(pb.ContainerAdjustment())
        g.adjust(None)
        assert g.spec == spec, name


def test_non_dict_spec_rejected() -> None:
    with pytest.raises(SpecError, match="spec"):
        SpecGenerator([])  # type: ignore[arg-type]


# -- annotations, env, args -------------------------------------------------------


def test_annotations_add_replace_remove(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    assert g.spec["annotations"] == {"com.example.key1": "value1", "com.example.key2": "value2"}
    g.adjust(adjustment(annotations={"com.example.key1": "new", "-com.example.key2": "", "x": "y"}))
    assert g.spec["annotations"] == {"com.example.key1": "new", "x": "y"}


def test_annotation_filter_can_drop_and_reject(gen: MakeGen) -> None:
    g = gen(annotation_filter=lambda m: {k: v for k, v in m.items() if k != "drop"})
    g.adjust(adjustment(annotations={"drop": "1", "keep": "2"}))
    assert g.spec["annotations"] == {"keep": "2"}

    def reject(m: dict[str, str]) -> dict[str, str]:
        raise PermissionError("annotation not allowed")

    g = gen(annotation_filter=reject)
    with pytest.raises(SpecError, match="annotation not allowed") as info:
        g.adjust(adjustment(annotations={"x": "1"}))
    assert info.value.field == "annotations"


def test_env_replace_keeps_position_add_appends_remove_drops(gen: MakeGen) -> None:
    g = gen()
    g.adjust(
        adjustment(
            env=[
                pb.KeyValue(key="C", value="3"),
                pb.KeyValue(key="A", value="one"),
                pb.KeyValue(key="-B"),
                pb.KeyValue(key="-NOPE"),
                pb.KeyValue(key="D", value="x=y"),
            ]
        )
    )
    assert g.spec["process"]["env"] == ["PATH=/bin", "A=one", "C=3", "D=x=y"]


def test_env_invalid_name_rejected(gen: MakeGen) -> None:
    g = gen()
    with pytest.raises(SpecError) as info:
        g.adjust(adjustment(env=[pb.KeyValue(key="A=B", value="1")]))
    assert info.value.field == "adjustment.env[0].key"


def test_args_replaced_and_update_marker_stripped(gen: MakeGen) -> None:
    g = gen()
    g.adjust(adjustment(args=["/bin/app", "--flag"]))
    assert g.spec["process"]["args"] == ["/bin/app", "--flag"]
    g.adjust(adjustment(args=["", "/bin/other"]))
    assert g.spec["process"]["args"] == ["/bin/other"]
    g.adjust(adjustment(args=[""]))
    assert g.spec["process"]["args"] == ["/bin/other"]


def test_process_created_with_cwd_when_missing(gen: MakeGen) -> None:
    g = gen(load_example("good-minimal.json"))
    g.adjust(adjustment(args=["true"]))
    assert g.spec["process"] == {"cwd": "/", "args": ["true"]}


# -- hooks, CDI -------------------------------------------------------------------


def _hooks(path: str) -> pb.Hooks:
    h = pb.Hook(path=path, args=[path, "x"], env=["K=V"])
    t = pb.Hook(path=path + "-t")
    t.timeout.value = 5
    return pb.Hooks(
        prestart=[h],
        create_runtime=[h],
        create_container=[h],
        start_container=[h],
        poststart=[h, t],
        poststop=[h],
    )


def test_hooks_all_stages_appended_and_accumulate(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    before = {k: list(v) for k, v in g.spec["hooks"].items()}
    g.adjust(adjustment(hooks=_hooks("/h1")))
    g.adjust(adjustment(hooks=_hooks("/h2")))
    first = {"path": "/h1", "args": ["/h1", "x"], "env": ["K=V"]}
    second = {"path": "/h2", "args": ["/h2", "x"], "env": ["K=V"]}
    hooks = g.spec["hooks"]
    for stage in (
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststop",
    ):
        assert hooks[stage] == [*before.get(stage, []), first, second], stage
    assert hooks["poststart"] == before["poststart"] + [
        first,
        {"path": "/h1-t", "timeout": 5},
        second,
        {"path": "/h2-t", "timeout": 5},
    ]


@pytest.mark.parametrize(
    ("hook", "field"),
    [
        (pb.Hook(), "adjustment.hooks.prestart[0].path"),
        (
            pb.Hook(path="/x", timeout=pb.OptionalInt(value=0)),
            "adjustment.hooks.prestart[0].timeout",
        ),
    ],
)
def test_invalid_hook_rejected(gen: MakeGen, hook: pb.Hook, field: str) -> None:
    g = gen()
    with pytest.raises(SpecError) as info:
        g.adjust(adjustment(hooks=pb.Hooks(prestart=[hook])))
    assert info.value.field == field
    assert "hooks" not in g.spec


def test_cdi_devices_recorded_without_injector(gen: MakeGen) -> None:
    g = gen()
    g.adjust(adjustment(CDI_devices=[pb.CDIDevice(name="vendor.com/gpu=0")]))
    g.adjust(adjustment(CDI_devices=[pb.CDIDevice(name="vendor.com/gpu=1")]))
    assert g.cdi_devices == ["vendor.com/gpu=0", "vendor.com/gpu=1"]


def test_cdi_injector_called_with_spec_and_names(gen: MakeGen) -> None:
    calls: list[list[str]] = []

    def inject(spec: dict[str, Any], names: list[str]) -> None:
        calls.append(names)
        spec.setdefault("linux", {}).setdefault("devices", []).append(
            {"path": "/dev/gpu0", "type": "c", "major": 195, "minor": 0}
        )

    g = gen(cdi_injector=inject)
    g.adjust(
        adjustment(CDI_devices=[pb.CDIDevice(name="a.com/x=1"), pb.CDIDevice(name="a.com/x=2")])
    )
    assert calls == [["a.com/x=1", "a.com/x=2"]]
    assert g.cdi_devices == []
    assert g.spec["linux"]["devices"][0]["path"] == "/dev/gpu0"

    def fail(spec: dict[str, Any], names: list[str]) -> None:
        raise LookupError("unresolvable CDI device a.com/x=9")

    g = gen(cdi_injector=fail)
    with pytest.raises(SpecError, match="unresolvable") as info:
        g.adjust(adjustment(CDI_devices=[pb.CDIDevice(name="a.com/x=9")]))
    assert info.value.field == "adjustment.CDI_devices"


# -- devices ----------------------------------------------------------------------


def test_devices_add_replace_remove_with_cgroup_rules(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    rules_before = list(g.spec["linux"]["resources"]["devices"])
    dev = pb.LinuxDevice(path="/dev/nvme0n1", type="b", major=259, minor=0)
    dev.file_mode.value = 0o660
    dev.uid.value = 0
    dev.gid.value = 6
    g.adjust(
        linux(
            devices=[
                dev,
                pb.LinuxDevice(path="/dev/fuse", type="c", major=10, minor=229),
                pb.LinuxDevice(path="-/dev/sda"),
            ]
        )
    )
    devices = g.spec["linux"]["devices"]
    assert [d["path"] for d in devices] == ["/dev/nvme0n1", "/dev/fuse"]
    assert devices[0] == {
        "path": "/dev/nvme0n1",
        "type": "b",
        "major": 259,
        "minor": 0,
        "fileMode": 0o660,
        "uid": 0,
        "gid": 6,
    }
    assert devices[1] == {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
    assert g.spec["linux"]["resources"]["devices"] == [
        *rules_before,
        {"allow": True, "type": "b", "major": 259, "minor": 0, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
    ]


def test_device_with_same_path_is_replaced(gen: MakeGen) -> None:
    g = gen()
    g.adjust(linux(devices=[pb.LinuxDevice(path="/dev/x", type="c", major=1, minor=1)]))
    g.adjust(linux(devices=[pb.LinuxDevice(path="/dev/x", type="c", major=1, minor=2)]))
    assert g.spec["linux"]["devices"] == [{"path": "/dev/x", "type": "c", "major": 1, "minor": 2}]


@pytest.mark.parametrize(
    ("device", "field"),
    [
        (pb.LinuxDevice(type="c"), "adjustment.linux.devices[0].path"),
        (pb.LinuxDevice(path="-"), "adjustment.linux.devices[0].path"),
        (pb.LinuxDevice(path="/dev/x", type="z"), "adjustment.linux.devices[0].type"),
        (
            pb.LinuxDevice(path="/dev/x", type="c", file_mode=pb.OptionalFileMode(value=0o20666)),
            "adjustment.linux.devices[0].file_mode",
        ),
    ],
)
def test_invalid_device_rejected(gen: MakeGen, device: pb.LinuxDevice, field: str) -> None:
    g = gen()
    with pytest.raises(SpecError) as info:
        g.adjust(linux(devices=[device]))
    assert info.value.field == field


# -- simple linux/process settings -------------------------------------------------


def test_cgroups_path_oom_score_adj(gen: MakeGen) -> None:
    g = gen()
    g.adjust(linux(cgroups_path="/kubepods/pod1/ctr", oom_score_adj=pb.OptionalInt(value=-999)))
    assert g.spec["linux"]["cgroupsPath"] == "/kubepods/pod1/ctr"
    assert g.spec["process"]["oomScoreAdj"] == -999
    g.adjust(linux(cgroups_path=""))
    assert g.spec["linux"]["cgroupsPath"] == "/kubepods/pod1/ctr"
    with pytest.raises(SpecError) as info:
        g.adjust(linux(oom_score_adj=pb.OptionalInt(value=1001)))
    assert info.value.field == "adjustment.linux.oom_score_adj"


def test_oom_score_adj_zero_is_applied_when_present(gen: MakeGen) -> None:
    g = gen()
    g.spec["process"]["oomScoreAdj"] = 500
    g.adjust(linux(oom_score_adj=pb.OptionalInt(value=0)))
    assert g.spec["process"]["oomScoreAdj"] == 0


def test_io_priority_set_and_cleared(gen: MakeGen) -> None:
    g = gen()
    g.adjust(linux(io_priority=pb.LinuxIOPriority(priority=4, **{"class": pb.IOPRIO_CLASS_BE})))
    assert g.spec["process"]["ioPriority"] == {"class": "IOPRIO_CLASS_BE", "priority": 4}
    g.adjust(linux(io_priority=pb.LinuxIOPriority(**{"class": pb.IOPRIO_CLASS_NONE})))
    assert "ioPriority" not in g.spec["process"]


def test_scheduler_set_and_cleared(gen: MakeGen) -> None:
    g = gen()
    g.adjust(
        linux(
            scheduler=pb.LinuxScheduler(
                policy=pb.SCHED_DEADLINE,
                flags=[pb.SCHED_FLAG_RESET_ON_FORK, pb.SCHED_FLAG_RECLAIM],
                runtime=10_000,
                deadline=20_000,
                period=30_000,
            )
        )
    )
    assert g.spec["process"]["scheduler"] == {
        "policy": "SCHED_DEADLINE",
        "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM"],
        "runtime": 10_000,
        "deadline": 20_000,
        "period": 30_000,
    }
    g.adjust(linux(scheduler=pb.LinuxScheduler(policy=pb.SCHED_OTHER, nice=-5)))
    assert g.spec["process"]["scheduler"] == {"policy": "SCHED_OTHER", "nice": -5}
    g.adjust(linux(scheduler=pb.LinuxScheduler(policy=pb.SCHED_NONE)))
    assert "scheduler" not in g.spec["process"]


def test_seccomp_policy_replaces(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    policy = pb.LinuxSeccomp(
        default_action="SCMP_ACT_ERRNO",
        default_errno=pb.OptionalUInt32(value=1),
        architectures=["SCMP_ARCH_X86_64"],
        flags=["SECCOMP_FILTER_FLAG_LOG"],
        listener_path="/run/seccomp.sock",
        listener_metadata="meta",
        syscalls=[
            pb.LinuxSyscall(names=["read", "write"], action="SCMP_ACT_ALLOW"),
            pb.LinuxSyscall(
                names=["personality"],
                action="SCMP_ACT_ERRNO",
                errno_ret=pb.OptionalUInt32(value=38),
                args=[pb.LinuxSeccompArg(index=0, value=8, value_two=2, op="SCMP_CMP_EQ")],
            ),
        ],
    )
    g.adjust(linux(seccomp_policy=policy))
    assert g.spec["linux"]["seccomp"] == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/seccomp.sock",
        "listenerMetadata": "meta",
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 38,
                "args": [{"index": 0, "value": 8, "valueTwo": 2, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }


def test_seccomp_without_default_action_rejected(gen: MakeGen) -> None:
    g = gen()
    with pytest.raises(SpecError) as info:
        g.adjust(linux(seccomp_policy=pb.LinuxSeccomp(architectures=["SCMP_ARCH_X86"])))
    assert info.value.field == "adjustment.linux.seccomp_policy.default_action"


def test_namespaces_add_replace_remove(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    types = [n["type"] for n in g.spec["linux"]["namespaces"]]
    assert types == ["pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time"]
    g.adjust(
        linux(
            namespaces=[
                pb.LinuxNamespace(type="network", path="/var/run/netns/x"),
                pb.LinuxNamespace(type="-user"),
                pb.LinuxNamespace(type="-time"),
                pb.LinuxNamespace(type="-time"),
            ]
        )
    )
    assert g.spec["linux"]["namespaces"] == [
        {"type": "pid"},
        {"type": "network", "path": "/var/run/netns/x"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "cgroup"},
    ]
    g.adjust(linux(namespaces=[pb.LinuxNamespace(type="-net"), pb.LinuxNamespace(type="time")]))
    assert [n["type"] for n in g.spec["linux"]["namespaces"]] == [
        "pid",
        "ipc",
        "uts",
        "mount",
        "cgroup",
        "time",
    ]


@pytest.mark.parametrize("ntype", ["bogus", "-bogus", "", "-"])
def test_unknown_namespace_type_rejected(gen: MakeGen, ntype: str) -> None:
    g = gen()
    with pytest.raises(SpecError, match="namespace type") as info:
        g.adjust(linux(namespaces=[pb.LinuxNamespace(type=ntype)]))
    assert info.value.field == "adjustment.linux.namespaces[0].type"


def test_sysctl_set_and_remove(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    assert g.spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"}
    g.adjust(linux(sysctl={"-net.ipv4.ip_forward": "", "net.core.somaxconn": "1024", "a.b": "c"}))
    assert g.spec["linux"]["sysctl"] == {"net.core.somaxconn": "1024", "a.b": "c"}


def test_sysctl_filter(gen: MakeGen) -> None:
    g = gen(sysctl_filter=lambda m: {k: v for k, v in m.items() if k.startswith("net.")})
    g.adjust(linux(sysctl={"net.x": "1", "kernel.y": "2"}))
    assert g.spec["linux"]["sysctl"] == {"net.x": "1"}


def test_net_devices_add_and_remove(gen: MakeGen) -> None:
    g = gen(load_example("good-linux-netdevice.json"))
    assert set(g.spec["linux"]["netDevices"]) == {"eth0", "ens4", "ens5"}
    g.adjust(
        linux(
            net_devices={
                "-eth0": pb.LinuxNetDevice(),
                "ens4": pb.LinuxNetDevice(name="net0"),
                "ens9": pb.LinuxNetDevice(),
            }
        )
    )
    nd = g.spec["linux"]["netDevices"]
    assert set(nd) == {"ens4", "ens5", "ens9"}
    assert nd["ens4"] == {"name": "net0"}
    assert nd["ens9"] == {}


def test_memory_policy(gen: MakeGen) -> None:
    g = gen()
    g.adjust(
        linux(
            memory_policy=pb.LinuxMemoryPolicy(
                mode=pb.MPOL_INTERLEAVE,
                nodes="0-3",
                flags=[pb.MPOL_F_STATIC_NODES, pb.MPOL_F_NUMA_BALANCING],
            )
        )
    )
    assert g.spec["linux"]["memoryPolicy"] == {
        "mode": "MPOL_INTERLEAVE",
        "nodes": "0-3",
        "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_NUMA_BALANCING"],
    }
    g.adjust(linux(memory_policy=pb.LinuxMemoryPolicy(mode=pb.MPOL_LOCAL)))
    assert g.spec["linux"]["memoryPolicy"] == {"mode": "MPOL_LOCAL"}


def test_enum_value_out_of_range_rejected(gen: MakeGen) -> None:
    g = gen()
    with pytest.raises(SpecError) as info:
        g.adjust(linux(memory_policy=pb.LinuxMemoryPolicy(mode=99)))  # type: ignore[arg-type]
    assert info.value.field == "adjustment.linux.memory_policy.mode"


# -- resources --------------------------------------------------------------------


def full_resources() -> pb.LinuxResources:
    r = pb.LinuxResources()
    m = r.memory
    m.limit.value = 1 << 30
    m.reservation.value = 1 << 29
    m.kernel.value = 1 << 20
    m.kernel_tcp.value = 1 << 19
    m.swappiness.value = 10
    m.disable_oom_killer.value = True
    m.use_hierarchy.value = False
    c = r.cpu
    c.shares.value = 512
    c.quota.value = 50_000
    c.period.value = 100_000
    c.realtime_runtime.value = 950
    c.realtime_period.value = 1000
    c.cpus = "0-3"
    c.mems = "0"
    r.hugepage_limits.append(pb.HugepageLimit(page_size="2MB", limit=1 << 21))
    r.unified["memory.high"] = "max"
    r.pids.limit = 100
    r.devices.append(pb.LinuxDeviceCgroup(allow=False, type="c", access="rwm"))
    return r


FULL_RESOURCES = {
    "memory": {
        "limit": 1 << 30,
        "swap": 1 << 30,
        "reservation": 1 << 29,
        "kernel": 1 << 20,
        "kernelTCP": 1 << 19,
        "swappiness": 10,
        "disableOOMKiller": True,
        "useHierarchy": False,
    },
    "cpu": {
        "shares": 512,
        "quota": 50_000,
        "period": 100_000,
        "realtimeRuntime": 950,
        "realtimePeriod": 1000,
        "cpus": "0-3",
        "mems": "0",
    },
    "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
    "unified": {"memory.high": "max"},
    "pids": {"limit": 100},
    "devices": [{"allow": False, "type": "c", "access": "rwm"}],
}


def test_all_resources_applied(gen: MakeGen) -> None:
    g = gen()
    g.adjust(linux(resources=full_resources()))
    assert g.spec["linux"]["resources"] == FULL_RESOURCES


def test_only_present_resource_fields_are_set(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    before = g.spec["linux"]["resources"]
    expected = copy.deepcopy(before)
    r = pb.LinuxResources()
    r.cpu.quota.value = 0
    r.memory.swappiness.value = 0
    g.adjust(linux(resources=r))
    expected["cpu"]["quota"] = 0
    expected["memory"]["swappiness"] = 0
    assert g.spec["linux"]["resources"] == expected


def test_memory_limit_sets_swap_unless_given_and_zero_limit_ignored(gen: MakeGen) -> None:
    g = gen()
    r = pb.LinuxResources()
    r.memory.limit.value = 100
    r.memory.swap.value = 300
    g.adjust(linux(resources=r))
    assert g.spec["linux"]["resources"]["memory"] == {"limit": 100, "swap": 300}
    r = pb.LinuxResources()
    r.memory.limit.value = 0
    g.adjust(linux(resources=r))
    assert g.spec["linux"]["resources"]["memory"] == {"limit": 100, "swap": 300}


def test_hugepage_limit_replaced_by_page_size(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    assert g.spec["linux"]["resources"]["hugepageLimits"] == [
        {"pageSize": "2MB", "limit": 9223372036854772000},
        {"pageSize": "64KB", "limit": 1000000},
    ]
    r = pb.LinuxResources(
        hugepage_limits=[
            pb.HugepageLimit(page_size="2MB", limit=4096),
            pb.HugepageLimit(page_size="1GB", limit=1 << 30),
        ]
    )
    g.adjust(linux(resources=r))
    assert g.spec["linux"]["resources"]["hugepageLimits"] == [
        {"pageSize": "2MB", "limit": 4096},
        {"pageSize": "64KB", "limit": 1000000},
        {"pageSize": "1GB", "limit": 1 << 30},
    ]
    with pytest.raises(SpecError) as info:
        g.adjust(
            linux(resources=pb.LinuxResources(hugepage_limits=[pb.HugepageLimit(page_size="2M")]))
        )
    assert info.value.field == "adjustment.linux.resources.hugepage_limits[0].page_size"


def test_unlimited_pids_removes_limit(gen: MakeGen) -> None:
    g = gen()
    g.adjust(linux(resources=pb.LinuxResources(pids=pb.LinuxPids(limit=10))))
    assert g.spec["linux"]["resources"]["pids"] == {"limit": 10}
    g.adjust(linux(resources=pb.LinuxResources(pids=pb.LinuxPids(limit=-1))))
    assert "pids" not in g.spec["linux"]["resources"]


def test_blockio_class(gen: MakeGen) -> None:
    classes = {"slow": {"weight": 10}}
    g = gen(blockio_resolver=lambda c: classes[c])
    g.adjust(linux(resources=pb.LinuxResources(blockio_class=pb.OptionalString(value="slow"))))
    assert g.spec["linux"]["resources"]["blockIO"] == {"weight": 10}
    g.spec["linux"]["resources"]["blockIO"]["weight"] = 20
    assert classes["slow"] == {"weight": 10}  # the resolver's object is copied
    with pytest.raises(SpecError, match="'fast'") as info:
        g.adjust(linux(resources=pb.LinuxResources(blockio_class=pb.OptionalString(value="fast"))))
    assert info.value.field == "linux.resources.blockIO"
    g.adjust(linux(resources=pb.LinuxResources(blockio_class=pb.OptionalString(value=""))))
    assert "blockIO" not in g.spec["linux"]["resources"]


def test_blockio_class_ignored_without_resolver(gen: MakeGen) -> None:
    g = gen()
    g.adjust(linux(resources=pb.LinuxResources(blockio_class=pb.OptionalString(value="x"))))
    assert "blockIO" not in g.spec["linux"]["resources"]


def test_rdt_class_ignored_without_resolver_as_upstream(gen: MakeGen) -> None:
    g = gen()
    g.spec["linux"] = {"intelRdt": {"closID": "keep"}}
    for klass in ("gold", ""):
        g.adjust(linux(resources=pb.LinuxResources(rdt_class=pb.OptionalString(value=klass))))
        assert g.spec["linux"]["intelRdt"] == {"closID": "keep"}


def test_rdt_class_resolvers(gen: MakeGen) -> None:
    g = gen(rdt_resolver=rdt_class_as_clos_id)
    g.adjust(linux(resources=pb.LinuxResources(rdt_class=pb.OptionalString(value="gold"))))
    assert g.spec["linux"]["intelRdt"] == {"closID": "gold"}
    g.adjust(linux(resources=pb.LinuxResources(rdt_class=pb.OptionalString(value=""))))
    assert "intelRdt" not in g.spec["linux"]
    g = gen(rdt_resolver=lambda c: {"closID": c, "schemata": ["L3:0=f"]})
    g.adjust(linux(resources=pb.LinuxResources(rdt_class=pb.OptionalString(value="silver"))))
    assert g.spec["linux"]["intelRdt"] == {"closID": "silver", "schemata": ["L3:0=f"]}


def test_rdt_settings(gen: MakeGen) -> None:
    g = gen()
    g.spec.setdefault("linux", {})["intelRdt"] = {"closID": "old", "l3CacheSchema": "L3:0=1"}
    rdt = pb.LinuxRdt(remove=True)
    rdt.clos_id.value = "new"
    rdt.schemata.value.extend(["L3:0=ff", "MB:0=50"])
    rdt.enable_monitoring.value = True
    g.adjust(linux(rdt=rdt))
    assert g.spec["linux"]["intelRdt"] == {
        "closID": "new",
        "schemata": ["L3:0=ff", "MB:0=50"],
        "enableMonitoring": True,
    }
    partial = pb.LinuxRdt()
    partial.enable_monitoring.value = False
    g.adjust(linux(rdt=partial))
    assert g.spec["linux"]["intelRdt"]["enableMonitoring"] is False
    assert g.spec["linux"]["intelRdt"]["closID"] == "new"
    g.adjust(linux(rdt=pb.LinuxRdt(remove=True)))
    assert "intelRdt" not in g.spec["linux"]


def test_resource_checker_sees_final_resources_and_can_reject(gen: MakeGen) -> None:
    seen: list[dict[str, Any]] = []
    g = gen(resource_checker=lambda res: seen.append(dict(res)))
    adj = linux(
        devices=[pb.LinuxDevice(path="/dev/x", type="c", major=1, minor=3)],
        resources=pb.LinuxResources(pids=pb.LinuxPids(limit=5)),
    )
    g.adjust(adj)
    # devices are adjusted before resources, so the checker sees their rules
    assert seen[0]["devices"][0]["major"] == 1
    assert seen[0]["pids"] == {"limit": 5}

    def reject(res: dict[str, Any]) -> None:
        raise RuntimeError("cpu realtime not supported")

    g = gen(resource_checker=reject)
    with pytest.raises(SpecError, match="realtime") as info:
        g.adjust(linux(resources=pb.LinuxResources(pids=pb.LinuxPids(limit=5))))
    assert info.value.field == "linux.resources"


def test_update_applies_resources(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    upd = pb.ContainerUpdate(container_id="c1")
    upd.linux.resources.cpu.shares.value = 2048
    upd.linux.resources.cpu.cpus = "4-7"
    upd.linux.resources.memory.limit.value = 1 << 28
    upd.linux.resources.rdt_class.value = "bronze"
    g = gen(g.spec, rdt_resolver=rdt_class_as_clos_id)
    g.update(upd)
    res = g.spec["linux"]["resources"]
    assert res["cpu"]["shares"] == 2048
    assert res["cpu"]["cpus"] == "4-7"
    assert res["cpu"]["quota"] == 1000000  # untouched
    assert res["memory"]["limit"] == 1 << 28
    assert res["memory"]["swap"] == 1 << 28
    assert g.spec["linux"]["intelRdt"] == {"closID": "bronze"}
    g2 = gen()
    g2.apply_update(full_resources())
    assert g2.spec["linux"]["resources"] == FULL_RESOURCES
    g3 = gen()
    g3.update(pb.ContainerUpdate(container_id="c1"))
    assert "linux" not in g3.spec


# -- mounts -----------------------------------------------------------------------


def test_mounts_add_replace_remove_sorted(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    g.adjust(
        adjustment(
            mounts=[
                pb.Mount(
                    destination="/data/cache", type="bind", source="/host/c", options=["rbind"]
                ),
                pb.Mount(
                    destination="/data", type="bind", source="/host/d", options=["rbind", "ro"]
                ),
                pb.Mount(destination="/dev", type="tmpfs", source="tmpfs"),
                pb.Mount(destination="-/sys"),
                pb.Mount(destination="-/not/there"),
            ]
        )
    )
    mounts = g.spec["mounts"]
    assert [m["destination"] for m in mounts] == [
        "/data",
        "/dev",
        "/proc",
        "/data/cache",
        "/dev/mqueue",
        "/dev/pts",
        "/dev/shm",
        "/sys/fs/cgroup",
    ]
    assert mounts[0] == {
        "destination": "/data",
        "type": "bind",
        "source": "/host/d",
        "options": ["rbind", "ro"],
    }
    assert mounts[1] == {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}


def test_mount_propagation_sets_rootfs_propagation(gen: MakeGen) -> None:
    checked: list[tuple[str, tuple[str, ...]]] = []
    g = gen(propagation_checker=lambda src, allowed: checked.append((src, allowed)))
    g.adjust(
        adjustment(mounts=[pb.Mount(destination="/a", source="/s1", options=["rbind", "rslave"])])
    )
    assert g.spec["linux"]["rootfsPropagation"] == "rslave"
    g.adjust(
        adjustment(mounts=[pb.Mount(destination="/b", source="/s2", options=["rbind", "rshared"])])
    )
    assert g.spec["linux"]["rootfsPropagation"] == "rshared"
    g.adjust(adjustment(mounts=[pb.Mount(destination="/c", source="/s3", options=["rslave"])]))
    assert g.spec["linux"]["rootfsPropagation"] == "rshared"
    assert checked == [
        ("/s1", ("rshared", "rslave")),
        ("/s2", ("rshared",)),
        ("/s3", ("rshared", "rslave")),
    ]

    def private(src: str, allowed: tuple[str, ...]) -> None:
        raise OSError(f"{src} is private")

    g = gen(propagation_checker=private)
    with pytest.raises(SpecError, match="is private") as info:
        g.adjust(adjustment(mounts=[pb.Mount(destination="/a", source="/p", options=["rshared"])]))
    assert info.value.field == "adjustment.mounts[0].source"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "rslave"),
        ("private", "rslave"),
        ("shared", "rslave"),  # upstream keeps only rshared and rslave
        ("slave", "rslave"),
        ("rslave", "rslave"),
        ("rshared", "rshared"),
    ],
)
def test_rslave_mount_rootfs_propagation_as_upstream(
    gen: MakeGen, before: str | None, after: str
) -> None:
    g = gen({**minimal(), "linux": {} if before is None else {"rootfsPropagation": before}})
    g.adjust(adjustment(mounts=[pb.Mount(destination="/m", source="/s", options=["rslave"])]))
    assert g.spec["linux"]["rootfsPropagation"] == after


def test_mount_without_destination_rejected(gen: MakeGen) -> None:
    g = gen()
    with pytest.raises(SpecError) as info:
        g.adjust(adjustment(mounts=[pb.Mount(source="/x")]))
    assert info.value.field == "adjustment.mounts[0].destination"


# -- rlimits ----------------------------------------------------------------------


def test_rlimits_are_appended_as_upstream(gen: MakeGen) -> None:
    g = gen(load_example("good-spec-example.json"))
    core = {"type": "RLIMIT_CORE", "hard": 1024, "soft": 1024}
    assert g.spec["process"]["rlimits"] == [
        core,
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
    ]
    g.adjust(
        adjustment(
            rlimits=[
                pb.POSIXRlimit(type="RLIMIT_NOFILE", hard=4096, soft=2048),
                pb.POSIXRlimit(type="RLIMIT_MEMLOCK", hard=1 << 30, soft=1 << 30),
            ]
        )
    )
    # The runtime's own limit stays; the appended one of the same type wins in runc.
    assert g.spec["process"]["rlimits"] == [
        core,
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
        {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 2048},
        {"type": "RLIMIT_MEMLOCK", "hard": 1 << 30, "soft": 1 << 30},
    ]


@pytest.mark.parametrize("rtype", ["", "NOFILE", "rlimit_nofile", "RLIMIT_"])
def test_invalid_rlimit_type_rejected(gen: MakeGen, rtype: str) -> None:
    g = gen()
    with pytest.raises(SpecError, match="rlimit type") as info:
        g.adjust(
            adjustment(rlimits=[pb.POSIXRlimit(type="RLIMIT_CPU"), pb.POSIXRlimit(type=rtype)])
        )
    assert info.value.field == "adjustment.rlimits[1].type"
    assert "rlimits" not in g.spec["process"]  # validated before anything is applied


# -- malformed specs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "adj", "field"),
    [
        ({"process": "x"}, adjustment(args=["a"]), "process"),
        (
            {"process": {"cwd": "/", "env": "A=1"}},
            adjustment(env=[pb.KeyValue(key="A")]),
            "process.env",
        ),
        ({"linux": []}, linux(cgroups_path="/x"), "linux"),
        ({"mounts": {}}, adjustment(mounts=[pb.Mount(destination="/x")]), "mounts"),
        (
            {"linux": {"resources": {"cpu": 1}}},
            linux(resources=full_resources()),
            "linux.resources.cpu",
        ),
    ],
)
def test_malformed_spec_reported_by_field(
    spec: dict[str, Any], adj: pb.ContainerAdjustment, field: str
) -> None:
    with pytest.raises(SpecError) as info:
        SpecGenerator(spec).adjust(adj)
    assert info.value.field == field


def test_env_removal_alone_does_not_create_process(gen: MakeGen) -> None:
    g = gen(load_example("good-minimal.json"))
    g.adjust(adjustment(env=[pb.KeyValue(key="-X")]))
    assert "process" not in g.spec
    g.adjust(adjustment(env=[pb.KeyValue(key="X", value="1")]))
    assert g.spec["process"] == {"cwd": "/", "env": ["X=1"]}
