"""``nri-mock-runtime serve`` driven through stdin, with plugins over real sockets."""

from __future__ import annotations

import os
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


def test_terminal_gets_a_prompt_and_no_repeated_commands() -> None:
    main, secondary = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "nri.mock", "serve"],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(secondary)
    try:
        os.write(main, b"run-pod web\nlist\n")
        time.sleep(0.5)
        os.write(main, b"\x04")  # end of input at the prompt
        out, err = process.communicate(timeout=30)
    finally:
        os.close(main)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    assert "nri> " in out
    # The terminal shows what was typed: the command is not printed again as a heading.
    assert "run-pod web" not in lines
    assert "nri>   RunPodSandbox web" in lines
    assert "nri> pod web (pod001-web, default, ready)" in lines
    assert "runtime stopped" in err


def test_piped_input_gets_no_prompt() -> None:
    process = serve()
    out, _ = process.communicate("run-pod web\n", timeout=30)
    assert "nri> " not in out
    assert "run-pod web" in out.splitlines()


def test_loading_a_scenario_twice_reuses_its_pods_and_refuses_a_second_run_pod(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "twice.yaml"
    scenario.write_text(
        "pods: {web: {}, db: {}}\n"
        "containers: {app: {pod: web}, pg: {pod: db}}\n"
        "existing: {pods: [db], containers: [pg]}\n"
        "steps:\n"
        "  - run-pod: web\n"
        "  - create-container: app\n"
    )
    process = serve("--scenario", str(scenario))
    out, err = process.communicate(f"load {scenario}\nload {scenario}\nlist\n", timeout=30)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    assert lines.count("pod db exists already: the scenario's steps act on it") == 2
    assert lines.count("container db/pg exists already: the scenario's steps act on it") == 2
    assert "twice: 2 steps, 0 failed" in lines
    assert any(
        line.startswith("  FAIL  ")
        and line.endswith(
            "pod name 'web' in namespace 'default' is taken by pod pod003-web (ready): "
            "remove that pod first, or choose another name"
        )
        for line in lines
    )
    # create-container app then acts on the one pod web (a second app, as after a restart).
    assert "twice: 2 steps, 1 failed" in lines
    listed = [line for line in lines if line.startswith("pod ") and line.endswith(")")]
    assert [line.split(" (")[0] for line in listed] == ["pod db", "pod web"]
    containers = [line.split(" (")[0] for line in lines if line.startswith("  container ")]
    assert containers == ["  container pg", "  container app", "  container app"]


def test_serve_profile_and_a_scenario_written_for_another(tmp_path: Path) -> None:
    scenario = tmp_path / "crio.yaml"
    scenario.write_text(
        "profile: cri-o\npods: {p: }\ncontainers: {c: {pod: p}}\n"
        "steps:\n  - run-pod: p\n  - create-container: c\n"
        "    expect: {spec: [{path: /process/env, contains: TERM=xterm}]}\n"
    )
    process = serve()
    out, err = process.communicate(f"load {scenario}\n", timeout=30)
    assert "runtime profile: containerd" in err
    lines = out.splitlines()
    assert "crio is written for cri-o; this runtime behaves as containerd (--profile)" in lines
    assert "crio: 2 steps, 1 failed" in lines
    process = serve("--profile", "cri-o")
    out, err = process.communicate(f"load {scenario}\n", timeout=30)
    assert "runtime profile: cri-o" in err
    assert "crio: 2 steps, 0 failed" in out.splitlines()
    assert "is written for" not in out
