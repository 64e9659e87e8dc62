"""End to end in the mock runtime: placements show up in the containers' OCI specs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from nri_resource_tuner import (
    CLASS_ANNOTATION,
    EXCLUSIVE_CPUS_ANNOTATION,
    Config,
    ResourceTuner,
    parse_cpuset,
)

from nri.adaptation import PluginError
from nri.mock import MockContainer, MockRuntime
from nri.stub import Stub, load_config

FOUR = {"cores_per_node": 4, "memory": "8Gi"}
SIXTEEN = {"numa_nodes": 2, "cores_per_node": 4, "threads_per_core": 2, "memory": "64Gi"}
BIG = {"numa_nodes": 2, "cores_per_node": 32, "threads_per_core": 2, "memory": "256Gi"}


def config(host: dict[str, Any], **settings: Any) -> str:
    return yaml.safe_dump({"host": host, **settings})


def cpus(ctr: MockContainer) -> str:
    return str(ctr.spec["linux"]["resources"]["cpu"]["cpus"])


def mems(ctr: MockContainer) -> str:
    return str(ctr.spec["linux"]["resources"]["cpu"].get("mems", ""))


def exclusive(cls: str, container: str | None = None) -> dict[str, str]:
    key = f"{CLASS_ANNOTATION}/container.{container}" if container else f"{CLASS_ANNOTATION}/pod"
    return {key: cls}


async def add_tuner(rt: MockRuntime, text: str) -> tuple[ResourceTuner, Stub]:
    plugin = ResourceTuner(load_config(text, Config, source="test"))
    stub = await rt.add_plugin(plugin, name="resource-tuner", idx="50", config=text)
    return plugin, stub


async def until(condition: Any, what: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.timeout(30)
async def test_console_script_allocates_releases_and_moves_the_shared_pool(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "resource-tuner.yaml"
    conf.write_text(
        config(FOUR, **{"reserved-cpus": "0", "classes": {"solo": {"exclusive-cpus": 1}}})
    )
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, "-m", "nri_resource_tuner", "--config", str(conf)],
            name="resource-tuner",
            idx="50",
        )
        pod = await rt.run_pod("web", annotations=exclusive("solo", "db"))
        web = await rt.create_container(pod, "web")
        assert cpus(web) == "1-3"
        assert mems(web) == "0"
        db = await rt.create_container(pod, "db")
        await rt.start_container(db)
        assert cpus(db) == "1"
        assert db.spec["annotations"][EXCLUSIVE_CPUS_ANNOTATION] == "1"
        assert cpus(web) == "2-3"  # the shared pool shrank
        created = [r for r in rt.history if r.event == "CreateContainer"][-1]
        assert set(created.specs) == {db.id, web.id}

        db2 = await rt.create_container(pod, "db", id="db-2")
        assert cpus(db2) == "2"
        assert cpus(web) == "3"
        with pytest.raises(PluginError) as info:
            await rt.create_container(pod, "db", id="db-3")
        message = str(info.value)
        assert "pod default/web, container db: class 'solo'" in message
        assert "cannot allocate 1 exclusive CPU: only 0 can be taken" in message
        assert "the shared pool has 1 CPU (3) and keeps at least 1" in message
        assert "db-3" not in rt.containers

        await rt.stop_container(db)
        assert cpus(web) == "1,3"  # the shared pool grew back
        await rt.remove_container(db)
        db3 = await rt.create_container(pod, "db", id="db-3")
        assert cpus(db3) == "1"
        assert cpus(web) == "3"


@pytest.mark.timeout(30)
async def test_numa_preference_whole_cores_and_memory_pinning() -> None:
    text = config(
        SIXTEEN,
        **{
            "reserved-cpus": "0,8",
            "classes": {
                "pinned": {"exclusive-cpus": 4, "whole-cores": True},
                "local": {"exclusive-cpus": 5, "numa": "require"},
            },
        },
    )
    async with MockRuntime() as rt:
        await add_tuner(rt, text)
        pod = await rt.run_pod("p", annotations={CLASS_ANNOTATION: "pinned"})
        shared_pod = await rt.run_pod("s")
        shared = await rt.create_container(shared_pod, "s")
        assert parse_cpuset(cpus(shared)) == set(range(16)) - {0, 8}
        assert mems(shared) == "0-1"
        a = await rt.create_container(pod, "a")
        b = await rt.create_container(pod, "b")
        # node 0 has 6 free CPUs: the tightest fit for 4; then node 1 for the next 4
        assert cpus(a) == "1-2,9-10"
        assert mems(a) == "0"
        assert cpus(b) == "4-5,12-13"
        assert mems(b) == "1"
        assert cpus(shared) == "3,6-7,11,14-15"
        local_pod = await rt.run_pod("l", annotations={CLASS_ANNOTATION: "local"})
        with pytest.raises(PluginError) as info:
            await rt.create_container(local_pod, "l")
        assert "no single NUMA node can hold it (free: node 0: 3,11, node 1: 6-7,14-15)" in str(
            info.value
        )
        await rt.remove_container(a)  # never started: RemoveContainer without StopContainer
        await until(lambda: cpus(shared) == "1-3,6-7,9-11,14-15", "the pool to grow")
        assert [r.event for r in rt.history][-1] == "UpdateContainers"
        local = await rt.create_container(local_pod, "l")
        assert cpus(local) == "1-3,9-10"
        assert mems(local) == "0"
        assert cpus(shared) == "6-7,11,14-15"
        assert mems(shared) == "0-1"


@pytest.mark.timeout(30)
async def test_restart_rebuilds_the_state_from_synchronize() -> None:
    text = config(
        SIXTEEN,
        **{"reserved-cpus": "0", "classes": {"excl": {"exclusive-cpus": 3}}},
    )
    async with MockRuntime() as rt:
        plugin, stub = await add_tuner(rt, text)
        pod = await rt.run_pod("p", annotations=exclusive("excl", "x"))
        shared = await rt.create_container(pod, "s")
        x1 = await rt.create_container(pod, "x", id="x1")
        x2 = await rt.create_container(pod, "x", id="x2")
        x3 = await rt.create_container(pod, "x", id="x3")
        for ctr in (shared, x1, x2, x3):
            await rt.start_container(ctr)
        before = dict(plugin.allocator.allocations)
        assert len(before) == 3

        await stub.stop()
        await until(lambda: not rt.plugins, "the plugin to go")
        # While the plugin is away a container stops and goes: its CPUs must come back.
        await rt.stop_container(x2)
        await rt.remove_container(x2)
        assert (
            parse_cpuset(cpus(shared))
            == set(range(1, 16)) - before["x1"] - before["x2"] - before["x3"]
        )

        restarted, _ = await add_tuner(rt, text)
        assert restarted is not plugin
        assert restarted.allocator.allocations == {"x1": before["x1"], "x3": before["x3"]}
        # Synchronize moved the shared container onto the grown pool.
        assert parse_cpuset(cpus(shared)) == set(range(1, 16)) - before["x1"] - before["x3"]
        x4 = await rt.create_container(pod, "x", id="x4")
        taken = parse_cpuset(cpus(x4))
        assert len(taken) == 3
        assert not taken & (before["x1"] | before["x3"])
        assert not taken & parse_cpuset(cpus(shared))


@pytest.mark.timeout(30)
async def test_synchronize_demotes_a_doubled_allocation_to_the_shared_pool() -> None:
    text = config(FOUR, **{"classes": {"excl": {"exclusive-cpus": 1}}})
    async with MockRuntime() as rt:
        pod = rt.add_existing_pod("p", annotations=exclusive("excl"))
        record = {EXCLUSIVE_CPUS_ANNOTATION: "2"}
        resources = {"cpu": {"cpus": "2"}}
        first = rt.add_existing_container(pod, "a", annotations=record, resources=resources)
        second = rt.add_existing_container(pod, "b", annotations=record, resources=resources)
        plain = rt.add_existing_container(pod, "c", resources={"cpu": {"cpus": "0-3"}})
        plugin, _ = await add_tuner(rt, text)
        assert plugin.allocator.allocations == {first.id: frozenset({2})}
        assert cpus(first) == "2"
        assert cpus(second) == "0-1,3"
        assert cpus(plain) == "0-1,3"


@pytest.mark.timeout(30)
async def test_a_demoted_containers_stale_record_does_not_win_at_the_next_restart() -> None:
    text = config(FOUR, **{"reserved-cpus": "0", "classes": {"excl": {"exclusive-cpus": 1}}})
    async with MockRuntime() as rt:
        pod = rt.add_existing_pod("p", annotations=exclusive("excl"))

        def record(cpu: str) -> dict[str, Any]:
            return {
                "annotations": {EXCLUSIVE_CPUS_ANNOTATION: cpu},
                "resources": {"cpu": {"cpus": cpu}},
            }

        rt.add_existing_container(pod, "x", **record("1"))
        first = rt.add_existing_container(pod, "a", **record("2"))
        demoted = rt.add_existing_container(pod, "b", **record("2"))
        plugin, stub = await add_tuner(rt, text)
        assert demoted.id not in plugin.allocator.allocations
        assert cpus(demoted) == "3"
        await rt.remove_container(first)
        await until(lambda: cpus(demoted) == "2-3", "the pool to grow")
        newer = await rt.create_container(pod, "c")
        assert cpus(newer) == "2"
        assert cpus(demoted) == "3"

        await stub.stop()
        await until(lambda: not rt.plugins, "the plugin to go")
        restarted, _ = await add_tuner(rt, text)
        # b still records CPU 2 but has run in the shared pool since: c keeps CPU 2.
        assert restarted.allocator.allocations[newer.id] == {2}
        assert demoted.id not in restarted.allocator.allocations
        assert cpus(newer) == "2"
        assert cpus(demoted) == "3"


@pytest.mark.timeout(30)
async def test_exhaustion_falls_back_when_the_class_allows_it() -> None:
    text = config(
        FOUR,
        **{
            "classes": {
                "strict": {"exclusive-cpus": 3},
                "flexible": {"exclusive-cpus": 3, "fallback-to-shared": True},
            }
        },
    )
    async with MockRuntime() as rt:
        await add_tuner(rt, text)
        strict = await rt.create_container(
            await rt.run_pod("a", annotations={CLASS_ANNOTATION: "strict"}), "a"
        )
        assert cpus(strict) == "0-2"
        pod = await rt.run_pod("b", annotations={CLASS_ANNOTATION: "flexible"})
        flexible = await rt.create_container(pod, "b")
        assert cpus(flexible) == "3"
        assert EXCLUSIVE_CPUS_ANNOTATION not in flexible.spec["annotations"]
        with pytest.raises(PluginError, match="class 'strict': cannot allocate 3 exclusive CPUs"):
            await rt.create_container(
                await rt.run_pod("c", annotations={CLASS_ANNOTATION: "strict"}), "c"
            )
        await rt.stop_container(strict)
        assert cpus(flexible) == "0-3"  # a fallback container lives in the shared pool


@pytest.mark.timeout(30)
async def test_conflicting_annotations() -> None:
    text = config(FOUR, **{"classes": {"excl": {"exclusive-cpus": 2}}})
    async with MockRuntime() as rt:
        await add_tuner(rt, text)
        annotations = {
            f"{CLASS_ANNOTATION}/pod": "shared",
            f"{CLASS_ANNOTATION}/container.db": "excl",
            CLASS_ANNOTATION: "nonsense",
        }
        pod = await rt.run_pod("p", annotations=annotations)
        db = await rt.create_container(pod, "db")
        web = await rt.create_container(pod, "web")
        assert cpus(db) == "0-1"
        assert cpus(web) == "2-3"
        bad = await rt.run_pod(
            "q",
            annotations={f"{CLASS_ANNOTATION}/container.x": "gold", CLASS_ANNOTATION: "excl"},
        )
        with pytest.raises(PluginError) as info:
            await rt.create_container(bad, "x")
        assert (
            f"pod default/q, container x: annotation '{CLASS_ANNOTATION}/container.x': "
            "class 'gold' is not defined (classes: excl, shared)"
        ) in str(info.value)
        assert cpus(web) == "2-3"  # nothing changed


@pytest.mark.timeout(30)
async def test_tuning_and_updates_keep_the_placement() -> None:
    text = config(
        FOUR,
        **{
            "classes": {
                "tuned": {
                    "exclusive-cpus": "auto",
                    "cpu-shares-scale": 0.5,
                    "memory-limit": "25%",
                    "memory-reservation": "1Gi",
                    "memory-swap": -1,
                    "memory-swappiness": 10,
                    "memory-pinning": False,
                }
            },
            "default-class": "tuned",
        },
    )
    async with MockRuntime() as rt:
        await add_tuner(rt, text)
        pod = await rt.run_pod("p")
        limits = {"cpu": {"shares": 2048, "quota": 200_000, "period": 100_000}}
        ctr = await rt.create_container(pod, "c", resources=limits)
        resources = ctr.spec["linux"]["resources"]
        assert resources["cpu"]["cpus"] == "0-1"
        assert "mems" not in resources["cpu"]
        assert resources["cpu"]["shares"] == 1024
        assert resources["memory"] == {
            "limit": 2 * 2**30,
            "reservation": 2**30,
            "swap": -1,
            "swappiness": 10,
        }
        burst = await rt.create_container(pod, "d", resources={"cpu": {"quota": 150_000}})
        assert cpus(burst) == "2-3"  # not a whole number of CPUs: the shared pool
        await rt.update_container(ctr, {"cpu": {"cpus": "0-3", "shares": 4096}})
        assert cpus(ctr) == "0-1"
        assert ctr.spec["linux"]["resources"]["cpu"]["shares"] == 2048


@pytest.mark.timeout(30)
async def test_many_exclusive_containers_on_two_by_sixty_four() -> None:
    text = config(
        BIG,
        **{
            "reserved-cpus": "0,64",
            "classes": {"big": {"exclusive-cpus": 10, "whole-cores": True}},
        },
    )
    async with MockRuntime() as rt:
        plugin, _ = await add_tuner(rt, text)
        pod = await rt.run_pod("p", annotations={CLASS_ANNOTATION: "big"})
        shared_pod = await rt.run_pod("s")
        shared = await rt.create_container(shared_pod, "s")
        containers = []
        for i in range(12):
            containers.append(await rt.create_container(pod, f"c{i}"))
        with pytest.raises(PluginError, match="cannot allocate 10 exclusive CPUs"):
            await rt.create_container(pod, "c12")
        seen: set[int] = set()
        for ctr in containers:
            mine = parse_cpuset(cpus(ctr))
            assert len(mine) == 10
            assert not mine & seen
            assert len(plugin.topology.nodes_of(mine)) == 1  # 6 fit into each node
            seen |= mine
        assert parse_cpuset(cpus(shared)) == set(range(128)) - {0, 64} - seen
