"""Plugin commands (nri.stub.PluginCommand and run) as processes: flags in our and upstream's
spellings, configuration, identity, socket waiting, log formats and failure logging."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from nri.mock import MockRuntime, SyncMockRuntime
from nri.stub import StubError, argument_parser, resolve_identity
from nri.testing import PluginCommandCheck, Rejection

DEMO = textwrap.dedent(
    """
    import sys
    from dataclasses import dataclass

    from nri.api import Adjustment
    from nri.stub import Flag, Plugin, PluginCommand, RequestError


    @dataclass
    class Config:
        threshold: int = 1
        verbose: bool = False


    class Demo(Plugin):
        def __init__(self, config):
            self.config = config

        def configure(self, config, runtime_name, runtime_version):
            self.log.info("configured %s", self.config)

        def create_container(self, pod, container):
            if container.name == "refused":
                raise RequestError(f"pod {pod.name}: annotation demo/x: not a number")
            if container.name == "buggy":
                return {}["missing"]
            return Adjustment().add_env("THRESHOLD", str(self.config.threshold))


    COMMAND = PluginCommand(
        name="demo",
        description="A demo plugin.",
        config=Config,
        flags=[
            Flag("threshold", "a number", field="threshold", type=int),
            Flag("verbose", "talk more", field="verbose"),
        ],
        plugin=lambda run: Demo(run.configured),
        distribution="nri",
    )

    if __name__ == "__main__":
        COMMAND.main()
    """
)

LEGACY = textwrap.dedent(
    """
    import sys
    from nri.api import Adjustment
    from nri.stub import Plugin, run

    class Hello(Plugin):
        def create_container(self, pod, container):
            return Adjustment().add_env("HELLO", "world")

    sys.exit(run(Hello))
    """
)


@pytest.fixture
def demo(tmp_path: Path) -> list[str]:
    script = tmp_path / "demo.py"
    script.write_text(DEMO)
    return [sys.executable, str(script)]


@pytest.fixture
def legacy(tmp_path: Path) -> list[str]:
    script = tmp_path / "hello.py"
    script.write_text(LEGACY)
    return [sys.executable, str(script)]


@pytest.fixture
def check(
    nri_plugin_command: Callable[..., PluginCommandCheck], demo: list[str]
) -> PluginCommandCheck:
    return nri_plugin_command(demo, name="demo", distribution="nri")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are limited to 107 bytes: not under tmp_path
    with tempfile.TemporaryDirectory(prefix="nri-cmd-") as directory:
        yield Path(directory)


def test_shared_checks_of_a_declared_command(check: PluginCommandCheck) -> None:
    check.check_help("--threshold", "--verbose")
    assert check.check_version() == f"nri {version('nri')}"
    check.check_bad_flags(Rejection(["-threshold=many"], "invalid int value: 'many'"))
    check.check_bad_config_files(wrong_type=("threshold: lots\n", "threshold: expected int"))


def test_flags_in_upstream_spellings_override_the_config_file(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime
) -> None:
    config = check.config_file("threshold: 3\nverbose: true\n")
    seen = check.check_registers(
        nri_runtime,
        *("-config", str(config), "-threshold=7", "--verbose=false", "-name", "mine"),
        names=["10-mine"],
    )
    assert [p.full_name for p in seen.plugins] == ["10-mine"]
    assert "configured Config(threshold=7, verbose=False)" in seen.stderr


def test_config_file_keys_in_any_spelling(check: PluginCommandCheck, short_dir: Path) -> None:
    absent = str(short_dir / "absent.sock")
    done = check.run("--socket-path", absent, config="threshold: 1\nthreshold: 2\n")
    assert done.returncode == 1, done.stderr  # a repeated key is accepted: as far as connecting
    rejected = check.assert_rejects(config="verbose: true\nVerbose: false\n", message="Verbose")
    assert "unknown key 'Verbose'" in rejected


def test_default_name_is_the_plugins_own(
    demo: list[str], legacy: list[str], nri_runtime: SyncMockRuntime
) -> None:
    nri_runtime.launch_plugin([*demo, "--idx", "20"])
    nri_runtime.launch_plugin([*legacy, "-idx", "30"])  # no name: the program name, as upstream
    assert sorted(p.full_name for p in nri_runtime.plugins) == ["20-demo", "30-hello.py"]


def test_legacy_run_reports_errors_in_the_same_style(
    nri_plugin_command: Callable[..., PluginCommandCheck], legacy: list[str]
) -> None:
    check = nri_plugin_command(legacy, name="hello", prog="hello.py")
    check.check_bad_flags()
    done = subprocess.run([*legacy, "--version"], capture_output=True, text=True, check=False)
    assert done.stdout == f"hello.py (nri {version('nri')})\n"


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_something_else_at_the_socket_path(
    check: PluginCommandCheck, short_dir: Path, kind: str
) -> None:
    path = short_dir / "nri.sock"
    if kind == "file":
        path.write_text("")
    else:
        path.mkdir()
    done = check.run("--socket-path", str(path), "--reconnect")
    assert done.returncode == 1
    expected = "a regular file" if kind == "file" else "a directory"
    assert f"{path} is not a socket (it is {expected})" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
async def test_reconnect_waits_for_the_socket_at_start(demo: list[str], short_dir: Path) -> None:
    path = short_dir / "nri.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NRI_")}
    stderr = short_dir / "stderr"
    with stderr.open("wb") as out:
        process = subprocess.Popen(
            [*demo, "-idx", "10", "-socket-path", str(path), "-reconnect"],
            stdin=subprocess.DEVNULL,
            stderr=out,
            env=env,
        )
    try:
        deadline = time.monotonic() + 20
        while "retrying in" not in stderr.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, stderr.read_text()
        assert f"connecting to {path} failed" in stderr.read_text()
        async with MockRuntime(socket_path=path) as runtime:
            (info,) = await runtime.wait_for_plugins(names=["10-demo"], timeout=20)
            assert info.full_name == "10-demo"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert "registering plugin 10-demo" in stderr.read_text()


def test_without_reconnect_a_missing_socket_fails_at_once(
    check: PluginCommandCheck, short_dir: Path
) -> None:
    done = check.run("--socket-path", str(short_dir / "absent.sock"))
    assert done.returncode == 1
    assert "No such file or directory" in done.stderr


def test_expected_failure_is_logged_once_without_traceback(
    demo: list[str], nri_runtime: SyncMockRuntime
) -> None:
    plugin = nri_runtime.launch_plugin([*demo, "--idx", "10"])
    pod = nri_runtime.run_pod("web", namespace="shop")
    for name in ("refused", "buggy"):
        with pytest.raises(Exception, match="not a number|missing"):
            nri_runtime.create_container(pod, name)
    nri_runtime.close()
    lines = plugin.stderr.decode().splitlines()
    errors = [line for line in lines if " ERROR " in line]
    assert len(errors) == 2, lines
    assert "create_container for container shop/web/refused" in errors[0]
    assert errors[0].endswith("failed: pod web: annotation demo/x: not a number")
    assert "raised KeyError: 'missing'" in errors[1]
    tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    assert len(tracebacks) == 1 and tracebacks[0] > lines.index(errors[0])  # the bug only


@pytest.mark.parametrize("log_format", ["json", "logfmt"])
def test_log_formats_for_collectors(
    demo: list[str], nri_runtime: SyncMockRuntime, log_format: str
) -> None:
    command = [*demo, "-idx", "10", "--log-format", log_format, "--log-level", "DEBUG"]
    plugin = nri_runtime.launch_plugin(command)
    pod = nri_runtime.run_pod("web")
    with pytest.raises(Exception, match="missing"):
        nri_runtime.create_container(pod, "buggy")
    nri_runtime.close()
    lines = plugin.stderr.decode().splitlines()
    assert lines
    records = []
    for line in lines:
        if log_format == "json":
            records.append(json.loads(line))
        else:
            match = re.fullmatch(r'time="([^"]+)" level=(\w+) msg=(.+?) plugin=(\S+)(?: .*)?', line)
            assert match, line
            records.append({"time": match[1], "level": match[2], "msg": match[3]})
    assert {r["level"] for r in records} >= {"debug", "info", "error"}  # DEBUG: any case
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    assert any("registering plugin 10-demo" in r["msg"] for r in records)
    (bug,) = [r for r in records if r["level"] == "error"]
    if log_format == "json":
        assert "Traceback" in bug["error"]


def test_go_spellings_are_rewritten_before_parsing() -> None:
    parser = argument_parser("nri-x")
    rewritten = parser.go_spellings(
        ["-idx", "10", "-name=a", "--config", "-x", "-h", "-reconnect", "--", "-idx"]
    )
    assert rewritten == [
        "--idx", "10", "--name=a", "--config", "-x", "-h", "--reconnect", "--", "-idx"
    ]  # fmt: skip
    args = parser.parse_args(["-idx=10", "-socket", "/s", "-reconnect=false", "-log-level=Warn"])
    assert (args.idx, args.socket_path, args.reconnect, args.log_level) == (
        "10", "/s", False, "warning"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "idx", "environ", "expected"),
    [
        (None, "10", {}, ("demo", "10")),  # only an index: the plugin's own name
        (None, None, {"NRI_PLUGIN_NAME": "20-x", "NRI_PLUGIN_IDX": "10"}, ("20-x", "10")),
        (None, None, {"NRI_PLUGIN_IDX": "05"}, ("demo", "05")),
        ("mine", None, {"NRI_PLUGIN_IDX": "05"}, ("mine", "05")),
    ],
)
def test_identity(
    name: str | None, idx: str | None, environ: dict[str, str], expected: tuple[str, str]
) -> None:
    assert resolve_identity(name, idx, environ, default_name="demo") == expected


@pytest.mark.parametrize(
    ("name", "idx", "environ", "message"),
    [
        ("10-foo", "10", {}, "it would register as 10-10-foo; give the name 'foo' alone"),
        ("10-foo", None, {"NRI_PLUGIN_IDX": "20"}, "would register as 20-10-foo"),
        ("10-foo", None, {}, "give the name 'foo' and the index '10' separately"),
        ("", "10", {}, "name is empty"),
        ("x", "", {}, "invalid plugin index ''"),
        (None, None, {}, "plugin 'demo' has no index"),
    ],
)
def test_identity_errors(
    monkeypatch: pytest.MonkeyPatch,
    name: str | None,
    idx: str | None,
    environ: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/bin/nri-demo"])
    with pytest.raises(StubError, match=re.escape(message)):
        resolve_identity(name, idx, environ, default_name="demo")
