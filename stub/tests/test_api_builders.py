"""Adjustment/Update builders of nri.api: exact wire results, markers and round trips."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nri import api
from nri.api import pb

A = pb.ContainerAdjustment
L = pb.LinuxContainerAdjustment
R = pb.LinuxResources


def wire(msg: Any) -> bytes:
    return bytes(msg.SerializeToString(deterministic=True))


def lin(**kw: Any) -> pb.ContainerAdjustment:
    return A(linux=L(**kw))


def res(**kw: Any) -> pb.ContainerAdjustment:
    return lin(resources=R(**kw))


def mem(**kw: Any) -> pb.ContainerAdjustment:
    return res(memory=pb.LinuxMemory(**kw))


def cpu(**kw: Any) -> pb.ContainerAdjustment:
    return res(cpu=pb.LinuxCPU(**kw))


def rdt(**kw: Any) -> pb.ContainerAdjustment:
    return lin(rdt=pb.LinuxRdt(**kw))


I64, U64 = pb.OptionalInt64, pb.OptionalUInt64
DEV = api.make_linux_device("/dev/x", "c", 10, 200, file_mode=0o660, uid=0, gid=5)
HOOK = api.make_hook("/bin/hook", ["hook", "a"], ["K=V"], timeout=3)
NS = pb.LinuxNamespace(type="network", path="/proc/1/ns/net")
IOPRIO = pb.LinuxIOPriority(priority=5, **{"class": pb.IOPRIO_CLASS_RT})
SECCOMP = pb.LinuxSeccomp(
    default_action="SCMP_ACT_ALLOW",
    syscalls=[pb.LinuxSyscall(names=["sched_getaffinity"], action="SCMP_ACT_NOTIFY")],
)
SCHED = pb.LinuxScheduler(policy=pb.SCHED_FIFO, priority=10, flags=[pb.SCHED_FLAG_RESET_ON_FORK])

ADJUSTMENT_CASES: list[tuple[str, Callable[[api.Adjustment], object], pb.ContainerAdjustment]] = [
    ("annotation", lambda a: a.add_annotation("k", "v"), A(annotations={"k": "v"})),
    ("rm annotation", lambda a: a.remove_annotation("k"), A(annotations={"-k": ""})),
    (
        "mount",
        lambda a: a.add_mount(api.make_mount("/dst", "/src", "bind", ["rbind", "ro"])),
        A(
            mounts=[
                pb.Mount(destination="/dst", source="/src", type="bind", options=["rbind", "ro"])
            ]
        ),
    ),
    ("rm mount", lambda a: a.remove_mount("/mnt/x"), A(mounts=[pb.Mount(destination="-/mnt/x")])),
    ("env", lambda a: a.add_env("A", "1"), A(env=[pb.KeyValue(key="A", value="1")])),
    ("rm env", lambda a: a.remove_env("A"), A(env=[pb.KeyValue(key="-A")])),
    ("set args", lambda a: a.set_args(["echo", "hi"]), A(args=["echo", "hi"])),
    ("update args", lambda a: a.update_args(["echo", "hi"]), A(args=["", "echo", "hi"])),
    (
        "hooks",
        lambda a: a.add_hooks(pb.Hooks(prestart=[HOOK], poststop=[HOOK])),
        A(hooks=pb.Hooks(prestart=[HOOK], poststop=[HOOK])),
    ),
    ("empty hooks", lambda a: a.add_hooks(pb.Hooks()), A(hooks=pb.Hooks())),
    (
        "rlimit",
        lambda a: a.add_rlimit("RLIMIT_NOFILE", 456, 123),
        A(rlimits=[pb.POSIXRlimit(type="RLIMIT_NOFILE", hard=456, soft=123)]),
    ),
    ("device", lambda a: a.add_device(DEV), lin(devices=[DEV])),
    (
        "rm device",
        lambda a: a.remove_device("/dev/x"),
        lin(devices=[pb.LinuxDevice(path="-/dev/x")]),
    ),
    (
        "cdi",
        lambda a: a.add_cdi_device("vendor.com/dev=0"),
        A(CDI_devices=[pb.CDIDevice(name="vendor.com/dev=0")]),
    ),
    (
        "cdi msg",
        lambda a: a.add_cdi_device(pb.CDIDevice(name="v.com/d=1")),
        A(CDI_devices=[pb.CDIDevice(name="v.com/d=1")]),
    ),
    ("namespace", lambda a: a.add_or_replace_namespace(NS), lin(namespaces=[NS])),
    (
        "rm namespace",
        lambda a: a.remove_namespace(NS),
        lin(namespaces=[pb.LinuxNamespace(type="-network")]),
    ),
    (
        "rm ns str",
        lambda a: a.remove_namespace("ipc"),
        lin(namespaces=[pb.LinuxNamespace(type="-ipc")]),
    ),
    (
        "memory policy",
        lambda a: a.set_linux_memory_policy(pb.MPOL_INTERLEAVE, "0,1", pb.MPOL_F_STATIC_NODES),
        lin(
            memory_policy=pb.LinuxMemoryPolicy(
                mode=pb.MPOL_INTERLEAVE, nodes="0,1", flags=[pb.MPOL_F_STATIC_NODES]
            )
        ),
    ),
    ("mem limit", lambda a: a.set_linux_memory_limit(1234000), mem(limit=I64(value=1234000))),
    ("mem limit 0", lambda a: a.set_linux_memory_limit(0), mem(limit=I64(value=0))),
    (
        "mem reservation",
        lambda a: a.set_linux_memory_reservation(4000),
        mem(reservation=I64(value=4000)),
    ),
    ("mem swap", lambda a: a.set_linux_memory_swap(-1), mem(swap=I64(value=-1))),
    ("mem kernel", lambda a: a.set_linux_memory_kernel(30000), mem(kernel=I64(value=30000))),
    (
        "mem kernel tcp",
        lambda a: a.set_linux_memory_kernel_tcp(2000),
        mem(kernel_tcp=I64(value=2000)),
    ),
    ("mem swappiness", lambda a: a.set_linux_memory_swappiness(60), mem(swappiness=U64(value=60))),
    (
        "mem oom",
        lambda a: a.set_linux_memory_disable_oom_killer(),
        mem(disable_oom_killer=pb.OptionalBool(value=True)),
    ),
    (
        "mem hierarchy",
        lambda a: a.set_linux_memory_use_hierarchy(),
        mem(use_hierarchy=pb.OptionalBool(value=True)),
    ),
    ("cpu shares", lambda a: a.set_linux_cpu_shares(123), cpu(shares=U64(value=123))),
    ("cpu quota", lambda a: a.set_linux_cpu_quota(-1), cpu(quota=I64(value=-1))),
    ("cpu period", lambda a: a.set_linux_cpu_period(789), cpu(period=U64(value=789))),
    (
        "cpu rt runtime",
        lambda a: a.set_linux_cpu_realtime_runtime(321),
        cpu(realtime_runtime=I64(value=321)),
    ),
    (
        "cpu rt period",
        lambda a: a.set_linux_cpu_realtime_period(654),
        cpu(realtime_period=U64(value=654)),
    ),
    ("cpuset cpus", lambda a: a.set_linux_cpuset_cpus("0-1"), cpu(cpus="0-1")),
    ("cpuset empty", lambda a: a.set_linux_cpuset_cpus(""), cpu()),
    ("cpuset mems", lambda a: a.set_linux_cpuset_mems("2-3"), cpu(mems="2-3")),
    ("pids", lambda a: a.set_linux_pids_limit(1000), res(pids=pb.LinuxPids(limit=1000))),
    ("pids alias", lambda a: a.set_linux_pid_limits(0), res(pids=pb.LinuxPids())),
    (
        "hugepages",
        lambda a: a.add_linux_hugepage_limit("1M", 4096).add_linux_hugepage_limit("4M", 1024),
        res(
            hugepage_limits=[
                pb.HugepageLimit(page_size="1M", limit=4096),
                pb.HugepageLimit(page_size="4M", limit=1024),
            ]
        ),
    ),
    (
        "blockio",
        lambda a: a.set_linux_blockio_class("gold"),
        res(blockio_class=pb.OptionalString(value="gold")),
    ),
    ("rdt class", lambda a: a.set_linux_rdt_class(""), res(rdt_class=pb.OptionalString())),
    (
        "unified",
        lambda a: a.add_linux_unified("memory.high", "1M"),
        res(unified={"memory.high": "1M"}),
    ),
    ("cgroups path", lambda a: a.set_linux_cgroups_path("/x"), lin(cgroups_path="/x")),
    (
        "oom score",
        lambda a: a.set_linux_oom_score_adj(0),
        lin(oom_score_adj=pb.OptionalInt(value=0)),
    ),
    ("oom score none", lambda a: a.set_linux_oom_score_adj(None), lin()),
    ("ioprio", lambda a: a.set_linux_io_priority(IOPRIO), lin(io_priority=IOPRIO)),
    ("ioprio none", lambda a: a.set_linux_io_priority(None), lin()),
    ("seccomp", lambda a: a.set_linux_seccomp_policy(SECCOMP), lin(seccomp_policy=SECCOMP)),
    (
        "sysctl",
        lambda a: a.set_linux_sysctl("net.core.somaxconn", "256"),
        lin(sysctl={"net.core.somaxconn": "256"}),
    ),
    ("rm sysctl", lambda a: a.remove_linux_sysctl("k"), lin(sysctl={"-k": ""})),
    (
        "net device",
        lambda a: a.add_linux_net_device("hostIf", "containerIf"),
        lin(net_devices={"hostIf": pb.LinuxNetDevice(name="containerIf")}),
    ),
    (
        "rm net device",
        lambda a: a.remove_linux_net_device("hostIf"),
        lin(net_devices={"-hostIf": pb.LinuxNetDevice()}),
    ),
    ("scheduler", lambda a: a.set_linux_scheduler(SCHED), lin(scheduler=SCHED)),
    (
        "rdt closid",
        lambda a: a.set_linux_rdt_clos_id("c1"),
        rdt(clos_id=pb.OptionalString(value="c1")),
    ),
    (
        "rdt schemata",
        lambda a: a.set_linux_rdt_schemata(["L3:0=ff", "MB:0=50"]),
        rdt(schemata=pb.OptionalRepeatedString(value=["L3:0=ff", "MB:0=50"])),
    ),
    (
        "rdt monitoring",
        lambda a: a.set_linux_rdt_enable_monitoring(False),
        rdt(enable_monitoring=pb.OptionalBool(value=False)),
    ),
    ("rdt remove", lambda a: a.remove_linux_rdt(), rdt(remove=True)),
]


@pytest.mark.parametrize(
    ("call", "want"), [c[1:] for c in ADJUSTMENT_CASES], ids=[c[0] for c in ADJUSTMENT_CASES]
)
def test_adjustment_setter(
    call: Callable[[api.Adjustment], object], want: pb.ContainerAdjustment
) -> None:
    adj = api.Adjustment()
    assert call(adj) is adj
    assert adj.message == want
    assert wire(adj.message) == wire(want)


def test_every_adjustment_method_is_covered() -> None:
    public = {n for n in dir(api.Adjustment) if not n.startswith("_") and n != "message"}
    used = {name for c in ADJUSTMENT_CASES for name in c[1].__code__.co_names}
    assert public <= used, public - used


UPDATE_CASES: list[tuple[Callable[[api.Update], object], pb.LinuxResources]] = [
    (lambda u: u.set_linux_memory_limit(5), R(memory=pb.LinuxMemory(limit=I64(value=5)))),
    (
        lambda u: u.set_linux_memory_reservation(6),
        R(memory=pb.LinuxMemory(reservation=I64(value=6))),
    ),
    (lambda u: u.set_linux_memory_swap(7), R(memory=pb.LinuxMemory(swap=I64(value=7)))),
    (lambda u: u.set_linux_memory_kernel(8), R(memory=pb.LinuxMemory(kernel=I64(value=8)))),
    (lambda u: u.set_linux_memory_kernel_tcp(9), R(memory=pb.LinuxMemory(kernel_tcp=I64(value=9)))),
    (lambda u: u.set_linux_memory_swappiness(1), R(memory=pb.LinuxMemory(swappiness=U64(value=1)))),
    (
        lambda u: u.set_linux_memory_disable_oom_killer(),
        R(memory=pb.LinuxMemory(disable_oom_killer=pb.OptionalBool(value=True))),
    ),
    (
        lambda u: u.set_linux_memory_use_hierarchy(),
        R(memory=pb.LinuxMemory(use_hierarchy=pb.OptionalBool(value=True))),
    ),
    (lambda u: u.set_linux_cpu_shares(2), R(cpu=pb.LinuxCPU(shares=U64(value=2)))),
    (lambda u: u.set_linux_cpu_quota(3), R(cpu=pb.LinuxCPU(quota=I64(value=3)))),
    (lambda u: u.set_linux_cpu_period(4), R(cpu=pb.LinuxCPU(period=U64(value=4)))),
    (
        lambda u: u.set_linux_cpu_realtime_runtime(5),
        R(cpu=pb.LinuxCPU(realtime_runtime=I64(value=5))),
    ),
    (
        lambda u: u.set_linux_cpu_realtime_period(6),
        R(cpu=pb.LinuxCPU(realtime_period=U64(value=6))),
    ),
    (lambda u: u.set_linux_cpuset_cpus("1"), R(cpu=pb.LinuxCPU(cpus="1"))),
    (lambda u: u.set_linux_cpuset_mems("0"), R(cpu=pb.LinuxCPU(mems="0"))),
    (lambda u: u.set_linux_pids_limit(10), R(pids=pb.LinuxPids(limit=10))),
    (
        lambda u: u.add_linux_hugepage_limit("2M", 1),
        R(hugepage_limits=[pb.HugepageLimit(page_size="2M", limit=1)]),
    ),
    (lambda u: u.set_linux_blockio_class("b"), R(blockio_class=pb.OptionalString(value="b"))),
    (lambda u: u.set_linux_rdt_class("r"), R(rdt_class=pb.OptionalString(value="r"))),
    (lambda u: u.add_linux_unified("k", "v"), R(unified={"k": "v"})),
]


@pytest.mark.parametrize(("call", "resources"), UPDATE_CASES)
def test_update_setter(call: Callable[[api.Update], object], resources: pb.LinuxResources) -> None:
    upd = api.Update("ctr1")
    assert call(upd) is upd
    want = pb.ContainerUpdate(
        container_id="ctr1", linux=pb.LinuxContainerUpdate(resources=resources)
    )
    assert upd.message == want
    assert wire(upd.message) == wire(want)
    # the same setter on an Adjustment lands in linux.resources
    adj = api.Adjustment()
    call(adj)  # type: ignore[arg-type]
    assert wire(adj.message) == wire(A(linux=L(resources=resources)))


def test_update_flags_and_wrapping() -> None:
    upd = api.Update("c", ignore_failure=True)
    assert upd.message == pb.ContainerUpdate(container_id="c", ignore_failure=True)
    assert upd.set_ignore_failure(False).message.ignore_failure is False
    assert api.Update().set_container_id("x").set_ignore_failure().message == pb.ContainerUpdate(
        container_id="x", ignore_failure=True
    )
    existing = pb.ContainerUpdate(container_id="y")
    wrapped = api.Update(existing)
    assert wrapped.message is existing and wrapped.container_id == "y"
    wrapped.set_linux_cpu_shares(1)
    assert existing.linux.resources.cpu.shares.value == 1
    with pytest.raises(TypeError):
        api.Update(5)  # type: ignore[arg-type]


def test_adjustment_wraps_in_place() -> None:
    msg = pb.ContainerAdjustment(annotations={"a": "1"})
    adj = api.Adjustment(msg)
    assert adj.message is msg
    adj.add_env("X", "y").remove_annotation("a")
    assert msg == A(annotations={"a": "1", "-a": ""}, env=[pb.KeyValue(key="X", value="y")])
    with pytest.raises(TypeError):
        api.Adjustment(pb.ContainerUpdate())  # type: ignore[arg-type]


def test_chaining_builds_one_message() -> None:
    adj = (
        api.Adjustment()
        .remove_env("FOO")
        .add_env("FOO", "bar")
        .set_linux_memory_limit(1 << 30)
        .set_linux_cpu_shares(512)
        .remove_linux_rdt()
        .set_linux_rdt_clos_id("gold")
    )
    want = A(
        env=[pb.KeyValue(key="-FOO"), pb.KeyValue(key="FOO", value="bar")],
        linux=L(
            resources=R(
                memory=pb.LinuxMemory(limit=I64(value=1 << 30)),
                cpu=pb.LinuxCPU(shares=U64(value=512)),
            ),
            rdt=pb.LinuxRdt(remove=True, clos_id=pb.OptionalString(value="gold")),
        ),
    )
    assert wire(adj.message) == wire(want)


def test_args_replace_previous() -> None:
    adj = api.Adjustment().set_args(["a"]).update_args(["b"])
    assert list(adj.message.args) == ["", "b"]
    assert list(adj.set_args(()).message.args) == []
    with pytest.raises(TypeError, match="single str"):
        adj.set_args("echo")


def test_add_hooks_appends() -> None:
    h1, h2 = api.make_hook("/a"), api.make_hook("/b")
    adj = (
        api.Adjustment()
        .add_hooks(pb.Hooks(prestart=[h1]))
        .add_hooks(pb.Hooks(prestart=[h2], poststart=[h1]))
    )
    assert adj.message.hooks == pb.Hooks(prestart=[h1, h2], poststart=[h1])


def test_range_errors() -> None:
    adj = api.Adjustment()
    with pytest.raises(ValueError, match="uint64"):
        adj.set_linux_cpu_shares(-1)
    with pytest.raises(ValueError, match="int64"):
        adj.set_linux_memory_limit(1 << 63)
    with pytest.raises(TypeError):
        adj.set_linux_rdt_enable_monitoring(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        adj.set_linux_rdt_schemata("L3:0=f")


def test_removal_markers() -> None:
    assert api.mark_for_removal("key") == "-key"
    assert api.is_marked_for_removal("-key") == ("key", True)
    assert api.is_marked_for_removal("key") == ("key", False)
    assert api.is_marked_for_removal("") == ("", False)
    assert api.is_marked_for_removal("-") == ("", True)
    assert api.clear_removal_marker("-x") == "x"
    assert api.clear_removal_marker("x") == "x"


def test_constructors() -> None:
    assert api.eviction("c1", "oom") == pb.ContainerEviction(container_id="c1", reason="oom")
    assert api.make_rlimit("RLIMIT_CORE", 2, 1) == pb.POSIXRlimit(
        type="RLIMIT_CORE", hard=2, soft=1
    )
    dev = api.make_linux_device("/dev/null", "c", 1, 3)
    assert not dev.HasField("file_mode") and not dev.HasField("uid")
    assert DEV.file_mode.value == 0o660 and DEV.HasField("uid") and DEV.uid.value == 0
    assert api.make_hook("/x") == pb.Hook(path="/x")
    assert HOOK.timeout == pb.OptionalInt(value=3)
    with pytest.raises(ValueError, match="uint32"):
        api.make_linux_device("/dev/x", "c", 1, 1, uid=-1)


def test_hooks_helpers() -> None:
    assert not api.has_hooks(None)
    assert not api.has_hooks(pb.Hooks())
    hooks = pb.Hooks(poststop=[api.make_hook("/p")])
    assert api.has_hooks(hooks)
    merged = api.append_hooks(pb.Hooks(), hooks)
    assert merged == hooks
    assert api.append_hooks(merged, None) is merged
    api.append_hooks(merged, merged)
    assert len(merged.poststop) == 2
    assert tuple(f.name for f in pb.Hooks.DESCRIPTOR.fields) == api.HOOK_KINDS


# --- property: any sequence of builder calls yields a message that round-trips ---

_text = st.text(max_size=8)
_i64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
_u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
_strs = st.lists(_text, max_size=3)

_OPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "add_annotation": st.tuples(_text, _text),
    "remove_annotation": st.tuples(_text),
    "remove_mount": st.tuples(_text),
    "add_mount": st.builds(lambda d, s, o: (api.make_mount(d, s, "bind", o),), _text, _text, _strs),
    "add_env": st.tuples(_text, _text),
    "remove_env": st.tuples(_text),
    "set_args": st.tuples(_strs),
    "update_args": st.tuples(_strs),
    "add_hooks": st.builds(lambda p: (pb.Hooks(prestart=[api.make_hook(p)]),), _text),
    "add_rlimit": st.tuples(_text, _u64, _u64),
    "add_device": st.builds(lambda p: (api.make_linux_device(p, "c", 1, 2),), _text),
    "remove_device": st.tuples(_text),
    "add_cdi_device": st.tuples(_text),
    "add_or_replace_namespace": st.builds(lambda t: (pb.LinuxNamespace(type=t),), _text),
    "remove_namespace": st.tuples(_text),
    "set_linux_memory_limit": st.tuples(_i64),
    "set_linux_memory_swappiness": st.tuples(_u64),
    "set_linux_memory_disable_oom_killer": st.just(()),
    "set_linux_cpu_shares": st.tuples(_u64),
    "set_linux_cpu_quota": st.tuples(_i64),
    "set_linux_cpuset_cpus": st.tuples(_text),
    "set_linux_pids_limit": st.tuples(_i64),
    "add_linux_hugepage_limit": st.tuples(_text, _u64),
    "set_linux_blockio_class": st.tuples(_text),
    "add_linux_unified": st.tuples(_text, _text),
    "set_linux_cgroups_path": st.tuples(_text),
    "set_linux_oom_score_adj": st.tuples(st.none() | _i64),
    "set_linux_sysctl": st.tuples(_text, _text),
    "remove_linux_sysctl": st.tuples(_text),
    "add_linux_net_device": st.tuples(_text, _text),
    "remove_linux_net_device": st.tuples(_text),
    "set_linux_rdt_clos_id": st.tuples(_text),
    "set_linux_rdt_schemata": st.tuples(_strs),
    "set_linux_rdt_enable_monitoring": st.tuples(st.booleans()),
    "remove_linux_rdt": st.just(()),
    "set_linux_memory_policy": st.tuples(st.sampled_from([0, 1, 2, 3]), _text),
}

_calls = st.lists(st.one_of([st.tuples(st.just(n), s) for n, s in _OPS.items()]), max_size=12)


@settings(max_examples=150, deadline=None)
@given(_calls)
def test_random_builder_sequences_round_trip(calls: list[tuple[str, tuple[Any, ...]]]) -> None:
    adj = api.Adjustment()
    for name, args in calls:
        assert getattr(adj, name)(*args) is adj
    data = adj.message.SerializeToString()
    back = pb.ContainerAdjustment.FromString(data)
    assert back == adj.message
    assert wire(back) == wire(adj.message)
    assert api.Adjustment(back).message is back


_UPDATE_OPS = {n: s for n, s in _OPS.items() if hasattr(api.Update, n)}


@settings(max_examples=100, deadline=None)
@given(
    _text,
    st.lists(st.one_of([st.tuples(st.just(n), s) for n, s in _UPDATE_OPS.items()]), max_size=10),
)
def test_random_update_sequences_round_trip(
    cid: str, calls: list[tuple[str, tuple[Any, ...]]]
) -> None:
    upd = api.Update(cid)
    for name, args in calls:
        getattr(upd, name)(*args)
    back = pb.ContainerUpdate.FromString(upd.message.SerializeToString())
    assert back == upd.message and back.container_id == cid
