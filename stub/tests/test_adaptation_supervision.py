"""Supervised pre-installed plugins: relaunch with backoff, output capture, graceful stop.

The plugins are real processes: Python scripts on nri.stub, run through a shebang naming
this interpreter, installed in a temporary plugin directory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _adaptation_helpers import FakeRuntime, config_for, create_request, env_of, pid_alive

from nri.adaptation import Adaptation, AdaptationError, Config
from nri.adaptation._supervisor import RestartBackoff, describe_exit

# Appends its pid to LAUNCHES, writes one line to stdout and one to stderr, then serves.
# Instances before STAY_FROM exit with status 3 right after their Synchronize reply (the
# script first deletes its own file if DELETE_SELF). Each instance adds INSTANCE=<n> to
# the containers it sees created.
FLAKY = """
import asyncio, os, sys
from nri.api import Adjustment
from nri.stub import Plugin, Stub

with open(LAUNCHES, "a") as f:
    f.write(f"{os.getpid()}\\n")
with open(LAUNCHES) as f:
    instance = len(f.read().splitlines())
print(f"out of instance {instance}", flush=True)
print(f"err of instance {instance}", file=sys.stderr, flush=True)


class Flaky(Plugin):
    def synchronize(self, pods, containers):
        if instance < STAY_FROM:
            if DELETE_SELF:
                os.unlink(__file__)
            asyncio.get_running_loop().call_later(0.1, os._exit, 3)

    def create_container(self, pod, container):
        return Adjustment().add_env("INSTANCE", str(instance))


async def main():
    try:
        await Stub(Flaky()).run()
    except Exception:
        pass


asyncio.run(main())
"""

# Serves until its connection closes, then waits for SIGTERM; each SIGTERM appends a line
# to MARKER, and ends the process if EXIT_ON_TERM (otherwise only SIGKILL does).
STUBBORN = """
import asyncio, signal
from nri.stub import Plugin, Stub


class Quiet(Plugin):
    def run_pod_sandbox(self, pod):
        pass


async def main():
    done = asyncio.Event()

    def on_term():
        with open(MARKER, "a") as f:
            f.write("SIGTERM\\n")
        if EXIT_ON_TERM:
            done.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
    try:
        await Stub(Quiet()).run()
    except Exception:
        pass
    await done.wait()


asyncio.run(main())
"""

RESTART = re.compile(
    r"restarting pre-installed NRI plugin (\S+) in (\S+)s \(restart (\d+)\): pid \d+ (.*)"
)


def install_script(plugin_dir: Path, filename: str, body: str, **params: object) -> Path:
    """Install ``body`` as an executable Python script, ``params`` assigned at its top."""
    plugin_dir.mkdir(parents=True, exist_ok=True)
    plugin_dir.chmod(0o755)
    header = "".join(f"{name} = {value!r}\n" for name, value in params.items())
    path = plugin_dir / filename
    path.write_text(f"#!{sys.executable}\n{header}{body}")
    path.chmod(0o755)
    return path


def install_flaky(
    tmp_path: Path, *, stay_from: int, delete_self: bool = False
) -> tuple[Path, Path]:
    launches = tmp_path / "launches"
    script = install_script(
        tmp_path / "plugins",
        "10-flaky",
        FLAKY,
        LAUNCHES=str(launches),
        STAY_FROM=stay_from,
        DELETE_SELF=delete_self,
    )
    return script, launches


def pids(launches: Path) -> list[int]:
    return [int(line) for line in launches.read_text().split()] if launches.exists() else []


async def wait_for(done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"after {timeout:g}s still waiting for {what}")


def messages(caplog: pytest.LogCaptureFixture, logger: str = "nri.adaptation") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def restarts(caplog: pytest.LogCaptureFixture) -> list[tuple[str, ...]]:
    """(name, delay, count, why) of each logged restart."""
    found = (RESTART.fullmatch(m) for m in messages(caplog))
    return [m.groups() for m in found if m is not None]


def registered_as(nri: Adaptation, pid: int) -> bool:
    return [(i.full_name, i.pid) for i in nri.plugins] == [("10-flaky", pid)]


def supervised(tmp_path: Path, **overrides: object) -> Config:
    settings: dict[str, object] = {"disable_connections": True, "restart_plugins": True}
    settings.update(overrides)
    return config_for(tmp_path, **settings)


# -- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_maximum_and_resets_after_a_long_run() -> None:
    backoff = RestartBackoff(0.5, 30.0)
    assert [backoff.next_delay(1.0) for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(59.0) == 30  # up for less than twice the maximum
    assert backoff.next_delay(60.0) == 0.5
    assert backoff.next_delay(0.0) == 1
    assert backoff.restarts == 11
    assert RestartBackoff(5.0, 2.0).next_delay(0.0) == 2.0  # the maximum caps the first one


def test_exit_statuses_are_told_apart() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"


@pytest.mark.parametrize("field", ["restart_backoff", "restart_backoff_max", "plugin_stop_grace"])
def test_negative_durations_are_refused(tmp_path: Path, field: str) -> None:
    config = config_for(tmp_path, **{field: -1.0})
    with pytest.raises(AdaptationError, match=f"Config.{field} must not be negative"):
        config.check()
    config_for(tmp_path, **{field: 0.0}).check()


# -- restart -------------------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_exiting_plugin_is_relaunched_with_growing_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    _, launches = install_flaky(tmp_path, stay_from=4)
    runtime = FakeRuntime()
    registered: list[int | None] = []
    config = supervised(tmp_path, restart_backoff=0.1, restart_backoff_max=10.0)
    nri = runtime.adaptation(config, on_plugin_registered=lambda i: registered.append(i.pid))
    await nri.start()
    try:
        await wait_for(
            lambda: len(pids(launches)) == 4 and registered_as(nri, pids(launches)[3]),
            "the fourth instance to register",
        )
        assert [(name, delay, n) for name, delay, n, _ in restarts(caplog)] == [
            ("10-flaky", "0.1", "1"),
            ("10-flaky", "0.2", "2"),
            ("10-flaky", "0.4", "3"),
        ]
        assert {why for *_, why in restarts(caplog)} == {"exited with status 3"}
        # The last instance was registered, configured and synchronized like a late plugin.
        assert registered[-1] == pids(launches)[3]
        assert runtime.syncs >= 2
        response = await nri.create_container(create_request())
        assert env_of(response) == {"INSTANCE": "4"}
    finally:
        await nri.close()
    assert not any(pid_alive(pid) for pid in pids(launches))
    # Both output streams of every instance, restarted ones included, reach the log.
    output = messages(caplog, "nri.adaptation.plugin")
    for n in (1, 2, 3):
        assert f"[10-flaky] out of instance {n}" in output
        assert f"[10-flaky] err of instance {n}" in output


@pytest.mark.timeout(30)
async def test_restart_is_off_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    _, launches = install_flaky(tmp_path, stay_from=99)
    config = config_for(tmp_path, disable_connections=True)
    assert config.restart_plugins is False
    nri = FakeRuntime().adaptation(config)
    await nri.start()
    try:
        exited = "pre-installed NRI plugin 10-flaky (pid {}) exited with status 3"
        await wait_for(
            lambda: exited.format(pids(launches)[0]) in messages(caplog), "the exit to be logged"
        )
        # The watcher logs either this exit or a restart: the plugin is just removed.
        assert restarts(caplog) == []
        assert nri.plugins == []
        assert len(pids(launches)) == 1
    finally:
        await nri.close()


@pytest.mark.timeout(30)
async def test_stop_cancels_a_pending_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    _, launches = install_flaky(tmp_path, stay_from=99)
    nri = FakeRuntime().adaptation(supervised(tmp_path, restart_backoff=0.5))
    await nri.start()
    try:
        await wait_for(lambda: restarts(caplog) != [], "a restart to be scheduled")
        await nri.stop()
        await asyncio.sleep(1.5)  # three times the delay of the cancelled restart
        assert len(pids(launches)) == 1
        assert len(restarts(caplog)) == 1
    finally:
        await nri.close()


@pytest.mark.timeout(30)
async def test_no_restart_after_close(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    _, launches = install_flaky(tmp_path, stay_from=2)
    nri = FakeRuntime().adaptation(supervised(tmp_path, restart_backoff=0.1))
    await nri.start()
    try:
        await wait_for(
            lambda: len(pids(launches)) == 2 and registered_as(nri, pids(launches)[1]),
            "the second instance to register",
        )
    finally:
        await nri.close()
    assert not pid_alive(pids(launches)[1])  # stopped by close(), and not relaunched
    await asyncio.sleep(0.5)  # five times the restart delay
    assert len(pids(launches)) == 2
    assert len(restarts(caplog)) == 1


@pytest.mark.timeout(30)
async def test_plugin_removed_from_the_directory_is_not_relaunched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    script, launches = install_flaky(tmp_path, stay_from=99, delete_self=True)
    nri = FakeRuntime().adaptation(supervised(tmp_path, restart_backoff=0.1))
    await nri.start()
    try:
        gone = "pre-installed NRI plugin 10-flaky is not restarted any more"
        await wait_for(lambda: gone in messages(caplog), "the relaunch to be given up")
        assert not script.exists()
        assert len(pids(launches)) == 1
        assert any(m.startswith("plugin 10-flaky is gone from ") for m in messages(caplog))
        assert nri.plugins == []
    finally:
        await nri.close()


# -- graceful stop -------------------------------------------------------------------------


@pytest.mark.timeout(30)
async def test_plugin_handling_sigterm_exits_within_the_grace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "marker"
    install_script(
        tmp_path / "plugins", "10-stubborn", STUBBORN, MARKER=str(marker), EXIT_ON_TERM=True
    )
    # A grace far beyond the test's timeout: close() returns only if the plugin exits.
    config = config_for(tmp_path, disable_connections=True, plugin_stop_grace=3600.0)
    nri = FakeRuntime().adaptation(config)
    await nri.start()
    try:
        [info] = nri.plugins
        assert info.pid is not None
    finally:
        await nri.close()
    assert marker.read_text() == "SIGTERM\n"
    assert not pid_alive(info.pid)
    assert not any("did not exit within" in m for m in messages(caplog))


@pytest.mark.timeout(30)
async def test_plugin_ignoring_sigterm_is_killed_after_the_grace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "marker"
    install_script(
        tmp_path / "plugins", "10-stubborn", STUBBORN, MARKER=str(marker), EXIT_ON_TERM=False
    )
    config = config_for(tmp_path, disable_connections=True, plugin_stop_grace=0.5)
    nri = FakeRuntime().adaptation(config)
    await nri.start()
    try:
        [info] = nri.plugins
        assert info.pid is not None
    finally:
        await nri.close()
    assert marker.read_text() == "SIGTERM\n"  # it got SIGTERM first, and stayed
    assert not pid_alive(info.pid)
    killed = f"plugin pre-connected:10-stubborn[{info.pid}] did not exit within 0.5s of SIGTERM"
    assert any(m.startswith(killed) for m in messages(caplog))
