"""Per-pod concurrency: pods in parallel, each pod's events in order, updates exclusive."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from _adaptation_helpers import FakeRuntime, config_for, env_of, stub_plugin

from nri.adaptation import Adaptation
from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.stub import Plugin

PODS = 12
CONTAINERS = 4


class Tracker:
    """What all plugins are doing right now, shared by the test's plugins."""

    def __init__(self) -> None:
        self.in_flight: dict[str, int] = defaultdict(int)  # pod id -> running handlers
        self.peak_pods = 0
        self.updates_while_busy = 0

    def enter(self, pod: str) -> None:
        self.in_flight[pod] += 1
        self.peak_pods = max(self.peak_pods, sum(1 for n in self.in_flight.values() if n))

    def leave(self, pod: str) -> None:
        self.in_flight[pod] -= 1

    @property
    def busy(self) -> bool:
        return any(self.in_flight.values())


class Observer(Plugin):
    """Records per pod the events it sees; adds its own env var; takes a little time."""

    def __init__(self, tag: str, tracker: Tracker, seed: int) -> None:
        self.tag = tag
        self.tracker = tracker
        self.rng = random.Random(seed)
        self.seen: dict[str, list[str]] = defaultdict(list)

    async def _work(self, pod: pb.PodSandbox, what: str) -> None:
        self.tracker.enter(pod.id)
        try:
            self.seen[pod.id].append(what)
            await asyncio.sleep(self.rng.uniform(0, 0.004))
        finally:
            self.tracker.leave(pod.id)

    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._work(pod, "RunPodSandbox")

    async def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        await self._work(pod, f"CreateContainer {container.id}")
        return Adjustment().add_env(f"BY_{self.tag}", f"{self.tag}:{container.id}")

    async def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._work(pod, f"StartContainer {container.id}")

    async def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: Any
    ) -> Any:
        await self._work(pod, f"UpdateContainer {container.id}")
        if self.tag != "P2":
            return None  # two plugins updating one field conflict, as upstream
        return Update(container.id).set_linux_cpu_shares(100 + len(self.seen[pod.id]))

    async def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._work(pod, f"StopContainer {container.id}")

    async def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._work(pod, f"RemoveContainer {container.id}")

    async def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._work(pod, "StopPodSandbox")

    async def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._work(pod, "RemovePodSandbox")


class LateObserver(Observer):
    """Registers while the pods run; only records (adds nothing)."""

    async def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        await self._work(pod, f"CreateContainer {container.id}")
        return None


def _pod(i: int) -> pb.PodSandbox:
    return pb.PodSandbox(id=f"pod{i}", name=f"pod-{i}", namespace="ns")


async def _pod_life(
    nri: Adaptation, i: int, rng: random.Random, results: dict[str, Any]
) -> list[str]:
    """Run one pod through its whole life; return the events sent, in order."""
    pod = _pod(i)
    sent = ["RunPodSandbox"]
    await nri.run_pod_sandbox(pb.RunPodSandboxRequest(pod=pod))
    ctrs = [
        pb.Container(id=f"p{i}c{j}", pod_sandbox_id=pod.id, name=f"c{j}") for j in range(CONTAINERS)
    ]
    for ctr in ctrs:
        await asyncio.sleep(rng.uniform(0, 0.002))
        created = await nri.create_container(pb.CreateContainerRequest(pod=pod, container=ctr))
        results[ctr.id] = env_of(created)
        await nri.start_container(pb.StartContainerRequest(pod=pod, container=ctr))
        updated = await nri.update_container(pb.UpdateContainerRequest(pod=pod, container=ctr))
        results[f"{ctr.id}/update"] = sorted(
            (u.container_id, u.linux.resources.cpu.shares.value) for u in updated.update
        )
        sent += [
            f"CreateContainer {ctr.id}",
            f"StartContainer {ctr.id}",
            f"UpdateContainer {ctr.id}",
        ]
    for ctr in ctrs:
        await nri.stop_container(pb.StopContainerRequest(pod=pod, container=ctr))
        await nri.remove_container(pb.RemoveContainerRequest(pod=pod, container=ctr))
        sent += [f"StopContainer {ctr.id}", f"RemoveContainer {ctr.id}"]
    await nri.stop_pod_sandbox(pb.StopPodSandboxRequest(pod=pod))
    await nri.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod=pod))
    return [*sent, "StopPodSandbox", "RemovePodSandbox"]


async def _run(tmp_path: Path, per_pod: bool) -> tuple[Tracker, dict[str, Any], int]:
    tracker = Tracker()
    runtime = FakeRuntime(pods=0, containers=0)
    original_update = runtime.update

    async def checked_update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        if tracker.busy:
            tracker.updates_while_busy += 1
        await asyncio.sleep(0.002)
        if tracker.busy:
            tracker.updates_while_busy += 1
        return await original_update(updates)

    runtime.update = checked_update  # type: ignore[method-assign]
    config = config_for(tmp_path, per_pod_concurrency=per_pod)
    plugins = [Observer(f"P{n}", tracker, seed=n) for n in range(3)]
    results: dict[str, Any] = {}
    async with (
        runtime.adaptation(config) as nri,
        stub_plugin(plugins[0], config.socket_path, "10", "first"),
        stub_plugin(plugins[1], config.socket_path, "20", "second"),
        stub_plugin(plugins[2], config.socket_path, "30", "third") as third,
    ):
        await nri.wait_for_plugins(count=3)
        stop = asyncio.Event()

        async def unsolicited() -> int:
            sent = 0
            while not stop.is_set():
                await third.update_containers([Update("p0c0").set_linux_cpu_shares(7)])
                sent += 1
                await asyncio.sleep(0.003)
            return sent

        late = LateObserver("L", tracker, seed=9)
        late_stack = contextlib.AsyncExitStack()
        leaver = LateObserver("X", tracker, seed=11)
        leaver_stack = contextlib.AsyncExitStack()
        await leaver_stack.enter_async_context(
            stub_plugin(leaver, config.socket_path, "50", "leaver")
        )
        await nri.wait_for_plugins(names=["50-leaver"])

        async def join_late() -> None:
            await asyncio.sleep(0.05)
            await late_stack.enter_async_context(
                stub_plugin(late, config.socket_path, "40", "late")
            )

        async def leave_early() -> None:
            await asyncio.sleep(0.08)
            await leaver_stack.aclose()

        updater = asyncio.create_task(unsolicited())
        joiner = asyncio.create_task(join_late())
        quitter = asyncio.create_task(leave_early())
        rngs = [random.Random(100 + i) for i in range(PODS)]
        async with late_stack:
            sent_per_pod = await asyncio.gather(
                *(_pod_life(nri, i, rngs[i], results) for i in range(PODS))
            )
            stop.set()
            unsolicited_sent = await updater
            await joiner
            await quitter
            assert "40-late" in [p.full_name for p in nri.plugins]
            assert "50-leaver" not in [p.full_name for p in nri.plugins]
    late_events = left_events = 0
    for i, sent in enumerate(sent_per_pod):
        for plugin in plugins:
            assert plugin.seen[f"pod{i}"] == sent, (plugin.tag, i)
        # The plugin that joined midway got, per pod, everything after some point.
        seen = late.seen[f"pod{i}"]
        assert seen == sent[len(sent) - len(seen) :], i
        late_events += len(seen)
        # The one that left midway got everything up to some point.
        gone = leaver.seen[f"pod{i}"]
        assert gone == sent[: len(gone)], i
        left_events += len(gone)
    total = sum(len(sent) for sent in sent_per_pod)
    assert 0 < late_events < total
    assert 0 < left_events < total
    assert len(runtime.updates) == unsolicited_sent
    return tracker, results, unsolicited_sent


@pytest.mark.timeout(120)
async def test_pods_run_concurrently_in_order_with_exclusive_updates(tmp_path: Path) -> None:
    concurrent, results, updates = await _run(tmp_path / "concurrent", per_pod=True)
    serial, serial_results, _ = await _run(tmp_path / "serial", per_pod=False)
    # The same final adjustment of every container either way.
    assert results == serial_results
    assert results["p3c2"] == {"BY_P0": "P0:p3c2", "BY_P1": "P1:p3c2", "BY_P2": "P2:p3c2"}
    # The third plugin's update depends on how many events of the pod it saw before.
    assert results["p3c2/update"] == [("p3c2", 100 + 1 + 3 * 2 + 3)]
    assert serial.peak_pods == 1
    assert concurrent.peak_pods > 1
    assert updates > 0
    # An unsolicited update never overlaps a running event.
    assert concurrent.updates_while_busy == 0
    assert serial.updates_while_busy == 0
    assert not concurrent.busy
