"""Merging plugin replies: conflicts, removals, what later plugins see, response shapes."""

import pytest

from nri.adaptation._owners import ConflictError
from nri.adaptation._result import (
    CreateResult,
    StopResult,
    UpdateDuringCreationError,
    UpdateResult,
    merge_synchronize_updates,
)
from nri.api import api_pb2 as pb

F = pb.Field.Value


def create_request(**container):
    container.setdefault("id", "ctr0")
    return pb.CreateContainerRequest(
        pod=pb.PodSandbox(id="pod0", name="pod"), container=pb.Container(**container)
    )


def reply(**adjust):
    return pb.CreateContainerResponse(adjust=pb.ContainerAdjustment(**adjust))


def linux(**kw):
    return reply(linux=pb.LinuxContainerAdjustment(**kw))


COMPOUND_CASES = [
    ("Annotations", "a", lambda: reply(annotations={"a": "1"})),
    ("Mounts", "/m", lambda: reply(mounts=[pb.Mount(destination="/m", source="/s")])),
    ("Env", "FOO", lambda: reply(env=[pb.KeyValue(key="FOO", value="x")])),
    ("Devices", "/dev/x", lambda: linux(devices=[pb.LinuxDevice(path="/dev/x", type="c")])),
    ("CdiDevices", "v.com/c=1", lambda: reply(CDI_devices=[pb.CDIDevice(name="v.com/c=1")])),
    ("Rlimits", "RLIMIT_NOFILE", lambda: reply(rlimits=[pb.POSIXRlimit(type="RLIMIT_NOFILE")])),
    (
        "HugepageLimits",
        "2MB",
        lambda: linux(
            resources=pb.LinuxResources(
                hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=1)]
            )
        ),
    ),
    (
        "CgroupsUnified",
        "memory.high",
        lambda: linux(resources=pb.LinuxResources(unified={"memory.high": "1"})),
    ),
    ("Namespace", "network", lambda: linux(namespaces=[pb.LinuxNamespace(type="network")])),
    ("Sysctl", "net.core.somaxconn", lambda: linux(sysctl={"net.core.somaxconn": "1"})),
    ("LinuxNetDevices", "eth1", lambda: linux(net_devices={"eth1": pb.LinuxNetDevice(name="n")})),
]

SIMPLE_CASES = [
    (
        "MemLimit",
        lambda: linux(
            resources=pb.LinuxResources(memory=pb.LinuxMemory(limit=pb.OptionalInt64(value=1)))
        ),
    ),
    ("CPUSetCPUs", lambda: linux(resources=pb.LinuxResources(cpu=pb.LinuxCPU(cpus="0-1")))),
    ("PidsLimit", lambda: linux(resources=pb.LinuxResources(pids=pb.LinuxPids(limit=5)))),
    ("CgroupsPath", lambda: linux(cgroups_path="/x")),
    ("OomScoreAdj", lambda: linux(oom_score_adj=pb.OptionalInt(value=0))),
    ("SeccompPolicy", lambda: linux(seccomp_policy=pb.LinuxSeccomp(default_action="A"))),
    ("LinuxSched", lambda: linux(scheduler=pb.LinuxScheduler(nice=1))),
    ("RdtClosID", lambda: linux(rdt=pb.LinuxRdt(clos_id=pb.OptionalString(value="c")))),
    ("Args", lambda: reply(args=["/bin/true"])),
]


@pytest.mark.parametrize(("field", "key", "make"), COMPOUND_CASES)
def test_compound_conflict(field, key, make):
    result = CreateResult(create_request())
    result.apply("30-logger", make())
    with pytest.raises(ConflictError) as info:
        result.apply("31-logger", make())
    assert str(info.value) == f'plugins "31-logger" and "30-logger" both tried to set {field} {key}'


@pytest.mark.parametrize(("field", "make"), SIMPLE_CASES)
def test_simple_conflict(field, make):
    result = CreateResult(create_request())
    result.apply("10-a", make())
    with pytest.raises(ConflictError) as info:
        result.apply("20-b", make())
    assert str(info.value) == f'plugins "20-b" and "10-a" both tried to set {field} '


def test_exact_upstream_env_text():
    result = CreateResult(create_request())
    result.apply("30-logger", reply(env=[pb.KeyValue(key="FOO", value="1")]))
    with pytest.raises(
        ConflictError, match='^plugins "31-logger" and "30-logger" both tried to set Env FOO$'
    ):
        result.apply("31-logger", reply(env=[pb.KeyValue(key="FOO", value="2")]))


def test_env_removal_then_reset_by_same_plugin_ok_other_conflicts():
    request = create_request(env=["FOO=orig", "KEEP=1"])
    result = CreateResult(request)
    result.apply("10-a", reply(env=[pb.KeyValue(key="FOO", value="a")]))
    result.apply("20-b", reply(env=[pb.KeyValue(key="-FOO")]))
    assert result.field_owners.owner("ctr0", F("Env"), "FOO") == "-20-b"
    assert list(request.container.env) == ["KEEP=1"]
    with pytest.raises(ConflictError, match='plugins "30-c" and "20-b" both tried to set Env FOO'):
        result.apply("30-c", reply(env=[pb.KeyValue(key="FOO", value="c")]))


def test_env_removal_then_reset_by_remover():
    request = create_request(env=["FOO=orig"])
    result = CreateResult(request)
    result.apply("10-a", reply(env=[pb.KeyValue(key="FOO", value="a")]))
    result.apply("20-b", reply(env=[pb.KeyValue(key="-FOO")]))
    result.apply("20-b", reply(env=[pb.KeyValue(key="FOO", value="b")]))
    assert list(request.container.env) == ["FOO=b"]
    assert [(kv.key, kv.value) for kv in result.response().adjust.env] == [("FOO", "b")]


def test_annotation_remove_and_set_in_one_reply():
    request = create_request(annotations={"k": "orig"})
    result = CreateResult(request)
    result.apply("10-a", reply(annotations={"k": "a"}))
    result.apply("20-b", reply(annotations={"-k": "", "k": "b"}))
    assert dict(result.response().adjust.annotations) == {"-k": "", "k": "b"}
    assert request.container.annotations["k"] == "b"
    assert result.field_owners.owner("ctr0", F("Annotations"), "k") == "20-b"


def test_mount_removal_passed_on_and_applied():
    request = create_request(mounts=[pb.Mount(destination="/a"), pb.Mount(destination="/b")])
    result = CreateResult(request)
    result.apply(
        "10-a",
        reply(mounts=[pb.Mount(destination="-/a"), pb.Mount(destination="/b", source="new")]),
    )
    assert [m.destination for m in request.container.mounts] == ["/b"]
    assert request.container.mounts[0].source == "new"
    assert [m.destination for m in result.response().adjust.mounts] == ["/b", "-/a"]


def test_later_plugins_see_earlier_adjustments():
    request = create_request(
        env=["A=1"], linux=pb.LinuxContainer(namespaces=[pb.LinuxNamespace(type="pid")])
    )
    result = CreateResult(request)
    result.apply(
        "10-a",
        reply(
            env=[pb.KeyValue(key="B", value="2")],
            annotations={"x": "y"},
            args=["/bin/sh"],
            rlimits=[pb.POSIXRlimit(type="RLIMIT_CORE", hard=1)],
            linux=pb.LinuxContainerAdjustment(
                devices=[pb.LinuxDevice(path="/dev/d")],
                resources=pb.LinuxResources(
                    memory=pb.LinuxMemory(limit=pb.OptionalInt64(value=42))
                ),
                namespaces=[
                    pb.LinuxNamespace(type="-pid"),
                    pb.LinuxNamespace(type="network", path="/n"),
                ],
                sysctl={"a.b": "1"},
            ),
        ),
    )
    c = request.container
    assert list(c.env) == ["A=1", "B=2"]
    assert c.annotations["x"] == "y"
    assert list(c.args) == ["/bin/sh"]
    assert c.rlimits[0].type == "RLIMIT_CORE"
    assert c.linux.devices[0].path == "/dev/d"
    assert c.linux.resources.memory.limit.value == 42
    assert [(n.type, n.path) for n in c.linux.namespaces] == [("network", "/n")]
    assert dict(c.linux.sysctl) == {"a.b": "1"}
    # the validation request keeps the original container
    original = result.validation_request([]).container
    assert list(original.env) == ["A=1"]
    assert original.linux.namespaces[0].type == "pid"


def test_hooks_accumulate_and_record_all_owners():
    request = create_request()
    result = CreateResult(request)
    hook = pb.Hook(path="/h")
    result.apply("10-a", reply(hooks=pb.Hooks(prestart=[hook])))
    result.apply("20-b", reply(hooks=pb.Hooks(prestart=[hook], poststop=[hook])))
    adjust = result.response().adjust
    assert len(adjust.hooks.prestart) == 2 and len(adjust.hooks.poststop) == 1
    assert len(request.container.hooks.prestart) == 2
    assert result.field_owners.owner("ctr0", F("OciHooks")) == "10-a,20-b"


def test_update_of_container_being_created_is_an_error():
    result = CreateResult(create_request())
    with pytest.raises(UpdateDuringCreationError) as info:
        result.apply(
            "10-a", pb.CreateContainerResponse(update=[pb.ContainerUpdate(container_id="ctr0")])
        )
    assert str(info.value) == 'plugin "10-a" asked update of "ctr0" during creation'
    assert isinstance(info.value, ValueError)


def test_create_response_shape_without_any_plugin():
    response = CreateResult(create_request()).response()
    expected = pb.CreateContainerResponse()
    expected.adjust.hooks.SetInParent()
    expected.adjust.linux.resources.memory.SetInParent()
    expected.adjust.linux.resources.cpu.SetInParent()
    assert response.SerializeToString() == expected.SerializeToString()
    assert not response.adjust.linux.HasField("rdt")


def test_create_response_gets_rdt_after_any_linux_adjustment():
    result = CreateResult(create_request())
    result.apply("10-a", reply(annotations={"a": "b"}))
    assert not result.response().adjust.linux.HasField("rdt")
    result.apply("20-b", linux())
    adjust = result.response().adjust
    assert adjust.linux.HasField("rdt") and adjust.linux.rdt == pb.LinuxRdt()


def test_rdt_remove_then_set():
    result = CreateResult(create_request())
    result.apply("10-a", linux(rdt=pb.LinuxRdt(remove=True)))
    assert result.response().adjust.linux.rdt.remove
    result.apply("10-a", linux(rdt=pb.LinuxRdt(clos_id=pb.OptionalString(value="gold"))))
    rdt = result.response().adjust.linux.rdt
    assert not rdt.remove and rdt.clos_id.value == "gold"
    with pytest.raises(ConflictError, match="RdtSchemata"):
        result.apply(
            "20-b", linux(rdt=pb.LinuxRdt(schemata=pb.OptionalRepeatedString(value=["L3:0=f"])))
        )


def test_updates_of_other_containers_merge_with_ownership_and_evictions_collect():
    result = CreateResult(create_request())
    u1 = pb.ContainerUpdate(container_id="other")
    u1.linux.resources.cpu.shares.value = 100
    u2 = pb.ContainerUpdate(container_id="other")
    u2.linux.resources.memory.limit.value = 200
    result.apply(
        "10-a",
        pb.CreateContainerResponse(
            update=[u1], evict=[pb.ContainerEviction(container_id="x", reason="r")]
        ),
    )
    result.apply("20-b", pb.CreateContainerResponse(update=[u2]))
    response = result.response()
    assert len(response.update) == 1
    res = response.update[0].linux.resources
    assert res.cpu.shares.value == 100 and res.memory.limit.value == 200
    assert [(e.container_id, e.reason) for e in response.evict] == [("x", "r")]
    with pytest.raises(
        ConflictError, match='plugins "30-c" and "10-a" both tried to set CPUShares '
    ):
        result.apply("30-c", pb.CreateContainerResponse(update=[u1]))


def test_owners_and_validation_request_content():
    request = create_request()
    result = CreateResult(request)
    result.apply("10-a", reply(env=[pb.KeyValue(key="E", value="1")]))
    result.apply("20-b", linux(cgroups_path="/cg"))
    plugins = [pb.PluginInstance(name="a", index="10"), pb.PluginInstance(name="b", index="20")]
    msg = result.validation_request(plugins)
    owners = msg.owners.owners["ctr0"]
    assert dict(owners.compound[F("Env")].owners) == {"E": "10-a"}
    assert dict(owners.simple) == {F("CgroupsPath"): "20-b"}
    assert msg.owners == result.owners
    assert msg.pod.id == "pod0" and list(msg.plugins) == plugins
    assert msg.adjust == result.response().adjust


def update_request(resources=None):
    return pb.UpdateContainerRequest(
        pod=pb.PodSandbox(id="pod0"),
        container=pb.Container(id="ctr0"),
        linux_resources=resources or pb.LinuxResources(),
    )


def cpu_update(cid, shares, ignore=False):
    u = pb.ContainerUpdate(container_id=cid, ignore_failure=ignore)
    u.linux.resources.cpu.shares.value = shares
    return u


def test_update_result_trailing_element_when_untouched():
    result = UpdateResult(update_request())
    result.apply("10-a", pb.UpdateContainerResponse(update=[cpu_update("other", 5)]))
    response = result.response()
    assert [u.container_id for u in response.update] == ["other", ""]
    assert response.update[1] == pb.ContainerUpdate()
    # a Go nil element and a default message serialize alike: tag + zero length
    assert (
        pb.UpdateContainerResponse(update=[pb.ContainerUpdate()]).SerializeToString() == b"\n\x00"
    )


def test_update_result_requested_container_goes_last_and_is_seen_by_later_plugins():
    request = update_request(pb.LinuxResources(pids=pb.LinuxPids(limit=64)))
    result = UpdateResult(request)
    result.apply(
        "10-a", pb.UpdateContainerResponse(update=[cpu_update("ctr0", 256), cpu_update("x", 1)])
    )
    assert request.linux_resources.cpu.shares.value == 256
    response = result.response()
    assert [u.container_id for u in response.update] == ["x", "ctr0"]
    assert response.update[1].linux.resources.pids.limit == 64


def test_ignored_failed_update_leaves_no_claims():
    result = UpdateResult(update_request())
    result.apply("00-first", pb.UpdateContainerResponse(update=[cpu_update("ctr0", 256)]))
    rejected = cpu_update("ctr0", 512, ignore=True)
    rejected.linux.resources.memory.limit.value = 1024
    result.apply("10-ignored", pb.UpdateContainerResponse(update=[rejected]))
    last = pb.ContainerUpdate(container_id="ctr0")
    last.linux.resources.memory.limit.value = 4096
    result.apply("20-last", pb.UpdateContainerResponse(update=[last]))
    res = result.response().update[-1].linux.resources
    assert res.cpu.shares.value == 256 and res.memory.limit.value == 4096
    with pytest.raises(ConflictError, match='"20-last" and "00-first" both tried to set CPUShares'):
        result.apply("20-last", pb.UpdateContainerResponse(update=[cpu_update("ctr0", 1)]))


def test_stop_result_collects_updates_in_order():
    result = StopResult(pb.StopContainerRequest(container=pb.Container(id="ctr0")))
    result.apply(
        "10-a", pb.StopContainerResponse(update=[cpu_update("b", 1), cpu_update("ctr0", 2)])
    )
    assert [u.container_id for u in result.response().update] == ["b", "ctr0"]


def test_synchronize_updates_concatenate():
    merged = merge_synchronize_updates([[cpu_update("a", 1)], [cpu_update("a", 2)]])
    assert [u.linux.resources.cpu.shares.value for u in merged] == [1, 2]


def initialized(container):
    """``container`` with the empty structures CreateResult adds, set field by field."""
    expected = pb.Container()
    expected.CopyFrom(container)
    expected.hooks.SetInParent()
    expected.linux.resources.memory.SetInParent()
    expected.linux.resources.cpu.SetInParent()
    return expected


def empty_adjustment_reply():
    response = pb.CreateContainerResponse()
    response.adjust.SetInParent()
    return response


@pytest.mark.parametrize(
    "replies",
    [
        [],
        [None],
        [pb.CreateContainerResponse()],
        [empty_adjustment_reply()],
        [empty_adjustment_reply(), pb.CreateContainerResponse(), empty_adjustment_reply()],
    ],
    ids=["no-plugin", "none", "no-adjust", "empty-adjust", "three-empty"],
)
def test_empty_replies_change_nothing_and_answer_the_bare_shape(replies):
    request = create_request(
        env=["A=1"],
        annotations={"k": "v"},
        linux=pb.LinuxContainer(
            resources=pb.LinuxResources(memory=pb.LinuxMemory(limit=pb.OptionalInt64(value=7)))
        ),
    )
    before = initialized(request.container)
    result = CreateResult(request)
    for i, response in enumerate(replies):
        result.apply(f"{10 + i}-p", response)
    assert request.container.SerializeToString() == before.SerializeToString()
    expected = CreateResult(create_request()).response()
    assert result.response().SerializeToString() == expected.SerializeToString()
    validate = result.validation_request([])
    assert validate.container.SerializeToString() == before.SerializeToString()
    assert validate.adjust.SerializeToString() == expected.adjust.SerializeToString()
    assert validate.owners == pb.OwningPlugins()


def test_container_initialization_keeps_what_is_there():
    container = pb.Container(
        id="ctr0",
        hooks=pb.Hooks(prestart=[pb.Hook(path="/p")]),
        linux=pb.LinuxContainer(
            cgroups_path="/cg",
            resources=pb.LinuxResources(cpu=pb.LinuxCPU(cpus="0-1")),
        ),
    )
    request = pb.CreateContainerRequest(container=container)
    CreateResult(request)
    assert request.container.SerializeToString() == initialized(container).SerializeToString()


def test_original_is_the_container_before_the_first_change():
    request = create_request(env=["A=1"])
    result = CreateResult(request)
    result.apply("10-a", empty_adjustment_reply())
    result.apply("20-b", reply(env=[pb.KeyValue(key="B", value="2")]))
    result.apply("30-c", reply(env=[pb.KeyValue(key="C", value="3")]))
    assert list(request.container.env) == ["A=1", "B=2", "C=3"]
    assert list(result.validation_request([]).container.env) == ["A=1"]


def test_without_original_same_merge_and_no_validation_after_a_change():
    replies = [
        reply(env=[pb.KeyValue(key="B", value="2")], annotations={"x": "y"}),
        linux(cgroups_path="/cg"),
    ]
    kept, dropped = create_request(env=["A=1"]), create_request(env=["A=1"])
    with_original = CreateResult(kept)
    without = CreateResult(dropped, keep_original=False)
    for i, response in enumerate(replies):
        with_original.apply(f"{10 + i}-p", response)
        without.apply(f"{10 + i}-p", response)
    assert dropped.SerializeToString() == kept.SerializeToString()
    assert without.response().SerializeToString() == with_original.response().SerializeToString()
    assert without.owners == with_original.owners
    with pytest.raises(ValueError, match="keep_original=False"):
        without.validation_request([])


def test_without_original_validation_while_nothing_changed():
    request = create_request(env=["A=1"])
    result = CreateResult(request, keep_original=False)
    result.apply("10-a", empty_adjustment_reply())
    expected = CreateResult(create_request(env=["A=1"])).validation_request([])
    assert result.validation_request([]).SerializeToString() == expected.SerializeToString()
