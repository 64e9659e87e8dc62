"""What the stub learns of the runtime (NRI versions) and how plugin commands end or retry:
a Shutdown ends a ``--reconnect`` command cleanly, a refused registration is retried."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _runtime_peer import ScriptedRuntime, running

from nri.api import NRI_VERSION, UNKNOWN_VERSION
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime
from nri.stub import Plugin, RegistrationRefusedError, Stub

TEMPLATE = [sys.executable, "-m", "nri_template"]


class Seer(Plugin):
    """Records what its handlers see of the runtime through ``self.stub``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str, str]] = []

    def _look(self, where: str) -> None:
        assert self.stub is not None
        stub = self.stub
        self.seen.append(
            (
                where,
                stub.runtime_name,
                stub.runtime_version,
                stub.runtime_nri_version,
                stub.plugin_nri_version,
            )
        )

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        self._look("configure")

    def create_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._look("create_container")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are limited to 107 bytes: not under tmp_path
    with tempfile.TemporaryDirectory(prefix="nri-end-") as directory:
        yield Path(directory)


# -- NRI versions -----------------------------------------------------------------------------


async def test_nri_versions_reach_the_plugins_handlers() -> None:
    plugin = Seer()
    async with MockRuntime(runtime_name="mockd", runtime_version="9.9") as runtime:
        stub = Stub(plugin, name="seer", idx="10", socket_path=runtime.socket_path, environ={})
        assert stub.runtime_nri_version == "unknown"
        assert stub.plugin_nri_version == NRI_VERSION
        task = asyncio.create_task(stub.run())
        async with running(task):
            await runtime.wait_for_plugins(names=["10-seer"])
            pod = await runtime.run_pod("web")
            await runtime.create_container(pod, "app")
            assert stub.runtime_nri_version == NRI_VERSION
    expected = ("mockd", "9.9", NRI_VERSION, NRI_VERSION)
    assert plugin.seen == [("configure", *expected), ("create_container", *expected)]


@pytest.mark.parametrize(
    ("sent", "runtime", "version", "expected"),
    [
        ("", "scripted", "1.0", "unknown"),
        ("", "containerd", "v2.2.0", "v0.10.0"),
        (UNKNOWN_VERSION, "containerd", "v1.7.14", "v0.6.0"),
        (UNKNOWN_VERSION, "scripted", "1.0", UNKNOWN_VERSION),
        ("(devel)", "scripted", "1.0", "(devel)"),
        ("v0.9.0", "containerd", "v2.2.0", "v0.9.0"),
    ],
)
async def test_runtime_nri_version_as_sent_else_inferred(
    short_dir: Path, sent: str, runtime: str, version: str, expected: str
) -> None:
    plugin = Seer()
    async with ScriptedRuntime(short_dir / "nri.sock") as scripted:
        stub = Stub(plugin, name="seer", idx="10", socket_path=scripted.path, environ={})
        task = asyncio.create_task(stub.run())
        async with running(task):
            conn = await scripted.connections.get()
            await conn.registered
            request = pb.ConfigureRequest(
                runtime_name=runtime, runtime_version=version, NRI_version=sent
            )
            await conn.call("Configure", request, pb.ConfigureResponse)
            assert stub.runtime_nri_version == expected
            assert plugin.seen == [("configure", runtime, version, expected, NRI_VERSION)]


# -- plugin commands: Shutdown and refused registrations -----------------------------------


@contextlib.asynccontextmanager
async def command(socket: str, log: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The template plugin command connecting to ``socket`` by itself, logging to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NRI_")}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *TEMPLATE,
            "--socket-path",
            socket,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def send_shutdown(runtime: MockRuntime, full_name: str) -> None:
    """Send Shutdown to one plugin through the runtime's connection to it."""
    (connection,) = [p for p in runtime.adaptation._plugins if p.name == full_name]
    await connection._call("Shutdown", pb.Empty(), pb.Empty)


async def wait_for_line(log: Path, text: str, count: int = 1) -> str:
    while log.read_text().count(text) < count:
        await asyncio.sleep(0.05)
    return log.read_text()


@pytest.mark.timeout(60)
async def test_shutdown_ends_a_reconnecting_command_cleanly(short_dir: Path) -> None:
    log = short_dir / "plugin.log"
    socket = str(short_dir / "nri.sock")
    async with (
        MockRuntime(socket_path=socket) as runtime,
        command(socket, log, "--idx", "10", "--reconnect") as process,
    ):
        await runtime.wait_for_plugins(names=["10-template"], timeout=20)
        await send_shutdown(runtime, "10-template")
        code = await asyncio.wait_for(process.wait(), 20)
    text = log.read_text()
    assert code == 0, text
    assert "shutdown requested" in text  # the template plugin's shutdown handler
    assert "reconnecting" not in text
    assert "registering plugin 10-template" in text and text.count("registering plugin") == 1
    assert "Traceback" not in text


@pytest.mark.timeout(90)
async def test_refused_registration_is_retried_with_backoff(short_dir: Path) -> None:
    first_log, second_log = short_dir / "first.log", short_dir / "second.log"
    refused = 'runtime refused plugin 10-template: plugin "10-template" is already registered'
    async with MockRuntime(socket_path=short_dir / "nri.sock") as runtime:
        socket = runtime.socket_path
        async with command(socket, first_log, "--idx", "10", "--reconnect") as first:
            (holder,) = await runtime.wait_for_plugins(names=["10-template"], timeout=20)
            async with command(socket, second_log, "--idx", "10", "--reconnect") as second:
                text = await asyncio.wait_for(wait_for_line(second_log, refused, 2), 30)
                assert second.returncode is None, text
                warnings = [line for line in text.splitlines() if refused in line]
                assert "retrying in 0.5s (attempt 1)" in warnings[0]
                assert "retrying in 1.0s (attempt 2)" in warnings[1]
                assert all(" WARNING " in line for line in warnings)
                # one line per attempt: nothing else is logged for a refused attempt
                assert text.count("registering plugin") == 1
                assert "connection to the runtime lost" not in text
                await send_shutdown(runtime, "10-template")
                assert await asyncio.wait_for(first.wait(), 20) == 0
                # the name is free again: the retrying command takes it
                async with asyncio.timeout(30):
                    while not [p for p in runtime.plugins if p.pid == second.pid]:
                        await asyncio.sleep(0.05)
                assert [p.full_name for p in runtime.plugins] == ["10-template"]
                assert second.returncode is None
    assert holder.pid == first.pid
    assert "Traceback" not in second_log.read_text()


async def test_refused_registration_without_reconnect_raises(short_dir: Path) -> None:
    async with MockRuntime(socket_path=short_dir / "nri.sock") as runtime:
        await runtime.add_plugin(Seer(), name="seer", idx="10")
        stub = Stub(Seer(), name="seer", idx="10", socket_path=runtime.socket_path, environ={})
        with pytest.raises(RegistrationRefusedError, match="already registered"):
            await stub.run()


class Stubborn(Plugin):
    """A shutdown handler that fails or takes long."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.shut_down = asyncio.Event()

    async def shutdown(self) -> None:
        self.shut_down.set()
        if self.fail:
            raise RuntimeError("cannot shut down")
        await asyncio.sleep(3600)

    def create_container(self, pod, container):  # type: ignore[no-untyped-def]
        return None


@pytest.mark.parametrize("fail", [True, False], ids=["failing", "slow"])
async def test_shutdown_ends_a_reconnecting_stub_whatever_its_handler_does(
    short_dir: Path, fail: bool
) -> None:
    plugin = Stubborn(fail)
    async with MockRuntime(socket_path=short_dir / "nri.sock") as runtime:
        stub = Stub(
            plugin,
            name="stubborn",
            idx="10",
            socket_path=runtime.socket_path,
            environ={},
            reconnect=True,
            reconnect_delay=0.01,
        )
        task = asyncio.create_task(stub.run())
        async with running(task):
            await runtime.wait_for_plugins(names=["10-stubborn"])
            shutdown = asyncio.create_task(send_shutdown(runtime, "10-stubborn"))
            await plugin.shut_down.wait()
            if not fail:
                # the runtime gives up waiting and closes the connection
                (connection,) = runtime.adaptation._plugins
                connection.close()
            await asyncio.wait_for(asyncio.shield(task), 20)  # run() returned: no reconnect
            assert task.exception() is None
            with contextlib.suppress(Exception):
                await shutdown


@pytest.mark.timeout(60)
async def test_runtime_sending_shutdown_on_close_ends_a_reconnecting_command(
    short_dir: Path,
) -> None:
    log = short_dir / "plugin.log"
    socket = str(short_dir / "nri.sock")
    async with command(socket, log, "--idx", "10", "--reconnect") as process:
        async with MockRuntime(socket_path=socket, shutdown_plugins=True) as runtime:
            await runtime.wait_for_plugins(names=["10-template"], timeout=20)
        code = await asyncio.wait_for(process.wait(), 20)
    text = log.read_text()
    assert code == 0, text
    assert "shutdown requested" in text
    assert "reconnecting" not in text
