"""The adaptation's listening socket and the registration of external plugins."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest
from _adaptation_helpers import FakeRuntime, RawPlugin, config_for

from nri.adaptation import Adaptation, AdaptationError, Config
from nri.ttrpc import StatusError


@pytest.mark.timeout(20)
async def test_socket_dir_and_file_are_owner_only(tmp_path: Path) -> None:
    config = config_for(tmp_path, socket_path=str(tmp_path / "run" / "nri" / "nri.sock"))
    async with FakeRuntime().adaptation(config):
        sock_mode = os.stat(config.socket_path).st_mode
        assert stat.S_ISSOCK(sock_mode)
        assert stat.S_IMODE(sock_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "run" / "nri").st_mode) == 0o700


@pytest.mark.timeout(20)
async def test_live_socket_in_use_is_an_error(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with FakeRuntime().adaptation(config) as first:
        second = FakeRuntime().adaptation(config)
        with pytest.raises(AdaptationError, match=r"nri\.sock.*in use"):
            await second.start()
        # The first one still serves.
        async with RawPlugin(config.socket_path) as raw:
            await raw.register()
            await first.wait_for_plugins(1)


@pytest.mark.timeout(20)
async def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    Path(config.socket_path).parent.mkdir(mode=0o700, parents=True)
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(config.socket_path)
    old.close()  # leaves the file behind, nobody listening
    assert Path(config.socket_path).exists()
    async with FakeRuntime().adaptation(config) as nri, RawPlugin(config.socket_path) as raw:
        await raw.register()
        await nri.wait_for_plugins(1)


@pytest.mark.timeout(20)
async def test_external_connections_refused_when_disabled(tmp_path: Path) -> None:
    config = config_for(tmp_path, disable_connections=True)
    async with FakeRuntime().adaptation(config):
        assert not Path(config.socket_path).exists()
        with pytest.raises(OSError):
            await RawPlugin(config.socket_path).connect()


@pytest.mark.timeout(20)
async def test_silent_client_is_closed_after_registration_timeout(tmp_path: Path) -> None:
    config = config_for(tmp_path, registration_timeout=0.3)
    async with FakeRuntime().adaptation(config) as nri:
        reader, writer = await asyncio.open_unix_connection(config.socket_path)
        try:
            assert await reader.read() == b""  # EOF: the runtime closed it
        finally:
            writer.close()
        assert nri.plugins == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("name", "idx", "message"),
    [("bad name", "10", "invalid plugin name"), ("ok", "1", "invalid plugin index")],
)
async def test_invalid_name_or_index_is_refused(
    tmp_path: Path, name: str, idx: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(tmp_path)
    async with FakeRuntime().adaptation(config) as nri:
        async with RawPlugin(config.socket_path, name=name, idx=idx) as raw:
            with pytest.raises(StatusError, match=message):
                await raw.register()
            assert raw.mux is not None
            await asyncio.wait_for(raw.mux.wait_closed(), 5)
            assert raw.called() == []
        assert nri.plugins == []
    assert any("invalid" in r.getMessage() for r in caplog.records)


def test_config_defaults_match_upstream() -> None:
    config = Config()
    assert config.socket_path == "/var/run/nri/nri.sock"
    assert config.plugin_path == "/opt/nri/plugins"
    assert config.plugin_config_path == "/etc/nri/conf.d"
    assert (config.registration_timeout, config.request_timeout) == (5.0, 2.0)
    assert config.disable_connections is False
    assert config.default_validator is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"request_timeout": 0}, "request_timeout"),
        ({"registration_timeout": -1}, "registration_timeout"),
        ({"socket_path": "/x" * 80}, "too long"),
    ],
)
async def test_bad_config_is_refused(overrides: dict[str, object], message: str) -> None:
    runtime = FakeRuntime()
    with pytest.raises(AdaptationError, match=message):
        Adaptation(Config(**overrides), sync=runtime.sync, update=runtime.update)  # type: ignore[arg-type]


@pytest.mark.timeout(20)
async def test_blocked_plugin_sync_holds_registration(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    async with runtime.adaptation(config) as nri, RawPlugin(config.socket_path) as raw:
        async with nri.block_plugin_sync():
            await raw.register()
            while "Configure" not in raw.called():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert raw.called() == ["Configure"]
            assert runtime.syncs == 0
            assert nri.plugins == []
        await nri.wait_for_plugins(1)
        assert raw.called() == ["Configure", "Synchronize"]


@pytest.mark.timeout(20)
async def test_wait_for_plugins_times_out_naming_the_missing(tmp_path: Path) -> None:
    async with FakeRuntime().adaptation(config_for(tmp_path)) as nri:
        with pytest.raises(TimeoutError, match=r"\['10-missing'\] not registered"):
            await nri.wait_for_plugins(names=["10-missing"], timeout=0.1)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["file", "symlink", "fifo"])
async def test_non_socket_at_the_socket_path_is_left_alone(tmp_path: Path, kind: str) -> None:
    config = config_for(tmp_path)
    path = Path(config.socket_path)
    path.parent.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    if kind == "file":
        path.write_text("precious\n")
    elif kind == "symlink":
        path.symlink_to(victim)
    else:
        os.mkfifo(path)
    with pytest.raises(AdaptationError, match=r"nri\.sock.* is not a socket"):
        await FakeRuntime().adaptation(config).start()
    assert os.path.lexists(path)
    assert victim.read_text() == "precious\n"
    if kind == "file":
        assert path.read_text() == "precious\n"
    if kind == "symlink":
        assert path.is_symlink()
        assert stat.S_IMODE(victim.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", [0o777, 0o770])
async def test_socket_dir_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    config = config_for(tmp_path)
    parent = Path(config.socket_path).parent
    parent.mkdir()
    parent.chmod(mode)
    with pytest.raises(AdaptationError, match=r"writable by (group|others)"):
        await FakeRuntime().adaptation(config).start()
    assert not Path(config.socket_path).exists()


@pytest.mark.timeout(20)
async def test_socket_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    config = config_for(tmp_path)
    parent = Path(config.socket_path).parent
    parent.mkdir(mode=0o700)
    os.chown(parent, 65534, 65534)
    with pytest.raises(AdaptationError, match=r"owned by uid 65534"):
        await FakeRuntime().adaptation(config).start()


@pytest.mark.timeout(20)
async def test_sticky_root_owned_socket_dir_is_accepted(tmp_path: Path) -> None:
    # Like /tmp: others may add entries but cannot replace ours.
    config = config_for(tmp_path)
    parent = Path(config.socket_path).parent
    parent.mkdir()
    parent.chmod(0o1777)
    async with FakeRuntime().adaptation(config) as nri, RawPlugin(config.socket_path) as raw:
        await raw.register()
        await nri.wait_for_plugins(1)
