"""The adaptation with real plugins: registration, event flow, ordering, isolation, updates."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _adaptation_helpers import (
    FakeRuntime,
    RawPlugin,
    config_for,
    create_request,
    env_of,
    plugin_process,
    read_lines,
    stub_plugin,
)

from nri.adaptation import (
    ConflictError,
    DefaultValidatorConfig,
    PluginError,
    PluginInfo,
    ValidationError,
)
from nri.api import VALID_EVENTS, Adjustment, EventMask, Update
from nri.api import api_pb2 as pb
from nri.stub import Plugin


def ctr(cid: str = "c1") -> pb.Container:
    return pb.Container(id=cid, pod_sandbox_id="pod0", name=cid)


POD = pb.PodSandbox(id="pod0", name="pod")


@pytest.mark.timeout(30)
async def test_external_plugin_full_event_flow(tmp_path: Path) -> None:
    runtime = FakeRuntime(pods=2, containers=3)
    config = config_for(tmp_path)
    record = tmp_path / "record"
    async with (
        runtime.adaptation(config) as nri,
        plugin_process(config.socket_path, "10", "rec", f"record: {record}\n", tmp_path) as proc,
    ):
        infos = await nri.wait_for_plugins(names=["10-rec"])
        assert infos == [PluginInfo("rec", "10", EventMask(0x1FFF), proc.pid, True)]
        await nri.run_pod_sandbox(pb.RunPodSandboxRequest(pod=POD))
        await nri.update_pod_sandbox(pb.UpdatePodSandboxRequest(pod=POD))
        await nri.post_update_pod_sandbox(pb.PostUpdatePodSandboxRequest(pod=POD))
        created = await nri.create_container(create_request("c1"))
        assert env_of(created) == {"ADDED_BY_10": "10-rec"}
        await nri.post_create_container(pb.PostCreateContainerRequest(pod=POD, container=ctr()))
        await nri.start_container(pb.StartContainerRequest(pod=POD, container=ctr()))
        await nri.post_start_container(pb.PostStartContainerRequest(pod=POD, container=ctr()))
        updated = await nri.update_container(pb.UpdateContainerRequest(pod=POD, container=ctr()))
        assert [u.container_id for u in updated.update if u.container_id] == ["c1"]
        assert any(u.linux.resources.cpu.shares.value == 256 for u in updated.update)
        await nri.post_update_container(pb.PostUpdateContainerRequest(pod=POD, container=ctr()))
        stopped = await nri.stop_container(pb.StopContainerRequest(pod=POD, container=ctr()))
        assert [u.container_id for u in stopped.update] == ["other"]
        await nri.remove_container(pb.RemoveContainerRequest(pod=POD, container=ctr()))
        await nri.stop_pod_sandbox(pb.StopPodSandboxRequest(pod=POD))
        await nri.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod=POD))
    assert read_lines(record) == [
        f"Configure record: {record}\\n",
        "Synchronize 2 3",
        "RunPodSandbox pod0",
        "UpdatePodSandbox pod0",
        "PostUpdatePodSandbox pod0",
        "CreateContainer c1",
        "PostCreateContainer c1",
        "StartContainer c1",
        "PostStartContainer c1",
        "UpdateContainer c1",
        "PostUpdateContainer c1",
        "StopContainer c1",
        "RemoveContainer c1",
        "StopPodSandbox pod0",
        "RemovePodSandbox pod0",
    ]


class Tagger(Plugin):
    """Appends its name to a shared list on CreateContainer."""

    def __init__(self, seen: list[str], env: str = "") -> None:
        self.seen = seen
        self.env = env

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        assert self.stub is not None
        self.seen.append(self.stub.full_name)
        return Adjustment().add_env(self.env, self.stub.full_name) if self.env else None


@pytest.mark.timeout(20)
async def test_plugins_are_invoked_by_index_then_name(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    seen: list[str] = []
    async with (
        runtime.adaptation(config) as nri,
        stub_plugin(Tagger(seen), config.socket_path, "30", "c"),
        stub_plugin(Tagger(seen), config.socket_path, "10", "zz"),
        stub_plugin(Tagger(seen), config.socket_path, "10", "aa"),
        stub_plugin(Tagger(seen), config.socket_path, "20", "b"),
    ):
        infos = await nri.wait_for_plugins(4)
        assert [i.full_name for i in infos] == ["10-aa", "10-zz", "20-b", "30-c"]
        await nri.create_container(create_request())
        assert seen == ["10-aa", "10-zz", "20-b", "30-c"]


@pytest.mark.timeout(20)
async def test_plugin_only_gets_subscribed_events(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    mask = EventMask.of(pb.START_CONTAINER, pb.REMOVE_POD_SANDBOX)
    async with (
        runtime.adaptation(config) as nri,
        RawPlugin(config.socket_path, events=int(mask)) as raw,
    ):
        await raw.register()
        await nri.wait_for_plugins(names=["50-raw"])
        assert nri.plugins[0].events == mask
        await nri.run_pod_sandbox(pb.RunPodSandboxRequest(pod=POD))
        await nri.create_container(create_request())
        await nri.start_container(pb.StartContainerRequest(pod=POD, container=ctr()))
        await nri.update_container(pb.UpdateContainerRequest(pod=POD, container=ctr()))
        await nri.stop_container(pb.StopContainerRequest(pod=POD, container=ctr()))
        await nri.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod=POD))
        assert raw.called() == ["Configure", "Synchronize", "StartContainer", "RemovePodSandbox"]
        configure = raw.calls[0][1]
        assert (configure.runtime_name, configure.runtime_version) == ("fake-runtime", "1.2.3")
        assert (configure.registration_timeout, configure.request_timeout) == (5000, 2000)
        assert configure.NRI_version


@pytest.mark.timeout(20)
async def test_zero_mask_means_all_events_including_validation(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    async with runtime.adaptation(config) as nri, RawPlugin(config.socket_path) as raw:
        await raw.register()
        infos = await nri.wait_for_plugins(1)
        assert int(infos[0].events) == VALID_EVENTS
        await nri.create_container(create_request())
        assert raw.called()[-2:] == ["CreateContainer", "ValidateContainerAdjustment"]
        validate = raw.calls[-1][1]
        assert [(p.name, p.index) for p in validate.plugins] == [("raw", "50")]


@pytest.mark.timeout(20)
async def test_invalid_event_mask_rejects_plugin(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    closed = asyncio.Event()
    async with (
        runtime.adaptation(config) as nri,
        RawPlugin(config.socket_path, events=1 << 20) as raw,
    ):
        await raw.register()
        assert raw.mux is not None
        raw.mux.add_close_callback(lambda reason: closed.set())
        await closed.wait()
        assert nri.plugins == []
        assert raw.called() == ["Configure"]


@pytest.mark.timeout(30)
async def test_killed_plugin_is_dropped_and_event_continues(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    closed: list[str] = []
    async with (
        runtime.adaptation(
            config, on_plugin_closed=lambda info: closed.append(info.full_name)
        ) as nri,
        plugin_process(config.socket_path, "10", "dier", "mode: die\n", tmp_path) as proc,
        plugin_process(config.socket_path, "20", "ok", "", tmp_path),
    ):
        await nri.wait_for_plugins(names=["10-dier", "20-ok"])
        response = await nri.create_container(create_request())
        assert env_of(response) == {"ADDED_BY_20": "20-ok"}
        assert [i.full_name for i in nri.plugins] == ["20-ok"]
        assert closed == ["10-dier"]
        assert await proc.wait() == -9


@pytest.mark.timeout(30)
async def test_plugin_timing_out_is_dropped_and_event_continues(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path, request_timeout=0.5)
    async with (
        runtime.adaptation(config) as nri,
        plugin_process(config.socket_path, "10", "slow", "mode: hang\n", tmp_path),
        plugin_process(config.socket_path, "20", "ok", "", tmp_path),
    ):
        await nri.wait_for_plugins(names=["10-slow", "20-ok"])
        response = await nri.create_container(create_request())
        assert env_of(response) == {"ADDED_BY_20": "20-ok"}
        assert [i.full_name for i in nri.plugins] == ["20-ok"]
        # The remaining plugin keeps working.
        response = await nri.create_container(create_request("c2"))
        assert env_of(response) == {"ADDED_BY_20": "20-ok"}


@pytest.mark.timeout(30)
async def test_plugin_error_fails_the_event_but_keeps_the_plugin(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    async with (
        runtime.adaptation(config) as nri,
        plugin_process(config.socket_path, "10", "bad", "mode: fail\n", tmp_path),
    ):
        await nri.wait_for_plugins(names=["10-bad"])
        with pytest.raises(PluginError, match=r"10-bad.*CreateContainer.*told to fail"):
            await nri.create_container(create_request())
        assert [i.full_name for i in nri.plugins] == ["10-bad"]


class Updater(Plugin):
    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        return None


@pytest.mark.timeout(20)
async def test_unsolicited_updates_reach_update_fn_and_failures_come_back(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime()
    runtime.fail_ids = {"broken"}
    config = config_for(tmp_path)
    plugin = Updater()
    async with (
        runtime.adaptation(config) as nri,
        stub_plugin(plugin, config.socket_path, "10", "upd"),
    ):
        await nri.wait_for_plugins(1)
        failed = await plugin.update_containers(
            [Update("ctr0").set_linux_cpu_shares(100), Update("broken")],
            [pb.ContainerEviction(container_id="victim", reason="testing")],
        )
        assert [u.container_id for u in failed] == ["broken"]
        assert [u.container_id for u in runtime.updates] == ["ctr0", "broken"]
        assert runtime.updates[0].linux.resources.cpu.shares.value == 100
        assert [(e.container_id, e.reason) for e in runtime.evictions] == [("victim", "testing")]
        runtime.update_error = RuntimeError("cgroup write failed")
        with pytest.raises(Exception, match="cgroup write failed"):
            await plugin.update_containers([Update("ctr0")])


@pytest.mark.timeout(20)
async def test_sync_updates_go_through_update_fn(tmp_path: Path) -> None:
    class Syncer(Plugin):
        def synchronize(self, pods: Any, containers: Any) -> Any:
            return [Update(c.id).set_linux_cpu_shares(7) for c in containers]

        def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
            return None

    runtime = FakeRuntime(containers=2)
    config = config_for(tmp_path)
    async with (
        runtime.adaptation(config) as nri,
        stub_plugin(Syncer(), config.socket_path, "10", "sync"),
    ):
        await nri.wait_for_plugins(1)
        assert [u.container_id for u in runtime.updates] == ["ctr0", "ctr1"]


@pytest.mark.timeout(20)
async def test_state_change_only_plugin_still_gets_events(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    mask = EventMask.of(pb.START_CONTAINER, pb.REMOVE_CONTAINER, pb.RUN_POD_SANDBOX)
    async with (
        runtime.adaptation(config) as nri,
        RawPlugin(config.socket_path, events=int(mask), methods={"StateChange"}) as old,
    ):
        await old.register()
        await nri.wait_for_plugins(1)
        await nri.start_container(pb.StartContainerRequest(pod=POD, container=ctr("c9")))
        await nri.run_pod_sandbox(pb.RunPodSandboxRequest(pod=POD))
        await nri.remove_container(pb.RemoveContainerRequest(pod=POD, container=ctr("c9")))
        changes = [(req.event, req.pod.id, req.container.id) for _, req in old.calls[2:]]
        assert old.called()[2:] == ["StateChange"] * 3
        assert changes == [
            (pb.START_CONTAINER, "pod0", "c9"),
            (pb.RUN_POD_SANDBOX, "pod0", ""),
            (pb.REMOVE_CONTAINER, "pod0", "c9"),
        ]
        assert len(nri.plugins) == 1


@pytest.mark.timeout(20)
async def test_conflicting_adjustments_fail_creation(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    seen: list[str] = []
    async with (
        runtime.adaptation(config) as nri,
        stub_plugin(Tagger(seen, env="FOO"), config.socket_path, "30", "logger"),
        stub_plugin(Tagger(seen, env="FOO"), config.socket_path, "31", "logger"),
    ):
        await nri.wait_for_plugins(2)
        with pytest.raises(ConflictError, match=r'"31-logger" and "30-logger".*FOO'):
            await nri.create_container(create_request())


@pytest.mark.timeout(20)
async def test_validator_rejection_fails_creation(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    seen: list[str] = []

    def reject(request: pb.ValidateContainerAdjustmentRequest) -> Any:
        allowed = all(kv.key != "FOO" for kv in request.adjust.env)
        return pb.ValidateContainerAdjustmentResponse(reject=not allowed, reason="no FOO here")

    async with (
        runtime.adaptation(config) as nri,
        RawPlugin(
            config.socket_path,
            idx="90",
            name="guard",
            events=int(EventMask.of(pb.VALIDATE_CONTAINER_ADJUSTMENT)),
            handlers={"ValidateContainerAdjustment": reject},
        ) as guard,
    ):
        await guard.register()
        async with stub_plugin(Tagger(seen, env="FOO"), config.socket_path, "10", "foo"):
            await nri.wait_for_plugins(2)
            with pytest.raises(ValidationError, match=r'"90-guard".*no FOO here'):
                await nri.create_container(create_request())
            validate = guard.calls[-1][1]
            assert validate.container.id == "c1"
            assert [kv.key for kv in validate.adjust.env] == ["FOO"]


@pytest.mark.timeout(20)
async def test_stop_leaves_external_connections_and_close_closes_them(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    registered: list[str] = []
    nri = runtime.adaptation(config, on_plugin_registered=lambda i: registered.append(i.name))
    await nri.start()
    try:
        async with RawPlugin(config.socket_path) as raw:
            await raw.register()
            await nri.wait_for_plugins(1)
            assert registered == ["raw"]
            await nri.stop()
            assert nri.plugins == []
            assert raw.mux is not None and not raw.mux.is_closed
            await nri.close()
            await asyncio.wait_for(raw.mux.wait_closed(), 5)
    finally:
        await nri.close()


@pytest.mark.timeout(20)
async def test_default_validator_checks_required_plugins(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    validator = DefaultValidatorConfig(enable=True, required_plugins=["needed"])
    config = config_for(tmp_path, default_validator=validator)
    seen: list[str] = []
    async with runtime.adaptation(config) as nri:
        with pytest.raises(ValidationError, match=r'"00-default-validator".*"needed" not present'):
            await nri.create_container(create_request())
        async with stub_plugin(Tagger(seen), config.socket_path, "10", "needed"):
            await nri.wait_for_plugins(1)
            await nri.create_container(create_request())
            assert seen == ["10-needed"]


@pytest.mark.timeout(20)
async def test_disabled_default_validator_does_nothing(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    validator = DefaultValidatorConfig(enable=False, required_plugins=["needed"])
    config = config_for(tmp_path, default_validator=validator)
    async with runtime.adaptation(config) as nri:
        response = await nri.create_container(create_request())
        assert not response.adjust.env
