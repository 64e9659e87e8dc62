"""``nri-mock-runtime serve`` driven through stdin, with plugins over real sockets."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

SCENARIOS = Path(__file__).parent / "mock_scenarios"
PLUGIN = [sys.executable, str(SCENARIOS / "scenario_plugin.py")]


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nri.mock", "serve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_commands_from_stdin() -> None:
    plugin = " ".join([*PLUGIN, "--idx", "10", "--name", "envs", "--env", "FOO=bar"])
    commands = "\n".join(
        [
            "# comments and blank lines are skipped",
            "",
            "run-pod web --namespace shop --label app=web",
            "create-container web app --env A=1 --mount /src:/dst:ro -- sleep inf",
            "update-container app {cpu: {shares: 512}}",
            "{start-container: app, expect: {spec: [{path: /process/args/1, equals: inf}]}}",
            "{stop-container: app, expect: {error: never}}",
            "list",
            "show app /process/env",
            "show app /nothing",
            "show app process",
            "plugins",
            "bogus",
            "create-container web x --env NOVALUE",
            "update-container app {cpu: {shares: x}}",
            "sleep soon",
            f"load {SCENARIOS / 'failing.yaml'}",
            "remove-pod web",
            "quit",
            "run-pod never-reached",
        ]
    )
    process = serve("--plugin", plugin)
    out, err = process.communicate(commands, timeout=60)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("NRI socket: ")
    assert lines[0].endswith("/nri.sock")
    assert "  10-envs (external): CreateContainer" in lines
    assert "run-pod web" in lines
    assert "  RunPodSandbox web" in lines
    assert "    10-envs set Env FOO" in lines
    assert "  UpdateContainer web/app" in lines
    assert '  ok    app: /process/args/1 equals "inf"' in lines
    assert "  FAIL  step.expect.error: fails with an error containing 'never': it succeeded" in (
        lines
    )
    assert "pod web (pod001-web, shop, ready)" in lines
    assert "  container app (ctr002-app, stopped)" in lines
    env = lines.index('  "A=1",')
    assert lines[env - 3 : env + 3] == [
        "[",
        '  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",',
        '  "HOSTNAME=web",',
        '  "A=1",',
        '  "FOO=bar"',
        "]",
    ]
    assert "error: /nothing: not in the spec of app" in lines
    assert "error: process: not in the spec of app" in lines
    assert "error: unknown command 'bogus'; type 'help'" in lines
    assert "error: --env 'NOVALUE': expected KEY=VALUE" in lines
    assert (
        "error: <command>: step.update-container.resources.cpu.shares: expected an integer, got str"
        in lines
    )
    assert "error: sleep 'soon': expected a number of seconds" in lines
    assert "failing: 5 steps, 3 failed" in lines
    assert "  RemovePodSandbox web" in lines
    assert "never-reached" not in out
    assert "runtime stopped" in err


def test_end_of_input_stops_cleanly() -> None:
    process = serve()
    out, err = process.communicate("help\n", timeout=30)
    assert process.returncode == 0
    assert "  load FILE            define a scenario's pods and containers and play its steps" in (
        out.splitlines()
    )
    assert "plugins: none registered" in out.splitlines()
    assert "runtime stopped" in err


@pytest.mark.timeout(60)
def test_interrupt_stops_a_command_in_progress_and_the_plugins() -> None:
    plugin = " ".join([*PLUGIN, "--idx", "10", "--name", "envs"])
    process = serve("--plugin", plugin)
    try:
        assert process.stdin is not None
        lines = Lines(process)
        lines.wait_for("type 'help' for commands")
        plugins = psutil.Process(process.pid).children()
        assert len(plugins) == 1
        process.stdin.write("list\nsleep 600\n")
        process.stdin.flush()
        lines.wait_for("no pods")
        time.sleep(0.3)  # into the sleep
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        err = process.stderr.read()
        assert "stopping on SIGINT" in err
        assert "runtime stopped" in err
        assert not psutil.pid_exists(plugins[0].pid) or (
            plugins[0].status() == psutil.STATUS_ZOMBIE
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_scenario_option_exits_2(tmp_path: Path) -> None:
    process = serve("--scenario", str(SCENARIOS / "invalid.yaml"))
    _, err = process.communicate("", timeout=30)
    assert process.returncode == 2
    assert f"{SCENARIOS / 'invalid.yaml'}: containers.app.pod: unknown pod 'nowhere'" in err


class Lines:
    """Reads a process's stdout in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, wanted: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if wanted in line:
                return line
        raise AssertionError(f"no line with {wanted!r}; output so far:\n" + "\n".join(self.seen))


@pytest.mark.timeout(60)
def test_external_plugin_and_unsolicited_updates_are_shown() -> None:
    process = serve("--scenario", str(SCENARIOS / "passing.yaml"))
    plugin = None
    try:
        assert process.stdin is not None
        lines = Lines(process)
        socket_path = lines.wait_for("NRI socket: ").removeprefix("NRI socket: ")
        flags = ["--idx", "20", "--name", "late", "--env", "X=1", "--later-shares", "700"]
        plugin = subprocess.Popen(
            [*PLUGIN, *flags, "--socket-path", socket_path],
            stderr=subprocess.DEVNULL,
        )
        lines.wait_for("plugin 20-late registered")
        process.stdin.write("run-pod web\ncreate-container nginx\n")
        process.stdin.flush()
        assert lines.wait_for("CreateContainer ") == "  CreateContainer web-0/nginx"
        lines.wait_for("    20-late set Env X")
        # The plugin's update arrives after the command finished: printed as it happens.
        assert lines.wait_for("while idle") == "while idle"
        lines.wait_for("  UpdateContainers (requested by a plugin)")
        lines.wait_for('      +        "shares": 700')
        process.stdin.write("show legacy /process/args\nquit\n")
        process.stdin.flush()
        lines.wait_for('  "inf"')  # the scenario's existing container
        assert process.wait(timeout=20) == 0
        # The runtime closed the connection: the plugin ends on its own.
        assert plugin.wait(timeout=20) == 1
    finally:
        for proc in (process, plugin):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
