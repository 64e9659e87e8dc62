"""Synchronize split into several messages when the runtime's state is too large."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _adaptation_helpers import FakeRuntime, RawPlugin, config_for, stub_plugin

from nri.adaptation._plugin import PluginError, recalc_objs_per_sync_msg
from nri.api import api_pb2 as pb
from nri.stub import Plugin
from nri.ttrpc import OversizedMessageError

MAX = 8192


def big_runtime() -> FakeRuntime:
    runtime = FakeRuntime(pods=40, containers=160)
    for c in runtime.containers:
        c.annotations["padding"] = "x" * 200
    return runtime


def total_size(runtime: FakeRuntime) -> int:
    return pb.SynchronizeRequest(pods=runtime.pods, containers=runtime.containers).ByteSize()


@pytest.mark.timeout(20)
async def test_large_state_is_split_with_more_flags(tmp_path: Path) -> None:
    runtime = big_runtime()
    assert total_size(runtime) > 4 * MAX
    config = config_for(tmp_path, max_message_size=MAX)
    async with runtime.adaptation(config) as nri, RawPlugin(config.socket_path) as raw:
        await raw.register()
        await nri.wait_for_plugins(1)
        syncs = [req for name, req in raw.calls if name == "Synchronize"]
        assert len(syncs) > 1
        assert [s.more for s in syncs] == [True] * (len(syncs) - 1) + [False]
        assert all(s.ByteSize() < MAX for s in syncs)
        pods = [p.id for s in syncs for p in s.pods]
        ctrs = [c.id for s in syncs for c in s.containers]
        assert pods == [p.id for p in runtime.pods]
        assert ctrs == [c.id for c in runtime.containers]


class Collector(Plugin):
    def __init__(self) -> None:
        self.seen: tuple[int, int] | None = None

    def synchronize(self, pods: Any, containers: Any) -> None:
        self.seen = (len(pods), len(containers))

    def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        return None


@pytest.mark.timeout(20)
async def test_stub_plugin_reassembles_split_sync(tmp_path: Path) -> None:
    runtime = big_runtime()
    config = config_for(tmp_path, max_message_size=MAX)
    plugin = Collector()
    async with (
        runtime.adaptation(config) as nri,
        stub_plugin(plugin, config.socket_path, "10", "collector"),
    ):
        await nri.wait_for_plugins(1)
        assert plugin.seen == (40, 160)


@pytest.mark.timeout(20)
async def test_plugin_not_handling_split_sync_is_closed(tmp_path: Path) -> None:
    runtime = big_runtime()
    config = config_for(tmp_path, max_message_size=MAX)

    def no_more(request: pb.SynchronizeRequest) -> pb.SynchronizeResponse:
        return pb.SynchronizeResponse(more=False)

    async with (
        runtime.adaptation(config) as nri,
        RawPlugin(config.socket_path, handlers={"Synchronize": no_more}) as raw,
    ):
        await raw.register()
        assert raw.mux is not None
        await asyncio.wait_for(raw.mux.wait_closed(), 5)
        assert raw.called() == ["Configure", "Synchronize"]
        assert nri.plugins == []


def test_recalc_batch_size_like_upstream() -> None:
    assert recalc_objs_per_sync_msg(100, 100, OversizedMessageError(40_000, 10_000)) == (25, 25)
    # The factor is capped at 0.9.
    assert recalc_objs_per_sync_msg(100, 100, OversizedMessageError(10_500, 10_000)) == (90, 90)
    # Never below 8 objects in all.
    assert recalc_objs_per_sync_msg(10, 10, OversizedMessageError(1_000_000, 1_000)) == (4, 4)
    with pytest.raises(PluginError, match="split messages"):
        recalc_objs_per_sync_msg(4, 4, OversizedMessageError(20_000, 10_000))
    with pytest.raises(ValueError, match="other"):
        recalc_objs_per_sync_msg(100, 100, ValueError("other"))
