"""Property test: any combination of valid adjustments yields a schema-valid OCI spec."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_oci_schema import GOOD, assert_valid_spec, load_example

from nri.api import api_pb2 as pb
from nri.oci import NAMESPACE_TYPES, SpecGenerator, container_from_spec

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=8)
paths = st.lists(names, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
values = st.text(max_size=10)
i64 = st.integers(-(2**63), 2**63 - 1)
u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)


def removable(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.booleans(), keys).map(lambda t: ("-" if t[0] else "") + t[1])


hooks = st.builds(
    pb.Hook,
    path=paths,
    args=st.lists(values, max_size=2),
    env=st.lists(names.map(lambda n: f"{n}=v"), max_size=2),
    timeout=st.none() | st.integers(1, 100).map(lambda v: pb.OptionalInt(value=v)),
)
hook_lists = st.lists(hooks, max_size=2)
all_hooks = st.builds(
    pb.Hooks,
    prestart=hook_lists,
    create_runtime=hook_lists,
    create_container=hook_lists,
    start_container=hook_lists,
    poststart=hook_lists,
    poststop=hook_lists,
)
mounts = st.builds(
    pb.Mount,
    destination=removable(paths),
    type=st.sampled_from(["", "bind", "tmpfs"]),
    source=st.sampled_from(["", "/src", "tmpfs"]),
    options=st.lists(st.sampled_from(["rbind", "ro", "rprivate", "rshared", "rslave"]), max_size=3),
)


def _device(t: tuple[str, str, int, int, int | None, int | None]) -> pb.LinuxDevice:
    path, dtype, major, minor, mode, uid = t
    d = pb.LinuxDevice(path=path, type=dtype, major=major, minor=minor)
    if mode is not None:
        d.file_mode.value = mode
    if uid is not None:
        d.uid.value = uid
        d.gid.value = uid
    return d


devices = st.tuples(
    removable(paths.map(lambda p: "/dev" + p)),
    st.sampled_from(["c", "b", "u", "p"]),
    i64,
    i64,
    st.none() | st.integers(0, 0o777),
    st.none() | u32,
).map(_device)


def _resources(d: dict[str, Any]) -> pb.LinuxResources:
    r = pb.LinuxResources()
    for field, value in d["memory"].items():
        getattr(r.memory, field).value = value
    for field, value in d["cpu"].items():
        if field in ("cpus", "mems"):
            setattr(r.cpu, field, value)
        else:
            getattr(r.cpu, field).value = value
    for size, limit in d["hugepages"]:
        r.hugepage_limits.append(pb.HugepageLimit(page_size=size, limit=limit))
    r.unified.update(d["unified"])
    if d["pids"] is not None:
        r.pids.limit = d["pids"]
    if d["rdt"] is not None:
        r.rdt_class.value = d["rdt"]
    if d["blockio"] is not None:
        r.blockio_class.value = d["blockio"]
    for allow, dtype, access in d["rules"]:
        r.devices.append(pb.LinuxDeviceCgroup(allow=allow, type=dtype, access=access))
    return r


resources = st.fixed_dictionaries(
    {
        "memory": st.fixed_dictionaries(
            {},
            optional={
                "limit": i64,
                "reservation": i64,
                "swap": i64,
                "kernel": i64,
                "kernel_tcp": i64,
                "swappiness": u64,
                "disable_oom_killer": st.booleans(),
                "use_hierarchy": st.booleans(),
            },
        ),
        "cpu": st.fixed_dictionaries(
            {},
            optional={
                "shares": u64,
                "quota": i64,
                "period": u64,
                "realtime_runtime": i64,
                "realtime_period": u64,
                "cpus": st.sampled_from(["0", "0-3", "1,3"]),
                "mems": st.sampled_from(["0", "0-1"]),
            },
        ),
        "hugepages": st.lists(st.tuples(st.sampled_from(["2MB", "1GB", "64KB"]), u64), max_size=3),
        "unified": st.dictionaries(names, values, max_size=2),
        "pids": st.none() | st.integers(-1, 2**63 - 1),
        "rdt": st.none() | st.sampled_from(["", "gold"]),
        "blockio": st.none() | st.sampled_from(["", "slow"]),
        "rules": st.lists(
            st.tuples(
                st.booleans(),
                st.sampled_from(["", "a", "b", "c"]),
                st.sampled_from(["", "r", "rwm"]),
            ),
            max_size=2,
        ),
    }
).map(_resources)

seccomp = st.builds(
    pb.LinuxSeccomp,
    default_action=st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_LOG"]),
    architectures=st.lists(st.sampled_from(["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]), max_size=2),
    syscalls=st.lists(
        st.builds(
            pb.LinuxSyscall,
            names=st.lists(names, min_size=1, max_size=2),
            action=st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_KILL"]),
            args=st.lists(
                st.builds(
                    pb.LinuxSeccompArg,
                    index=u32,
                    value=u64,
                    value_two=u64,
                    op=st.just("SCMP_CMP_EQ"),
                ),
                max_size=1,
            ),
        ),
        max_size=2,
    ),
)


def _rdt(t: tuple[bool, str | None, list[str] | None, bool | None]) -> pb.LinuxRdt:
    remove, clos, schemata, mon = t
    r = pb.LinuxRdt(remove=remove)
    if clos is not None:
        r.clos_id.value = clos
    if schemata is not None:
        r.schemata.SetInParent()
        r.schemata.value.extend(schemata)
    if mon is not None:
        r.enable_monitoring.value = mon
    return r


linux_adjustments = st.fixed_dictionaries(
    {},
    optional={
        "devices": st.lists(devices, max_size=3),
        "resources": resources,
        "cgroups_path": st.sampled_from(["", "/a/b", "system.slice:x:y"]),
        "oom_score_adj": st.integers(-1000, 1000).map(lambda v: pb.OptionalInt(value=v)),
        "io_priority": st.builds(
            lambda c, p: pb.LinuxIOPriority(priority=p, **{"class": c}),
            st.sampled_from(list(pb.IOPrioClass.values())),
            st.integers(0, 7),
        ),
        "seccomp_policy": seccomp,
        "namespaces": st.lists(
            st.builds(
                pb.LinuxNamespace,
                type=removable(st.sampled_from(NAMESPACE_TYPES)),
                path=st.sampled_from(["", "/proc/1/ns/x"]),
            ),
            max_size=3,
        ),
        "sysctl": st.dictionaries(removable(names), values, max_size=3),
        "net_devices": st.dictionaries(
            removable(names),
            st.builds(pb.LinuxNetDevice, name=st.sampled_from(["", "eth1"])),
            max_size=2,
        ),
        "scheduler": st.builds(
            pb.LinuxScheduler,
            policy=st.sampled_from(list(pb.LinuxSchedulerPolicy.values())),
            nice=st.integers(-20, 19),
            priority=st.integers(0, 99),
            flags=st.lists(st.sampled_from(list(pb.LinuxSchedulerFlag.values())), max_size=2),
            runtime=u64,
            deadline=u64,
            period=u64,
        ),
        "rdt": st.tuples(
            st.booleans(),
            st.none() | names,
            st.none() | st.lists(st.just("L3:0=f"), max_size=2),
            st.none() | st.booleans(),
        ).map(_rdt),
        "memory_policy": st.builds(
            pb.LinuxMemoryPolicy,
            mode=st.sampled_from(list(pb.MpolMode.values())),
            nodes=st.sampled_from(["", "0", "0-3"]),
            flags=st.lists(st.sampled_from(list(pb.MpolFlag.values())), max_size=2),
        ),
    },
)

adjustments = st.builds(
    lambda top, lx: pb.ContainerAdjustment(linux=pb.LinuxContainerAdjustment(**lx), **top),
    st.fixed_dictionaries(
        {},
        optional={
            "annotations": st.dictionaries(removable(names), values, max_size=3),
            "mounts": st.lists(mounts, max_size=4),
            "env": st.lists(st.builds(pb.KeyValue, key=removable(names), value=values), max_size=3),
            "hooks": all_hooks,
            "rlimits": st.lists(
                st.builds(
                    pb.POSIXRlimit,
                    type=st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_CORE"]),
                    hard=u64,
                    soft=u64,
                ),
                max_size=2,
            ),
            "CDI_devices": st.lists(
                st.builds(pb.CDIDevice, name=st.just("vendor.com/dev=x")), max_size=1
            ),
            "args": st.lists(values, max_size=3),
        },
    ),
    linux_adjustments,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(GOOD), adjs=st.lists(adjustments, min_size=1, max_size=3))
def test_random_adjustments_keep_spec_valid(base: str, adjs: list[pb.ContainerAdjustment]) -> None:
    g = SpecGenerator(load_example(base), blockio_resolver=lambda c: {"weight": 100})
    for adj in adjs:
        g.adjust(adj)
        assert_valid_spec(g.spec)
    # whatever the generator produced, the runtime can describe it to plugins
    container_from_spec(g.spec, id="c", pod_sandbox_id="p", name="n")
