"""MockRuntime: real adaptation, real sockets, specs adjusted and updated by plugins."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import AdaptationError, ConflictError, PluginError, ValidationError
from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.mock import LifecycleError, MockRuntime, PluginLaunchError
from nri.stub import Plugin

RECORDER = Path(__file__).parent / "adaptation_plugins" / "recorder.py"


class EnvSetter(Plugin):
    """Adds one env var to every container and remembers what it saw."""

    def __init__(self, var: str = "HELLO", value: str = "world") -> None:
        self.var, self.value = var, value
        self.synced: list[str] = []
        self.removed: list[str] = []

    def synchronize(self, pods: Any, containers: Any) -> None:
        self.synced = [c.name for c in containers]

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        return Adjustment().add_env(self.var, self.value).add_annotation("seen-by", self.var)

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self.removed.append(container.name)


class Squeezer(Plugin):
    """Pins each new container to CPU 0 and moves every other container to CPU 1."""

    def __init__(self) -> None:
        self.live: list[str] = []

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        changes: list[Any] = [Adjustment().set_linux_cpuset_cpus("0")]
        changes += [Update(cid).set_linux_cpuset_cpus("1") for cid in self.live]
        self.live.append(container.id)
        return changes

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        self.live.remove(container.id)
        return [Update(cid).set_linux_cpuset_cpus("0-1") for cid in self.live]


class Evicter(Plugin):
    """Evicts the first container when a second one is created."""

    def __init__(self) -> None:
        self.first: str | None = None

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        if self.first is None:
            self.first = container.id
            return None
        return pb.ContainerEviction(container_id=self.first, reason="make room")


async def test_in_process_plugin_adjusts_the_stored_spec(tmp_path: Path) -> None:
    plugin = EnvSetter()
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(plugin, name="env", idx="10")
        assert [p.full_name for p in rt.plugins] == ["10-env"]
        pod = await rt.run_pod("web", labels={"app": "web"})
        ctr = await rt.create_container(pod, "app", args=["sleep", "1"], env={"A": "1"})
        assert ctr.spec["process"]["args"] == ["sleep", "1"]
        assert "A=1" in ctr.spec["process"]["env"]
        assert "HELLO=world" in ctr.spec["process"]["env"]
        assert ctr.spec["annotations"]["seen-by"] == "HELLO"
        assert ctr.owners == {"Annotations:seen-by": "10-env", "Env:HELLO": "10-env"}
        create = next(r for r in rt.history if r.event == "CreateContainer")
        assert {(c.field, c.key, c.plugin) for c in create.changes} == {
            ("Env", "HELLO", "10-env"),
            ("Annotations", "seen-by", "10-env"),
        }
        before, after = create.specs[ctr.id]
        assert "HELLO=world" not in before["process"]["env"]
        assert after == ctr.spec
        json.dumps([r.to_data() for r in rt.history])  # JSON-ready
        await rt.start_container(ctr)
        assert ctr.state == pb.CONTAINER_RUNNING
        await rt.remove_pod(pod)
        assert plugin.removed == ["app"]
        assert not rt.containers and not rt.pods
        assert [r.event for r in rt.history] == [
            "RunPodSandbox",
            "CreateContainer",
            "PostCreateContainer",
            "StartContainer",
            "PostStartContainer",
            "StopContainer",
            "StopPodSandbox",
            "RemoveContainer",
            "RemovePodSandbox",
        ]


async def test_existing_state_is_synchronized_to_new_plugins(tmp_path: Path) -> None:
    plugin = EnvSetter()
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        pod = rt.add_existing_pod("db")
        rt.add_existing_container(pod, "postgres", args=["postgres"])
        await rt.add_plugin(plugin, name="env", idx="10")
        assert plugin.synced == ["postgres"]
        assert rt.history == []


async def test_updates_to_other_containers_are_applied(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(Squeezer(), name="squeeze", idx="20")
        pod = await rt.run_pod("web")
        first = await rt.create_container(pod, "one")
        assert first.spec["linux"]["resources"]["cpu"]["cpus"] == "0"
        second = await rt.create_container(pod, "two")
        assert second.spec["linux"]["resources"]["cpu"]["cpus"] == "0"
        assert first.spec["linux"]["resources"]["cpu"]["cpus"] == "1"
        create = [r for r in rt.history if r.event == "CreateContainer"][-1]
        assert set(create.specs) == {first.id, second.id}
        await rt.stop_container(second)
        assert first.spec["linux"]["resources"]["cpu"]["cpus"] == "0-1"


async def test_unsolicited_updates_are_applied_and_recorded(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        stub = await rt.add_plugin(EnvSetter(), name="env", idx="10")
        pod = await rt.run_pod("web")
        ctr = await rt.create_container(pod, "app")
        failed = await stub.update_containers(
            [Update(ctr.id).set_linux_memory_limit(1 << 30), Update("nope").set_linux_cpu_shares(2)]
        )
        assert [u.container_id for u in failed] == ["nope"]
        assert ctr.spec["linux"]["resources"]["memory"]["limit"] == 1 << 30
        record = rt.history[-1]
        assert record.event == "UpdateContainers"
        assert set(record.specs) == {ctr.id}
        assert record.failed_updates == ["nope"]


async def test_evictions_are_recorded_and_ignored_as_runtimes_do(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        stub = await rt.add_plugin(Evicter(), name="evict", idx="10")
        pod = await rt.run_pod("web")
        first = await rt.create_container(pod, "one")
        await rt.create_container(pod, "two")
        assert first.id in rt.containers and first.state == pb.CONTAINER_CREATED
        create = rt.last("CreateContainer")
        assert create.evicted == []
        assert create.ignored_evictions == [(first.id, "make room")]
        assert [r.event for r in rt.history][-1] == "PostCreateContainer"
        # Asked for outside an event (UpdateContainers): recorded, nothing done either.
        await stub.update_containers([], [pb.ContainerEviction(container_id=first.id, reason="x")])
        await rt.idle()
        assert rt.history[-1].event == "EvictContainer"
        assert rt.history[-1].ignored_evictions == [(first.id, "x")]
        assert rt.history[-1].to_data()["ignored_evictions"] == [
            {"container_id": first.id, "reason": "x"}
        ]
        assert first.id in rt.containers


async def test_evictions_stop_and_remove_the_container_when_acted_on(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock", act_on_evictions=True) as rt:
        await rt.add_plugin(Evicter(), name="evict", idx="10")
        pod = await rt.run_pod("web")
        first = await rt.create_container(pod, "one")
        await rt.create_container(pod, "two")
        assert first.id not in rt.containers
        events = [r.event for r in rt.history]
        assert events[-4:] == [
            "EvictContainer",
            "StopContainer",
            "RemoveContainer",
            "PostCreateContainer",
        ]
        create = [r for r in rt.history if r.event == "CreateContainer"][-1]
        assert create.evicted == [(first.id, "make room")]


async def test_conflicting_plugins_fail_creation_and_keep_nothing(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(EnvSetter("X", "1"), name="one", idx="10")
        await rt.add_plugin(EnvSetter("X", "2"), name="two", idx="20")
        pod = await rt.run_pod("web")
        with pytest.raises(ConflictError, match="both tried to set"):
            await rt.create_container(pod, "app")
        assert rt.containers == {}
        create, stop, remove = rt.history[-3:]
        assert create.event == "CreateContainer"
        assert "both tried to set" in (create.error or "")
        # As containerd does, the failed creation is undone with Stop and Remove.
        assert (stop.event, remove.event) == ("StopContainer", "RemoveContainer")
        assert stop.container_id == remove.container_id == create.container_id


async def test_launch_plugin_subprocess_registers_and_serves(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    config = tmp_path / "recorder.yaml"
    config.write_text(f"record: {record}\n")
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(
            [sys.executable, str(RECORDER), "--config", str(config)], name="rec", idx="30"
        )
        assert handle.info.full_name == "30-rec"
        assert handle.info.pid == handle.pid
        assert [p.pid for p in rt.plugins] == [handle.pid]  # the adaptation knows it too
        pod = await rt.run_pod("web")
        ctr = await rt.create_container(pod, "app")
        assert "ADDED_BY_30=30-rec" in ctr.spec["process"]["env"]
        with pytest.raises(TimeoutError, match="'never printed' not in the stderr of"):
            await handle.wait_for_output("never printed", timeout=0.1)
    assert handle.process.returncode is not None  # closed with the runtime
    lines = record.read_text().splitlines()
    assert f"CreateContainer {ctr.id}" in lines


async def test_launch_plugin_reports_early_exit_with_stderr(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('bad config: nope\\n'); sys.exit(4)"
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        with pytest.raises(PluginLaunchError, match="exited with status 4") as info:
            await rt.launch_plugin([sys.executable, "-c", code])
        assert "bad config: nope" in str(info.value)
        with pytest.raises(PluginLaunchError, match="cannot start"):
            await rt.launch_plugin("/nonexistent/plugin --idx 10")


async def test_launch_plugin_finds_commands_beside_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A virtual environment used without activation: its bin is not on PATH, but its python
    # runs the tests, and the plugin commands are installed beside it.
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    command = venv_bin / "nri-recorder-test"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} {RECORDER} "$@"\n')
    command.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setenv("PATH", "/nonexistent")
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin("nri-recorder-test --idx 30", name="rec")
        assert handle.info.full_name == "30-rec"
        assert handle.command == ["nri-recorder-test", "--idx", "30"]
        command.chmod(0o644)  # not executable: not taken
        with pytest.raises(PluginLaunchError, match="cannot start"):
            await rt.launch_plugin("nri-recorder-test --idx 31", name="rec2")


async def test_launch_plugin_times_out_naming_the_command(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        with pytest.raises(TimeoutError, match="did not register within 0.5s"):
            await rt.launch_plugin(
                [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5
            )


async def test_failing_plugin_fails_the_event_not_the_runtime(tmp_path: Path) -> None:
    config = tmp_path / "recorder.yaml"
    config.write_text("mode: fail\n")
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, str(RECORDER), "--config", str(config)], name="bad", idx="10"
        )
        pod = await rt.run_pod("web")
        with pytest.raises(PluginError, match="told to fail"):
            await rt.create_container(pod, "app")
        assert rt.containers == {}
        await asyncio.sleep(0)
        assert [p.full_name for p in rt.plugins] == ["10-bad"]


async def test_lookup_by_name_and_errors(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock", disable_connections=True) as rt:
        pod = await rt.run_pod("web")
        ctr = await rt.create_container("web", "app")
        assert rt.container("app") is ctr and rt.pod(pod.id) is pod
        await rt.create_container(pod, "app")
        with pytest.raises(KeyError, match="ambiguous"):
            rt.container("app")
        with pytest.raises(KeyError, match="no pod 'db'"):
            rt.pod("db")


class HangingValidator(Plugin):
    """A validator that never answers."""

    async def validate_container_adjustment(self, request: Any) -> None:
        await asyncio.sleep(3600)


async def test_validator_missing_its_deadline_fails_creation_and_is_closed(
    tmp_path: Path,
) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock", request_timeout=0.3) as rt:
        await rt.add_plugin(EnvSetter(), name="env", idx="10")
        await rt.add_plugin(HangingValidator(), name="slow", idx="90")
        pod = await rt.run_pod("web")
        with pytest.raises(ValidationError, match="validator plugin 90-slow failed"):
            await rt.create_container(pod, "app")
        assert rt.containers == {}
        assert [p.full_name for p in rt.plugins] == ["10-env"]
        ctr = await rt.create_container(pod, "app")  # the runtime goes on without it
        assert "HELLO=world" in ctr.spec["process"]["env"]


async def test_failed_start_removes_the_temporary_directory() -> None:
    runtime = MockRuntime()
    socket_dir = Path(runtime.socket_path).parent
    Path(runtime.socket_path).mkdir()  # nothing can listen there
    with pytest.raises(AdaptationError, match="nri.sock"):
        await runtime.start()
    assert not socket_dir.exists()


def test_runtime_never_started_leaves_no_temporary_directory() -> None:
    runtime = MockRuntime()
    socket_dir = Path(runtime.socket_path).parent
    assert socket_dir.is_dir()
    del runtime
    gc.collect()
    assert not socket_dir.exists()


class SelfEvicter(Plugin):
    """Evicts every container it is asked to create, and notes the events it gets."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        self.seen.append("CreateContainer")
        return pb.ContainerEviction(container_id=container.id, reason="no room")

    def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self.seen.append("PostCreateContainer")

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self.seen.append("RemoveContainer")


async def test_container_evicted_at_creation_gets_no_post_create(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock", act_on_evictions=True) as rt:
        plugin = SelfEvicter()
        await rt.add_plugin(plugin, name="evicter", idx="10")
        ctr = await rt.create_container(await rt.run_pod("web"), "app")
        assert ctr.id not in rt.containers
        assert plugin.seen == ["CreateContainer", "RemoveContainer"]
        assert [r.event for r in rt.history][-3:] == [
            "EvictContainer",
            "StopContainer",
            "RemoveContainer",
        ]


async def test_a_plugin_dying_mid_event_is_recorded_and_the_event_goes_on(
    tmp_path: Path,
) -> None:
    config = tmp_path / "recorder.yaml"
    config.write_text("mode: die\n")
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(EnvSetter(), name="env", idx="20")
        await rt.launch_plugin(
            [sys.executable, str(RECORDER), "--config", str(config)], name="dies", idx="10"
        )
        pod = await rt.run_pod("web")
        ctr = await rt.create_container(pod, "app")
        assert "HELLO=world" in ctr.spec["process"]["env"]
        closed = rt.last("PluginClosed")
        assert closed.plugin == "10-dies"
        assert closed.to_data()["plugin"] == "10-dies"
        assert [p.full_name for p in rt.plugins] == ["20-env"]
    assert [r.plugin for r in rt.history if r.event == "PluginClosed"] == ["10-dies"]


class Refuser(Plugin):
    """Fails the creation of containers called ``bad``."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        if container.name == "bad":
            raise RuntimeError("not this one")
        return None


async def test_undoing_a_failed_creation_applies_the_stop_updates(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(Squeezer(), name="squeeze", idx="20")
        await rt.add_plugin(Refuser(), name="refuse", idx="30")
        await rt.idle()  # in-process plugins keep running: idle() does not wait for them
        pod = await rt.run_pod("web")
        first = await rt.create_container(pod, "one")
        assert first.spec["linux"]["resources"]["cpu"]["cpus"] == "0"
        with pytest.raises(PluginError, match="not this one"):
            await rt.create_container(pod, "bad")
        # The squeezer released the failed container at StopContainer and widened the others.
        assert first.spec["linux"]["resources"]["cpu"]["cpus"] == "0-1"
        stop = rt.last("StopContainer")
        assert set(stop.specs) == {first.id}
        assert list(rt.containers) == [first.id]


async def test_lifecycle_calls_the_state_does_not_allow_are_refused(tmp_path: Path) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock", disable_connections=True) as rt:
        pod = await rt.run_pod("web")
        ctr = await rt.create_container(pod, "app")
        await rt.start_container(ctr)
        with pytest.raises(
            LifecycleError, match=r"cannot start container app \(.*\): it is running"
        ):
            await rt.start_container(ctr)
        await rt.stop_container(ctr)
        events = len(rt.history)
        await rt.stop_container(ctr)  # stopping again does nothing, as in CRI
        assert len(rt.history) == events
        with pytest.raises(LifecycleError, match="cannot update container app .*: it is stopped"):
            await rt.update_container(ctr, {"cpu": {"shares": 2}})
        await rt.stop_pod(pod)
        with pytest.raises(LifecycleError, match="cannot create container late in pod web .*"):
            await rt.create_container(pod, "late")
        assert len(rt.history) == events + 1  # only StopPodSandbox: refused calls relay nothing
        with pytest.raises(LifecycleError, match="pod name 'web' in namespace 'default' is taken"):
            await rt.run_pod("web")
        with pytest.raises(LifecycleError, match="pod name 'web' .* is taken"):
            rt.add_existing_pod("web")
        assert len(rt.history) == events + 1
        other = await rt.run_pod("web", namespace="shop")  # another namespace: another name
        await rt.remove_pod(pod)
        again = await rt.run_pod("web")  # the name is free once the pod is removed
        assert sorted(p.id for p in rt.pods.values()) == sorted([other.id, again.id])


async def test_pre_installed_plugins_output_is_captured(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    good = plugins / "30-rec"
    good.write_text(f'#!/bin/sh\necho starting >&2\nexec {sys.executable} {RECORDER} "$@"\n')
    bad = plugins / "40-bad"
    bad.write_text("#!/bin/sh\necho 'no luck' >&2\nexit 3\n")
    (plugins / "50-not-executable").write_text("#!/bin/sh\n")
    for path in (good, bad):
        path.chmod(0o755)
    lines: list[tuple[str, str]] = []
    rt = MockRuntime(socket_path=tmp_path / "nri.sock", plugin_path=plugins)
    rt.on_preinstalled_output = lambda name, line: lines.append((name, line))
    async with rt:
        assert [p.full_name for p in rt.plugins] == ["30-rec"]
        assert [(p.name, p.path) for p in rt.preinstalled] == [
            ("30-rec", str(good)),
            ("40-bad", str(bad)),
        ]
        assert rt.plugins[0].external is False  # started by the adaptation, as pre-installed
    assert ("40-bad", "no luck") in lines
    assert ("30-rec", "starting") in lines
    assert b"no luck" in rt.preinstalled[1].stderr
    with pytest.raises(AdaptationError, match=r"plugin directory '.*/nowhere' does not exist"):
        async with MockRuntime(plugin_path=tmp_path / "nowhere"):
            pass
