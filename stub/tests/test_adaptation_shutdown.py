"""Shutdown on stop/close (opt-in) and zero-downtime replacement of a plugin."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from _adaptation_helpers import (
    FakeRuntime,
    RawPlugin,
    config_for,
    create_request,
    env_of,
    install_plugin,
    plugin_process,
    read_lines,
)

from nri.adaptation import PluginInfo
from nri.api import api_pb2 as pb


@pytest.mark.timeout(30)
async def test_close_sends_shutdown_and_the_plugin_exits_zero(tmp_path: Path) -> None:
    config = config_for(tmp_path, shutdown_plugins=True)
    record = tmp_path / "record"
    nri = FakeRuntime().adaptation(config)
    await nri.start()
    async with plugin_process(
        config.socket_path, "10", "rec", f"record: {record}\n", tmp_path
    ) as proc:
        await nri.wait_for_plugins(names=["10-rec"])
        await nri.close()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert read_lines(record)[-1] == "Shutdown"


@pytest.mark.timeout(30)
async def test_stop_sends_shutdown_to_launched_plugins_before_stopping_them(
    tmp_path: Path,
) -> None:
    record = tmp_path / "record"
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10-rec.conf").write_text(f"record: {record}\n")
    install_plugin(tmp_path / "plugins", "10-rec")
    config = config_for(tmp_path, shutdown_plugins=True, disable_connections=True)
    async with FakeRuntime().adaptation(config) as nri:
        await nri.wait_for_plugins(names=["10-rec"])
        await nri.stop()
    assert read_lines(record)[-1] == "Shutdown"


@pytest.mark.timeout(30)
async def test_without_the_option_no_shutdown_is_sent(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with (
        FakeRuntime().adaptation(config) as nri,
        RawPlugin(config.socket_path, name="raw") as raw,
    ):
        await raw.register()
        await nri.wait_for_plugins(names=["50-raw"])
        await nri.close()
        assert "Shutdown" not in raw.called()


@pytest.mark.timeout(30)
async def test_a_plugin_that_does_not_answer_shutdown_is_closed_after_the_timeout(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path, shutdown_plugins=True, shutdown_timeout=0.3)

    async def never(_: pb.Empty) -> pb.Empty:
        await asyncio.sleep(3600)
        return pb.Empty()

    nri = FakeRuntime().adaptation(config)
    await nri.start()
    async with RawPlugin(config.socket_path, name="mute", handlers={"Shutdown": never}) as raw:
        await raw.register()
        await nri.wait_for_plugins(names=["50-mute"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        await nri.close()
        assert loop.time() - started < 5
        assert raw.called()[-1] == "Shutdown"
        assert raw.mux is not None
        await asyncio.wait_for(raw.mux.wait_closed(), 5)


# -- zero-downtime replacement ---------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("per_pod", [False, True], ids=["serialized", "per-pod"])
async def test_new_instance_takes_over_after_sync_and_the_old_one_gets_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, per_pod: bool
) -> None:
    caplog.set_level(logging.INFO, "nri.adaptation")
    config = config_for(tmp_path, replace_plugins=True, per_pod_concurrency=per_pod)
    registered: list[PluginInfo] = []
    closed: list[PluginInfo] = []
    old_record, new_record = tmp_path / "old", tmp_path / "new"
    runtime = FakeRuntime()
    async with (
        runtime.adaptation(
            config, on_plugin_registered=registered.append, on_plugin_closed=closed.append
        ) as nri,
        plugin_process(config.socket_path, "10", "rec", f"record: {old_record}\n", tmp_path) as old,
    ):
        await nri.wait_for_plugins(names=["10-rec"])
        await nri.create_container(create_request("before"))
        async with plugin_process(
            config.socket_path, "10", "rec", f"record: {new_record}\n", tmp_path
        ) as new:
            sent_during: list[str] = []

            async def create_until_replaced(pod: int) -> None:
                # Several pods at once: with per-pod concurrency their events overlap.
                while [p.pid for p in nri.plugins] != [new.pid]:
                    cid = f"during-{pod}-{len(sent_during)}"
                    request = create_request(cid)
                    request.pod.id = request.container.pod_sandbox_id = f"pod{pod}"
                    await nri.create_container(request)
                    sent_during.append(cid)
                    await asyncio.sleep(0.005)

            await asyncio.wait_for(
                asyncio.gather(*(create_until_replaced(pod) for pod in range(4))), 15
            )
            created = await nri.create_container(create_request("after"))
            assert env_of(created) == {"ADDED_BY_10": "10-rec"}
            assert await asyncio.wait_for(old.wait(), 10) == 0
            assert [p.pid for p in nri.plugins] == [new.pid]
    old_lines, new_lines = read_lines(old_record), read_lines(new_record)
    assert old_lines[-1] == "Shutdown"
    assert "CreateContainer before" in old_lines
    assert "CreateContainer after" in new_lines
    assert "CreateContainer after" not in old_lines
    # Each "during" creation went to exactly one of them: none skipped, none doubled.
    got = [line.split()[1] for line in old_lines + new_lines if "CreateContainer during" in line]
    assert sorted(got) == sorted(sent_during)
    assert len(sent_during) >= 4
    assert new_lines.index("Synchronize 1 1") < new_lines.index("CreateContainer after")
    assert [i.pid for i in registered] == [old.pid, new.pid]
    assert [i.pid for i in closed][:1] == [old.pid]
    assert any("replaced by external:10-rec" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(30)
async def test_duplicate_is_refused_without_the_option(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with (
        FakeRuntime().adaptation(config) as nri,
        RawPlugin(config.socket_path, name="dup") as first,
    ):
        await first.register()
        await nri.wait_for_plugins(names=["50-dup"])
        async with RawPlugin(config.socket_path, name="dup") as second:
            with pytest.raises(Exception, match="already registered"):
                await second.register()
        assert len(nri.plugins) == 1


@pytest.mark.timeout(30)
async def test_failed_replacement_leaves_the_old_plugin_serving(tmp_path: Path) -> None:
    config = config_for(tmp_path, replace_plugins=True)

    async def refuse_sync(_: pb.SynchronizeRequest) -> pb.SynchronizeResponse:
        raise RuntimeError("cannot sync")

    async with (
        FakeRuntime().adaptation(config) as nri,
        RawPlugin(config.socket_path, name="svc", events=1 << 3) as first,
    ):
        await first.register()
        await nri.wait_for_plugins(names=["50-svc"])
        async with RawPlugin(
            config.socket_path, name="svc", handlers={"Synchronize": refuse_sync}
        ) as second:
            await second.register()
            assert second.mux is not None
            await asyncio.wait_for(second.mux.wait_closed(), 5)
        assert len(nri.plugins) == 1
        await nri.create_container(create_request("c1"))
        assert "CreateContainer" in first.called()
        # The name is still held: a third one replaces the first, not joins it.
        async with RawPlugin(config.socket_path, name="svc", events=1 << 3) as third:
            await third.register()

            assert first.mux is not None
            await asyncio.wait_for(first.mux.wait_closed(), 5)
            assert len(nri.plugins) == 1
            assert "Shutdown" in first.called()
