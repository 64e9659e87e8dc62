"""Property: random container lifecycles through the plugin's handlers in the mock runtime.

Whatever the order of creations (some failed by a later plugin, which the runtime undoes
with StopContainer and RemoveContainer), starts, updates, stops, removals and plugin restarts
(with containers created while the plugin was away), no CPU is exclusive to two live
containers, no allocation outlives its container, and every shared container's cpuset in
the runtime is the shared pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nri_resource_tuner import CLASS_ANNOTATION, Config, ResourceTuner, format_cpuset

from nri.adaptation import PluginError
from nri.api import pb
from nri.mock import MockContainer, MockPod, MockRuntime
from nri.stub import Plugin, Stub, load_config

CONFIG = yaml.safe_dump(
    {
        "host": {"numa_nodes": 2, "cores_per_node": 2, "threads_per_core": 2, "memory": "8Gi"},
        "reserved-cpus": "0",
        "classes": {
            "one": {"exclusive-cpus": 1},
            "pair": {"exclusive-cpus": 2, "whole-cores": True},
            "auto": {"exclusive-cpus": "auto", "fallback-to-shared": True},
        },
    }
)
CLASSES = ("shared", "one", "pair", "auto")
TWO_CPUS = {"cpu": {"quota": 200_000, "period": 100_000}}


class FailsSomeCreations(Plugin):
    """A plugin after the resource-tuner that rejects containers named ``fail-*``."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        if container.name.startswith("fail-"):
            raise RuntimeError("rejected by a later plugin")


container_index = st.integers(0, 15)
operation = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(CLASSES), st.booleans()),
    st.tuples(st.just("start"), container_index),
    st.tuples(st.just("update"), container_index),
    st.tuples(st.just("stop"), container_index),
    st.tuples(st.just("remove"), container_index),
    st.tuples(
        st.just("restart"),
        st.lists(st.sampled_from(CLASSES), max_size=2),
        st.booleans(),
    ),
)
# Each step, and whether to wait for the plugin's unsolicited updates and check afterwards
# (the next step may otherwise run while they are in flight).
operations = st.lists(st.tuples(operation, st.booleans()), min_size=1, max_size=25)


class Scenario:
    def __init__(self, rt: MockRuntime) -> None:
        self.rt = rt
        self.pods: dict[str, MockPod] = {}
        self.plugin = ResourceTuner(load_config(CONFIG, Config, source="test"))
        self.stub: Stub | None = None
        self.created = 0

    async def connect(self) -> None:
        self.stub = await self.rt.add_plugin(
            self.plugin, name="resource-tuner", idx="50", config=CONFIG
        )

    async def pod(self, cls: str, *, existing: bool = False) -> MockPod:
        if cls not in self.pods:
            annotations = {CLASS_ANNOTATION: cls}
            if existing:
                self.pods[cls] = self.rt.add_existing_pod(cls, annotations=annotations)
            else:
                self.pods[cls] = await self.rt.run_pod(cls, annotations=annotations)
        return self.pods[cls]

    async def create(self, cls: str, fail: bool) -> None:
        self.created += 1
        name = f"{'fail-' if fail else ''}c{self.created}"
        # It may fail: exhausted, or rejected by the later plugin.
        with contextlib.suppress(PluginError):
            await self.rt.create_container(await self.pod(cls), name, resources=TWO_CPUS)

    def pick(self, index: int) -> MockContainer | None:
        containers = sorted(self.rt.containers.values(), key=lambda c: c.id)
        return containers[index % len(containers)] if containers else None

    async def restart(self, created_while_away: list[str], same_object: bool) -> None:
        assert self.stub is not None
        await self.stub.stop()
        async with asyncio.timeout(5):
            while any(p.name == "resource-tuner" for p in self.rt.plugins):
                await asyncio.sleep(0.001)
        for cls in created_while_away:
            self.created += 1
            pod = await self.pod(cls, existing=True)
            self.rt.add_existing_container(pod, f"c{self.created}", resources=TWO_CPUS)
        if not same_object:
            self.plugin = ResourceTuner(load_config(CONFIG, Config, source="test"))
        await self.connect()

    async def settle(self) -> None:
        """Wait for the unsolicited updates the plugin sends after RemoveContainer."""
        flush = self.plugin._flush_task
        if flush is not None:
            await asyncio.wait_for(asyncio.shield(flush), 5)

    def check(self) -> None:
        plugin, rt = self.plugin, self.rt
        live = {cid: c for cid, c in rt.containers.items() if c.state != pb.CONTAINER_STOPPED}
        assert set(plugin.placements) == set(live)
        allocations = plugin.allocator.allocations
        assert set(allocations) <= set(live), "an allocation outlived its container"
        taken: set[int] = set()
        for cid, cpus in allocations.items():
            assert not cpus & taken, f"CPUs {format_cpuset(cpus & taken)} are exclusive twice"
            assert plugin.placements[cid].exclusive == cpus
            taken |= cpus
        pool = plugin.allocator.shared_pool
        assert pool == plugin.topology.cpu_ids - plugin.policy.reserved - taken
        assert pool
        for cid, ctr in live.items():
            expected = allocations.get(cid, pool)
            assert ctr.spec["linux"]["resources"]["cpu"]["cpus"] == format_cpuset(expected), cid


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=operations)
def test_random_lifecycles_keep_allocations_and_the_shared_pool_consistent(
    ops: list[tuple[tuple[Any, ...], bool]],
) -> None:
    async def play() -> None:
        async with MockRuntime(disable_connections=True) as rt:
            scenario = Scenario(rt)
            await scenario.connect()
            await rt.add_plugin(FailsSomeCreations(), name="fails", idx="60")
            for op, settle in ops:
                if op[0] == "create":
                    await scenario.create(op[1], op[2])
                elif op[0] == "restart":
                    await scenario.restart(op[1], op[2])
                else:
                    ctr = scenario.pick(op[1])
                    if ctr is None:
                        continue
                    stopped = ctr.state == pb.CONTAINER_STOPPED
                    if op[0] == "start" and ctr.state == pb.CONTAINER_CREATED:
                        await rt.start_container(ctr)
                    elif op[0] == "update" and not stopped:
                        await rt.update_container(ctr, {"cpu": {"cpus": "0-7", "shares": 512}})
                    elif op[0] == "stop" and not stopped:
                        await rt.stop_container(ctr)
                    elif op[0] == "remove":
                        await rt.remove_container(ctr)
                if settle:
                    await scenario.settle()
                    scenario.check()
            await scenario.settle()
            scenario.check()

    asyncio.run(asyncio.wait_for(play(), 60))
