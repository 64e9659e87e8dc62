"""Runtime profiles of the mock runtime: what plugins get from a containerd-like and a
CRI-O-like runtime, over real sockets (facts from containerd 2.3.4 and CRI-O 1.36.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _adaptation_helpers import RawPlugin

from nri.adaptation import PluginError
from nri.api import Update
from nri.api import api_pb2 as pb
from nri.mock import PROFILES, MockContainer, MockRuntime, Player, UpdateError, parse_scenario
from nri.mock._profiles import CRIO_CONTAINER_NAME_LABEL, get_profile
from nri.stub import Plugin

ALL_EVENTS = sum(1 << (event - 1) for event in range(1, pb.VALIDATE_CONTAINER_ADJUSTMENT))
SECCOMP = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}  # fmt: skip


class Watcher(Plugin):
    """Keeps the pod and container of every event it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, pb.PodSandbox, pb.Container | None]] = []

    def _keep(self, event: str, pod: pb.PodSandbox, ctr: pb.Container | None = None) -> None:
        self.seen.append((event, pod, ctr))

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self._keep("RunPodSandbox", pod)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._keep("CreateContainer", pod, container)

    def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._keep("PostCreateContainer", pod, container)

    def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._keep("PostStartContainer", pod, container)

    def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._keep("StopContainer", pod, container)

    def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        self._keep("RemoveContainer", pod, container)

    def container_at(self, event: str) -> pb.Container:
        found = [ctr for name, _, ctr in self.seen if name == event and ctr is not None]
        assert found, f"no {event} in {[name for name, _, _ in self.seen]}"
        return found[-1]


async def _lifecycle(rt: MockRuntime, watcher: Watcher) -> MockContainer:
    await rt.add_plugin(watcher, name="watch", idx="10")
    pod = await rt.run_pod("web", annotations={"example.com/pod": "yes"}, labels={"app": "web"})
    ctr = await rt.create_container(
        pod,
        "app",
        labels={"tier": "front"},
        annotations={"example.com/own": "1"},
        cdi_devices=["vendor0.com/device=null"],
    )
    await rt.start_container(ctr)
    await rt.stop_container(ctr)
    await rt.remove_container(ctr)
    return ctr


def _namespaces(message: pb.PodSandbox | pb.Container) -> dict[str, str]:
    return {ns.type: ns.path for ns in message.linux.namespaces}


async def test_containerd_profile_sends_what_containerd_sends(tmp_path: Path) -> None:
    watcher = Watcher()
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        assert rt.profile.name == "containerd"
        await _lifecycle(rt, watcher)
    pod = watcher.seen[0][1]
    assert pod.pid > 0
    assert _namespaces(pod) == {"pid": "", "ipc": "", "mount": ""}
    assert pod.annotations["example.com/pod"] == "yes"
    assert pod.annotations["io.kubernetes.cri.sandbox-name"] == "web"
    assert pod.annotations["io.kubernetes.cri.sandbox-memory"] == "0"
    assert dict(pod.labels) == {"app": "web"}
    created = watcher.container_at("CreateContainer")
    assert created.name == "app"
    assert dict(created.labels) == {"tier": "front"}
    assert created.annotations["example.com/own"] == "1"
    assert "example.com/pod" not in created.annotations and "tier" not in created.annotations
    assert created.annotations["io.kubernetes.cri.container-name"] == "app"
    assert [d.name for d in created.CDI_devices] == ["vendor0.com/device=null"]
    assert _namespaces(created)["network"] == f"/proc/{pod.pid}/ns/net"
    assert [e for e in created.env if e.startswith("PATH=")] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    assert "TERM=xterm" not in created.env
    assert not created.linux.resources.HasField("pids")
    assert {m.destination for m in created.mounts} == {"/proc", "/dev"}
    assert created.pid == 0  # not before it started
    started = watcher.container_at("PostStartContainer")
    assert started.state == pb.CONTAINER_RUNNING
    assert started.started_at > 0 and started.pid > 0
    removed = watcher.container_at("RemoveContainer")
    assert removed.state == pb.CONTAINER_STOPPED and removed.pid == 0


async def test_crio_profile_sends_what_crio_sends(tmp_path: Path) -> None:
    watcher = Watcher()
    async with MockRuntime(socket_path=tmp_path / "nri.sock", profile="cri-o") as rt:
        ctr = await _lifecycle(rt, watcher)
    pod = watcher.seen[0][1]
    assert pod.pid == 0
    namespaces = _namespaces(pod)
    assert sorted(namespaces) == ["ipc", "uts"]
    assert namespaces["ipc"].startswith("/var/run/ipcns/")
    assert namespaces["uts"].startswith("/var/run/utsns/")
    assert dict(pod.annotations) == {"example.com/pod": "yes"}
    assert dict(pod.labels) == {"app": "web", CRIO_CONTAINER_NAME_LABEL: "POD"}
    created = watcher.container_at("CreateContainer")
    # The name comes from the label kubelet sets; the mock sets it as kubelet does.
    assert created.name == "app"
    assert dict(created.labels) == {"tier": "front", CRIO_CONTAINER_NAME_LABEL: "app"}
    annotations = dict(created.annotations)
    assert annotations["example.com/pod"] == "yes"  # the pod's
    assert annotations["tier"] == "front"  # the container's labels
    assert annotations["example.com/own"] == "1"
    assert not any(key.startswith("io.kubernetes.cri.") for key in annotations)
    assert list(created.CDI_devices) == []
    assert "network" not in _namespaces(created)
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert [e for e in created.env if e.startswith("PATH=")] == [path, path]
    assert "TERM=xterm" in created.env
    assert created.linux.resources.pids.limit == -1
    destinations = [m.destination for m in created.mounts]
    for extra in ("/run/.containerenv", "/etc/hosts", "/etc/passwd", "/etc/group"):
        assert extra in destinations
    assert watcher.container_at("PostCreateContainer").pid > 0  # known from creation on
    started = watcher.container_at("PostStartContainer")
    assert started.state == pb.CONTAINER_CREATED and started.started_at == 0
    assert ctr.started_at > 0  # running afterwards
    removed = watcher.container_at("RemoveContainer")
    assert removed.state == pb.CONTAINER_STOPPED and removed.pid == started.pid


@pytest.mark.parametrize("profile", ["containerd", "cri-o"])
async def test_seccomp_policy_is_sent_by_containerd_only(tmp_path: Path, profile: str) -> None:
    watcher = Watcher()
    async with MockRuntime(socket_path=tmp_path / "nri.sock", profile=profile) as rt:
        await rt.add_plugin(watcher, name="watch", idx="10")
        ctr = await rt.create_container(
            await rt.run_pod("web"), "app", spec={"linux": {"seccomp": SECCOMP}}
        )
    created = watcher.container_at("CreateContainer")
    assert "seccomp" in ctr.spec["linux"]  # on both, the process runs with it
    if profile == "containerd":
        assert created.linux.seccomp_policy.default_action == "SCMP_ACT_ERRNO"
    else:
        assert not created.linux.HasField("seccomp_policy")


async def test_crio_takes_the_container_name_from_the_kubelet_label(tmp_path: Path) -> None:
    watcher = Watcher()
    async with MockRuntime(socket_path=tmp_path / "nri.sock", profile="cri-o") as rt:
        await rt.add_plugin(watcher, name="watch", idx="10")
        pod = await rt.run_pod("web")
        await rt.create_container(pod, "app", labels={CRIO_CONTAINER_NAME_LABEL: "other"})
        await rt.create_container(pod, "bare", labels={CRIO_CONTAINER_NAME_LABEL: ""})
        assert rt.container("bare").name == "bare"  # the CRI name, for lookups
    names = [ctr.name for event, _, ctr in watcher.seen if event == "CreateContainer" and ctr]
    assert names == ["other", ""]


async def test_events_arrive_through_state_change_on_crio_only(tmp_path: Path) -> None:
    calls = {}
    for profile in PROFILES:
        socket = tmp_path / f"{profile}.sock"
        async with (
            MockRuntime(socket_path=socket, profile=profile) as rt,
            RawPlugin(str(socket), events=ALL_EVENTS) as raw,
        ):
            await raw.register()
            await rt.wait_for_plugins(1)
            pod = await rt.run_pod("web")
            ctr = await rt.create_container(pod, "app")
            await rt.start_container(ctr)
            await rt.update_container(ctr, {"cpu": {"shares": 512}})
            await rt.stop_container(ctr)
            await rt.remove_container(ctr)
            await rt.update_pod(pod, {"cpu": {"shares": 256}})
            await rt.remove_pod(pod)
            calls[profile] = raw.called()[2:]  # after Configure and Synchronize
            changes = [
                pb.Event.Name(request.event) for name, request in raw.calls if name == "StateChange"
            ]
    assert calls["containerd"] == [
        "RunPodSandbox",
        "CreateContainer",
        "PostCreateContainer",
        "StartContainer",
        "PostStartContainer",
        "UpdateContainer",
        "PostUpdateContainer",
        "StopContainer",
        "RemoveContainer",
        "UpdatePodSandbox",
        "PostUpdatePodSandbox",
        "StopPodSandbox",
        "RemovePodSandbox",
    ]
    assert calls["cri-o"] == [
        "StateChange",
        "CreateContainer",
        "StateChange",
        "StateChange",
        "StateChange",
        "UpdateContainer",
        "StateChange",
        "StopContainer",
        "StateChange",
        "UpdatePodSandbox",
        "StateChange",
        "StateChange",
        "StateChange",
    ]
    assert changes == [
        "RUN_POD_SANDBOX",
        "POST_CREATE_CONTAINER",
        "START_CONTAINER",
        "POST_START_CONTAINER",
        "POST_UPDATE_CONTAINER",
        "REMOVE_CONTAINER",
        "POST_UPDATE_POD_SANDBOX",
        "STOP_POD_SANDBOX",
        "REMOVE_POD_SANDBOX",
    ]


async def test_crio_fails_events_of_a_plugin_without_state_change(tmp_path: Path) -> None:
    socket = tmp_path / "nri.sock"
    methods = {"CreateContainer", "RunPodSandbox"}
    async with (
        MockRuntime(socket_path=socket, profile="cri-o") as rt,
        RawPlugin(str(socket), events=ALL_EVENTS, methods=methods) as raw,
    ):
        await raw.register()
        await rt.wait_for_plugins(1)
        with pytest.raises(PluginError, match="failed to handle RunPodSandbox"):
            await rt.run_pod("web")
        assert rt.last("RunPodSandbox").error is not None


class Mover(Plugin):
    """At each creation, asks to move every container created before to CPU 1."""

    def __init__(self, ignore_failure: bool = False) -> None:
        self.earlier: list[str] = []
        self.ignore_failure = ignore_failure

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        updates = []
        for cid in self.earlier:
            update = Update(cid).set_linux_cpuset_cpus("1")
            update.message.ignore_failure = self.ignore_failure
            updates.append(update)
        self.earlier.append(container.id)
        return updates


@pytest.mark.parametrize("profile", ["containerd", "cri-o"])
async def test_failed_updates_at_creation(tmp_path: Path, profile: str) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock", profile=profile) as rt:
        mover = Mover()
        await rt.add_plugin(mover, name="mover", idx="10")
        pod = await rt.run_pod("web")
        first = await rt.create_container(pod, "first")
        await rt.remove_container(first)  # the plugin does not know: its update fails
        if profile == "containerd":  # logged, the creation goes on
            second = await rt.create_container(pod, "second")
            assert second.id in rt.containers
            assert rt.last("CreateContainer").failed_updates == [first.id]
        else:
            with pytest.raises(UpdateError, match=f"failed to update containers {first.id}"):
                await rt.create_container(pod, "second")
            assert [c.name for c in rt.containers.values()] == []
            record = rt.last("CreateContainer")
            assert record.error is not None and record.failed_updates == [first.id]
            # An update that may fail does not fail the creation.
            mover.ignore_failure = True
            third = await rt.create_container(pod, "third")
            assert third.id in rt.containers


def test_profiles_by_name() -> None:
    assert sorted(PROFILES) == ["containerd", "cri-o"]
    assert get_profile("crio") is PROFILES["cri-o"]
    assert get_profile(PROFILES["containerd"]) is PROFILES["containerd"]
    with pytest.raises(
        ValueError, match=r"unknown runtime profile 'docker' \(known: containerd, cri-o\)"
    ):
        get_profile("docker")
    with pytest.raises(ValueError, match="unknown runtime profile"):
        MockRuntime(profile="docker")


async def test_scenario_cdi_devices_reach_containerd_plugins(tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "pods": {"p": None},
            "containers": {"c": {"pod": "p", "cdi_devices": ["vendor.com/gpu=0"]}},
            "steps": [{"run-pod": "p"}, {"create-container": "c"}],
        }
    )
    watcher = Watcher()
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(watcher, name="watch", idx="10")
        player = Player(rt, scenario)
        for step in scenario.steps:
            assert (await player.play(step)).error is None
    assert [d.name for d in watcher.container_at("CreateContainer").CDI_devices] == [
        "vendor.com/gpu=0"
    ]
