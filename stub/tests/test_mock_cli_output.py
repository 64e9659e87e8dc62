"""What plugin commands write to stderr, shown with the steps; external plugins and --wait-for."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_mock_cli_run import PLUGIN, cli

ECHO_PLUGIN = """\
import sys

from nri.stub import Plugin, run


class Echo(Plugin):
    def run_pod_sandbox(self, pod):
        print(f"pod {pod.name} runs", file=sys.stderr, flush=True)

    def create_container(self, pod, container):
        sys.stderr.write(f"creating {container.name}\\nsecond line")
        sys.stderr.write(" of it\\n")
        sys.stderr.flush()


sys.exit(run(Echo))
"""

SCENARIO = """\
pods: {web: {name: web-0}}
containers: {app: {pod: web}}
steps:
  - run-pod: web
  - create-container: app
  - start-container: app
"""


@pytest.fixture
def echo(tmp_path: Path) -> str:
    """The command of a plugin that tells on stderr which pods and containers it sees."""
    script = tmp_path / "echo_plugin.py"
    script.write_text(ECHO_PLUGIN)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --idx 10 --name echo"


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    path = tmp_path / "echo.yaml"
    path.write_text(SCENARIO)
    return str(path)


def test_plugin_output_follows_the_step_it_arrived_in(echo: str, scenario: str) -> None:
    done = cli("run", scenario, "--plugin", echo)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    connected = out.index("plugins connected (Synchronize: 0 pods, 0 containers)")
    run_pod, create, start = (out.index(f"[{n}] {s}  (steps[{n - 1}])") for n, s in (
        (1, "run-pod web"), (2, "create-container app"), (3, "start-container app"),
    ))  # fmt: skip
    assert any("10-echo | " in line and "registering plugin" in line for line in out[:run_pod])
    assert connected < run_pod
    assert out[run_pod + 1 : create] == ["  RunPodSandbox web-0", "  10-echo | pod web-0 runs"]
    assert out[create + 3 : start] == ["  10-echo | creating app", "  10-echo | second line of it"]
    assert not any(" | " in line for line in out[start:])

    hidden = cli("run", scenario, "--plugin", echo, "--no-plugin-output")
    assert hidden.returncode == 0, hidden.stderr
    assert " | " not in hidden.stdout
    assert "plugins connected" not in hidden.stdout  # nothing happened while connecting


def test_json_has_each_steps_plugin_output(echo: str, scenario: str) -> None:
    done = cli("run", scenario, "--plugin", echo, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [s["plugin_output"] for s in data["steps"]] == [
        [{"plugin": "10-echo", "line": "pod web-0 runs"}],
        [
            {"plugin": "10-echo", "line": "creating app"},
            {"plugin": "10-echo", "line": "second line of it"},
        ],
        [],
    ]
    startup = data["connected"]["plugin_output"]
    assert {line["plugin"] for line in startup} == {"10-echo"}
    assert any("registering plugin 10-echo" in line["line"] for line in startup)

    hidden = json.loads(
        cli("run", scenario, "--plugin", echo, "--json", "--no-plugin-output").stdout
    )
    assert [s["plugin_output"] for s in hidden["steps"]] == [[], [], []]


def test_external_plugin_registering_at_several_indices(tmp_path: Path, scenario: str) -> None:
    socket = str(tmp_path / "nri.sock")
    differ = (
        f"{shlex.quote(sys.executable)} -m nri_differ --name differ --indices 0,50,99 "
        f"--socket-path {shlex.quote(socket)}"
    )
    done = cli(
        "run", scenario, "--json", "--socket", socket,
        "--plugin", f"{PLUGIN} --idx 20 --name envs --env FOO=bar",
        "--external-plugin", differ, "--wait-for", "00-differ,50-differ,99-differ",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"starting {differ!r}, waiting up to 10s for it to connect and register" in done.stderr
    assert "waiting up to 10s for plugins 00-differ,50-differ,99-differ" in done.stderr
    data = json.loads(done.stdout)
    assert [p["full_name"] for p in data["plugins"]] == [
        "00-differ",
        "20-envs",
        "50-differ",
        "99-differ",
    ]
    create = [line["line"] for line in data["steps"][1]["plugin_output"]]
    assert {line["plugin"] for line in data["steps"][1]["plugin_output"]} == {"differ"}
    assert any(
        "[50] CreateContainer: container: create: env[" in line and "To: FOO=bar" in line
        for line in create
    ), create
    assert any("[99] CreateContainer: container: <no changes>" in line for line in create)


def test_external_plugin_and_wait_for_errors(tmp_path: Path, echo: str, scenario: str) -> None:
    done = cli("run", scenario, "--external-plugin", echo)
    assert done.returncode == 2
    assert "--external-plugin needs --socket PATH" in done.stderr
    done = cli("run", scenario, "--wait-for", " , ")
    assert done.returncode == 2
    assert "--wait-for ' , ': expected plugin names (a,b) or a number" in done.stderr

    done = cli("run", scenario, "--plugin", echo, "--wait-for", "3", "--timeout", "0.5")
    assert done.returncode == 3
    assert "--wait-for 3: after 0.5s 1 of 3 plugins registered (registered: ['10-echo'])" in (
        done.stderr
    )
    socket = str(tmp_path / "nri.sock")
    external = f"{echo} --socket-path {socket} --bogus"
    done = cli("run", scenario, "--socket", socket, "--external-plugin", external)
    assert done.returncode == 3
    assert f"plugin {external!r}: exited with status 2 before registering" in done.stderr
    assert "unrecognized arguments: --bogus" in done.stderr
    assert done.stdout == ""


def test_serve_shows_plugin_output_after_each_command(echo: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "nri.mock", "serve", "--plugin", echo],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate("run-pod web\ncreate-container web app\nquit\n", timeout=60)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    run_pod = lines.index("run-pod web")
    assert lines[run_pod + 1 : run_pod + 3] == ["  RunPodSandbox web", "  10-echo | pod web runs"]
    create = lines.index("create-container app")
    assert lines[create + 1 : create + 5] == [
        "  CreateContainer web/app",
        "  PostCreateContainer web/app",
        "  10-echo | creating app",
        "  10-echo | second line of it",
    ]
