"""``nri-mock-runtime run`` end to end: the CLI in a subprocess against plugin subprocesses."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

SCENARIOS = Path(__file__).parent / "mock_scenarios"
PLUGIN = f"{shlex.quote(sys.executable)} {shlex.quote(str(SCENARIOS / 'scenario_plugin.py'))}"
REPO = Path(__file__).resolve().parents[2]


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    # Plugin commands (nri-logger, ...) are installed next to this interpreter.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "nri.mock", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
        env={**os.environ, "PATH": path},
    )


def test_passing_scenario_exits_0_and_shows_changes_and_diffs() -> None:
    plugin = f"{PLUGIN} --idx 10 --name envs --env FOO=bar --sync-shares 256 --later-shares 300"
    done = cli("run", str(SCENARIOS / "passing.yaml"), "--plugin", plugin)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert "\x1b[" not in done.stdout  # not a terminal: no colour
    assert out[0] == f"scenario passing ({SCENARIOS / 'passing.yaml'})"
    assert "  10-envs (external): CreateContainer" in out
    assert "plugins connected (Synchronize: 1 pod, 1 container)" in out
    assert "[2] create-container nginx  (steps[1])" in out
    assert "    10-envs set Env FOO" in out
    assert "      --- web-0/nginx (before)" in out
    assert '      +      "FOO=bar"' in out
    assert '      +        "shares": 300' in out  # the unsolicited update, during the sleep
    assert out[-1] == "passing: 10 steps, 11 expectations, 11 passed, 0 failed"
    assert f"launching '{plugin}', waiting up to 10s for it to register" in done.stderr
    assert "plugin 10-envs registered (pid " in done.stderr


def test_plugin_crashing_mid_step_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    scenario = tmp_path / "crash.yaml"
    scenario.write_text(
        "pods: {web: {}}\n"
        "containers: {boom: {pod: web}, after: {pod: web}}\n"
        "steps:\n"
        "  - run-pod: web\n"
        "  - create-container: boom\n"
        "  - create-container: after\n"
        "    expect: {spec: [{path: /process/env/0, matches: ^PATH=}]}\n"
    )
    plugin = f"{PLUGIN} --idx 10 --name envs --env FOO=bar --crash-on boom"
    done = cli("run", str(scenario), "--plugin", plugin)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    gone = "  plugin 10-envs is gone: the runtime goes on without it"
    assert gone in out
    assert out.index(gone) < out.index("[3] create-container after  (steps[2])")
    assert out[-1] == "crash: 3 steps, 1 expectations, 1 passed, 0 failed"


def test_failing_expectations_exit_1_naming_file_step_and_path() -> None:
    plugin = f"{PLUGIN} --idx 10 --name envs --env FOO=bar --refuse doomed"
    scenario = SCENARIOS / "failing.yaml"
    done = cli("run", str(scenario), "--plugin", plugin)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = done.stdout.splitlines()[-4:]
    assert summary[0] == "failing: 5 steps, 5 expectations, 2 passed, 3 failed"
    assert summary[1].startswith(
        f'  FAIL  {scenario}: steps[1].expect.spec[0]: app: /process/env contains "FOO=baz": '
        'it is ["PATH='
    )
    assert summary[2] == (
        f"  FAIL  {scenario}: steps[3]: succeeds: plugin 10-envs failed to handle "
        "CreateContainer: rpc error: code = Unknown desc = refusing to create container doomed"
    )
    assert summary[3] == (
        f"  FAIL  {scenario}: steps[4].expect.error: fails with an error containing "
        "'this never happens': it succeeded"
    )
    assert "  ok    fails with an error containing 'refusing to create container doomed'" in (
        done.stdout.splitlines()
    )


def test_color_always_needs_rich(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text("pods: {web: }\nsteps: [{run-pod: web}]\n")
    done = cli("run", str(scenario), "--color", "always")
    assert done.returncode == 0
    assert ("\x1b[" in done.stdout) is (importlib.util.find_spec("rich") is not None)
    assert re.sub(r"\x1b\[[0-9;]*m", "", done.stdout).splitlines()[-1] == (
        "tiny: 1 steps, 0 expectations, 0 passed, 0 failed"
    )


def test_json_output_is_one_document() -> None:
    plugin = f"{PLUGIN} --idx 10 --name envs --env FOO=bar --refuse doomed"
    done = cli("run", str(SCENARIOS / "failing.yaml"), "--plugin", plugin, "--json")
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["summary"] == {"steps": 5, "expectations": 5, "passed": 2, "failed": 3, "ok": False}
    assert [p["full_name"] for p in data["plugins"]] == ["10-envs"]
    steps = data["steps"]
    assert [s["step"] for s in steps] == [
        "run-pod web",
        "create-container app",
        "create-container doomed",
        "create-container doomed",
        "start-container app",
    ]
    create = steps[1]
    assert [e["event"] for e in create["events"]] == ["CreateContainer", "PostCreateContainer"]
    assert create["events"][0]["changes"] == [
        {
            "container_id": create["events"][0]["container_id"],
            "field": "Env",
            "key": "FOO",
            "plugin": "10-envs",
            "removed": False,
        }
    ]
    [specs] = create["events"][0]["specs"].values()
    assert specs["container"] == "web/app"
    assert '+      "FOO=bar"' in specs["diff"]
    assert [e["passed"] for e in create["expectations"]] == [False, True]
    assert "FOO=baz" in create["expectations"][0]["description"]
    assert steps[2]["error"] is not None and "refusing" in steps[2]["error"]


def test_invalid_scenario_exits_2_listing_every_problem() -> None:
    scenario = SCENARIOS / "invalid.yaml"
    done = cli("run", str(scenario), "--plugin", "never-started")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{scenario}: pods.web.labels.tier: expected a string, got 1 (quote it)",
        f"{scenario}: containers.app.env[0]: expected NAME=VALUE, got 'NOEQUALS'",
        f"{scenario}: containers.app.pod: unknown pod 'nowhere' (defined: web)",
        f"{scenario}: steps[1].expect.spec[0].path: expected a JSON pointer string such as "
        "/process/env, got 3",
        f"{scenario}: steps[2]: expected exactly one action (run-pod, update-pod, stop-pod, "
        "remove-pod, create-container, start-container, update-container, stop-container, "
        "remove-container, sleep) and optionally expect, got jump",
    ]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    done = cli("run", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2
    assert f"{tmp_path / 'missing.yaml'}: cannot read the scenario" in done.stderr
    for timeout in ("0", "nan"):
        done = cli("run", str(SCENARIOS / "passing.yaml"), "--timeout", timeout)
        assert done.returncode == 2
        assert "--timeout must be a positive number of seconds" in done.stderr
    done = cli("frobnicate")
    assert done.returncode == 2
    assert "invalid choice: 'frobnicate'" in done.stderr


def test_plugin_exiting_at_once_exits_3_with_its_stderr() -> None:
    done = cli("run", str(SCENARIOS / "passing.yaml"), "--plugin", f"{PLUGIN} --idx 10 --bogus")
    assert done.returncode == 3
    assert "exited with status 2 before registering" in done.stderr
    assert "--- its stderr (tail) ---" in done.stderr
    assert "scenario-plugin: error: unrecognized arguments: --bogus" in done.stderr
    assert done.stdout == ""


def test_plugin_that_never_registers_times_out_by_name() -> None:
    command = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)'"
    done = cli("run", str(SCENARIOS / "passing.yaml"), "--plugin", command, "--timeout", "0.5")
    assert done.returncode == 3
    assert "waiting up to 0.5s for it to register" in done.stderr
    assert f"timeout: plugin {command!r} did not register within 0.5s" in done.stderr


def test_missing_plugin_command_exits_3() -> None:
    done = cli("run", str(SCENARIOS / "passing.yaml"), "--plugin", "no-such-nri-plugin --idx 1")
    assert done.returncode == 3
    assert "plugin 'no-such-nri-plugin --idx 1': cannot start:" in done.stderr


def test_pre_installed_plugins_from_plugin_dir(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    wrapper = plugins / "15-envs"
    wrapper.write_text(f'#!/bin/sh\nexec {PLUGIN} --env FROM=dir "$@"\n')
    wrapper.chmod(0o755)
    scenario = tmp_path / "dir.yaml"
    scenario.write_text(
        "pods: {p: }\ncontainers: {c: {pod: p}}\nsteps:\n  - run-pod: p\n"
        "  - create-container: c\n    expect:\n"
        "      spec: [{path: /process/env, contains: FROM=dir}]\n"
        "      changed-by: {Env:FROM: 15-envs}\n"
    )
    done = cli("run", str(scenario), "--plugin-dir", str(plugins), "--config-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"starting the pre-installed plugins in {plugins}" in done.stderr
    assert "pre-installed plugins registered: 15-envs" in done.stderr
    assert "  15-envs (pre-installed): CreateContainer" in done.stdout.splitlines()


def test_demo_scenario_passes_with_the_repository_plugins(tmp_path: Path) -> None:
    # The command of `tox -e demo`, read from tox.ini so the two cannot drift apart.
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini")
    commands = tox["testenv:demo"]["commands"].replace("\\\n", " ")
    command = shlex.split(commands.replace("{envtmpdir}", str(tmp_path)))
    assert command[:3] == ["nri-mock-runtime", "run", "demo/scenario.yaml"]
    assert command[-1] == "{posargs}"
    args = command[3:-1]
    assert args.count("--plugin") >= 6
    assert any(a.startswith("nri-differ ") for a in args)
    done = cli("run", "demo/scenario.yaml", *args, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert out[-1].endswith(" passed, 0 failed")
    # the template logs each event; the differ at 35 sees what the plugins before it set
    nginx = out.index("[2] create-container nginx  (steps[1])")
    step = out[nginx : out.index("[3] create-container shipper  (steps[2])")]
    assert any(
        re.match(r"  05-template +\| .*creating container shop/web-0/nginx$", s) for s in step
    )
    assert any(
        re.match(r"  differ +\| .*\[35\] CreateContainer: container: create: rlimits", line)
        for line in step
    )


def test_socket_path_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    scenario = str(SCENARIOS / "passing.yaml")
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me\n")
    done = cli("run", scenario, "--socket", str(regular))
    assert done.returncode == 2
    assert (
        f"cannot start the runtime: socket {str(regular)!r}: a file that is not a socket is in "
        "the way (not replaced)" in done.stderr
    )
    assert regular.read_text() == "keep me\n"
    done = cli("run", scenario, "--socket", str(tmp_path))
    assert done.returncode == 2
    assert "a directory is in the way" in done.stderr
    missing = tmp_path / "run" / "nri"
    done = cli("run", scenario, "--socket", str(missing / "nri.sock"))
    assert done.returncode == 2
    assert f"directory {str(missing)!r} does not exist" in done.stderr
    assert not (tmp_path / "run").exists()


def test_plugin_and_config_dirs_must_exist(tmp_path: Path) -> None:
    scenario = str(SCENARIOS / "passing.yaml")
    for option in ("--plugin-dir", "--config-dir"):
        done = cli("run", scenario, option, str(tmp_path / "nonexistent"))
        assert done.returncode == 2
        assert f"{option} {str(tmp_path / 'nonexistent')!r}: no such directory" in done.stderr
        done = cli("run", scenario, option, str(SCENARIOS / "passing.yaml"))
        assert done.returncode == 2
        assert "not a directory" in done.stderr


def _plugin_dir(tmp_path: Path, **plugins: str) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    for name, script in plugins.items():
        path = directory / name.replace("_", "-")
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
    return directory


def test_pre_installed_plugin_failing_to_register_exits_3_with_its_output(tmp_path: Path) -> None:
    plugins = _plugin_dir(
        tmp_path,
        **{
            "15-envs": f'exec {PLUGIN} --env FROM=dir "$@"',
            "20-broken": "echo 'broken: no config here' >&2; exit 4",
        },
    )
    done = cli("run", str(SCENARIOS / "passing.yaml"), "--plugin-dir", str(plugins))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "pre-installed plugins registered: 15-envs" in done.stderr
    assert f"pre-installed plugin 20-broken ({plugins / '20-broken'}) did not register" in (
        done.stderr
    )
    assert "--- its output (tail) ---\nbroken: no config here" in done.stderr
    assert done.stdout == ""


def test_pre_installed_plugin_output_is_labelled_or_off(tmp_path: Path) -> None:
    plugins = _plugin_dir(tmp_path, **{"15-envs": f'exec {PLUGIN} --env FROM=dir "$@"'})
    scenario = tmp_path / "dir.yaml"
    scenario.write_text(
        "pods: {p: }\ncontainers: {c: {pod: p}}\nsteps:\n  - run-pod: p\n  - create-container: c\n"
    )
    done = cli("run", str(scenario), "--plugin-dir", str(plugins))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    started = [line for line in out if re.match(r"  15-envs \| .*plugin 15-envs started$", line)]
    assert len(started) == 1
    assert "plugin 15-envs started" not in done.stderr
    done = cli("run", str(scenario), "--plugin-dir", str(plugins), "--no-plugin-output")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plugin 15-envs started" not in done.stdout + done.stderr
    assert "    15-envs set Env FROM" in done.stdout.splitlines()


def test_profile_from_the_scenario_or_the_command_line(tmp_path: Path) -> None:
    scenario = tmp_path / "crio.yaml"
    scenario.write_text(
        "profile: cri-o\n"
        "pods: {p: {annotations: {example.com/a: x}}}\n"
        "containers: {c: {pod: p}}\n"
        "steps:\n  - run-pod: p\n  - create-container: c\n    expect:\n      spec:\n"
        "        - {path: /process/env, contains: TERM=xterm}\n"
        "        - {path: /annotations/example.com~1a, equals: x}\n"
        "        - {path: /linux/resources/pids/limit, equals: -1}\n"
    )
    done = cli("run", str(scenario), "--plugin", f"{PLUGIN} --idx 10 --name envs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "runtime profile: cri-o" in done.stderr
    done = cli("run", str(scenario), "--profile", "containerd")
    assert done.returncode == 1
    assert "runtime profile: containerd" in done.stderr
    assert '/process/env contains "TERM=xterm": it is' in done.stdout
    done = cli("run", str(scenario), "--profile", "docker")
    assert done.returncode == 2
    assert "argument --profile: invalid choice: 'docker'" in done.stderr
