"""Pre-installed plugins: discovery, launch with a socketpair, configuration, stop."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _adaptation_helpers import (
    FakeRuntime,
    config_for,
    create_request,
    env_of,
    install_plugin,
    pid_alive,
    read_lines,
)

from nri.adaptation import AdaptationError


@pytest.mark.timeout(30)
async def test_preinstalled_plugins_launch_with_their_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    plugins, conf = tmp_path / "plugins", tmp_path / "conf.d"
    conf.mkdir()
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    install_plugin(plugins, "10-first")
    install_plugin(plugins, "20-second")
    install_plugin(plugins, "badname")
    (plugins / "README").write_text("not executable, ignored\n")
    (conf / "10-first.conf").write_text(f"record: {first}\n")
    (conf / "first.conf").write_text("record: /nonexistent/never-used\n")
    (conf / "second.conf").write_text(f"record: {second}\n")
    runtime = FakeRuntime(pods=1, containers=2)
    config = config_for(tmp_path, disable_connections=True)
    nri = runtime.adaptation(config)
    await nri.start()
    try:
        infos = nri.plugins
        assert [(i.full_name, i.external) for i in infos] == [
            ("10-first", False),
            ("20-second", False),
        ]
        assert runtime.syncs == 1  # one SyncFn call for all pre-installed plugins
        assert read_lines(first) == [f"Configure record: {first}\\n", "Synchronize 1 2"]
        assert read_lines(second) == [f"Configure record: {second}\\n", "Synchronize 1 2"]
        response = await nri.create_container(create_request())
        assert env_of(response) == {"ADDED_BY_10": "10-first", "ADDED_BY_20": "20-second"}
        pids = [i.pid for i in infos]
        assert all(pid is not None and pid_alive(pid) for pid in pids)
    finally:
        await nri.close()
    assert not any(pid is not None and pid_alive(pid) for pid in pids)  # killed and reaped
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("badname" in w for w in warnings)
    assert not any("README" in w for w in warnings)


@pytest.mark.timeout(30)
async def test_preinstalled_plugin_that_exits_is_reported_and_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    install_plugin(plugins, "10-quitter", body="exit 3")
    install_plugin(plugins, "20-stays")
    config = config_for(tmp_path, disable_connections=True)
    nri = FakeRuntime().adaptation(config)
    await nri.start()
    try:
        assert [i.full_name for i in nri.plugins] == ["20-stays"]
    finally:
        await nri.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("10-quitter" in w for w in warnings)


@pytest.mark.timeout(30)
async def test_preinstalled_plugin_dying_later_is_removed(tmp_path: Path) -> None:
    plugins, conf = tmp_path / "plugins", tmp_path / "conf.d"
    conf.mkdir()
    install_plugin(plugins, "10-dier")
    (conf / "dier.conf").write_text("mode: die\n")
    closed: list[str] = []
    config = config_for(tmp_path, disable_connections=True)
    nri = FakeRuntime().adaptation(config, on_plugin_closed=lambda i: closed.append(i.full_name))
    await nri.start()
    try:
        assert [i.full_name for i in nri.plugins] == ["10-dier"]
        response = await nri.create_container(create_request())
        assert env_of(response) == {}
        assert nri.plugins == []
        assert closed == ["10-dier"]
    finally:
        await nri.close()


@pytest.mark.timeout(20)
async def test_failing_sync_fn_fails_start(tmp_path: Path) -> None:
    install_plugin(tmp_path / "plugins", "10-first")
    runtime = FakeRuntime()

    async def broken_sync() -> tuple[list[object], list[object]]:
        raise RuntimeError("state unavailable")

    config = config_for(tmp_path, disable_connections=True)
    nri = type(runtime.adaptation(config))(config, sync=broken_sync, update=runtime.update)  # type: ignore[arg-type]
    with pytest.raises(AdaptationError, match="state unavailable"):
        await nri.start()
    await nri.close()


@pytest.mark.timeout(20)
async def test_missing_plugin_dir_is_fine(tmp_path: Path) -> None:
    config = config_for(tmp_path, plugin_path=str(tmp_path / "nope"))
    async with FakeRuntime().adaptation(config) as nri:
        assert nri.plugins == []


@pytest.mark.timeout(20)
async def test_failed_start_kills_launched_plugins(tmp_path: Path) -> None:
    install_plugin(tmp_path / "plugins", "10-first")
    config = config_for(tmp_path)
    registered: list[int | None] = []
    async with FakeRuntime().adaptation(config):
        second = FakeRuntime().adaptation(
            config, on_plugin_registered=lambda info: registered.append(info.pid)
        )
        with pytest.raises(AdaptationError, match="in use"):
            await second.start()
        assert second.plugins == []
        assert len(registered) == 1
        assert registered[0] is not None and not pid_alive(registered[0])
