"""The mock runtime's adaptation settings: MockRuntime keywords, nri-mock-runtime flags and
the scenario file's runtime section, down to the adaptation's Config."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nri.adaptation import AdaptationError, PluginSettings
from nri.mock import MockRuntime
from nri.mock._cli import argument_parser, main
from nri.mock._scenario import ScenarioError, parse_scenario
from nri.mock._settings import RuntimeSettings
from nri.mock._startup import start_runtime

SCENARIOS = Path(__file__).parent / "mock_scenarios"
PASSING = str(SCENARIOS / "passing.yaml")

RUNTIME_SECTION = """
runtime:
  timeout-policy: skip
  max-consecutive-timeouts: 5
  plugins:
    10-slow: {request-timeout: 0.5, timeout-policy: fail}
    logger: {registration_timeout: 4}
  required-plugins: [ulimit-adjuster, 20-rules]
  replace-plugins: true
  per-pod-concurrency: true
  shutdown-plugins: true
  shutdown-timeout: 2.5
  restart-plugins: true
  restart-backoff: 0.25
  restart-backoff-max: 8
  plugin-stop-grace: 0
"""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nri-set-") as directory:
        yield Path(directory)


def test_keywords_reach_the_adaptation_config() -> None:
    runtime = MockRuntime(
        timeout_policy="fail",
        max_consecutive_timeouts=7,
        plugin_settings={"10-slow": PluginSettings(request_timeout=0.25)},
        required_plugins=["ulimit-adjuster"],
        replace_plugins=True,
        per_pod_concurrency=True,
        shutdown_plugins=True,
        shutdown_timeout=0,
        restart_plugins=True,
        restart_backoff=0.1,
        restart_backoff_max=4,
        plugin_stop_grace=0,
    )
    config = runtime.adaptation.config
    assert config.timeout_policy == "fail"
    assert config.max_consecutive_timeouts == 7
    assert config.plugin_settings == {"10-slow": PluginSettings(request_timeout=0.25)}
    assert tuple(config.required_plugins) == ("ulimit-adjuster",)
    assert config.replace_plugins and config.per_pod_concurrency
    assert config.shutdown_plugins and config.restart_plugins
    assert config.shutdown_timeout == 0
    assert (config.restart_backoff, config.restart_backoff_max) == (0.1, 4)
    assert config.plugin_stop_grace == 0


def test_keywords_left_out_keep_the_config_defaults() -> None:
    from nri.adaptation import Config

    config, default = MockRuntime().adaptation.config, Config()
    for field in (
        "timeout_policy",
        "max_consecutive_timeouts",
        "plugin_settings",
        "replace_plugins",
        "per_pod_concurrency",
        "shutdown_plugins",
        "shutdown_timeout",
        "restart_plugins",
        "restart_backoff",
        "restart_backoff_max",
        "plugin_stop_grace",
    ):
        assert getattr(config, field) == getattr(default, field), field
    assert tuple(config.required_plugins) == ()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_policy": "never"}, "timeout_policy"),
        ({"max_consecutive_timeouts": 0}, "max_consecutive_timeouts"),
        ({"shutdown_timeout": -1.0}, "shutdown_timeout"),
        ({"plugin_settings": {"x": PluginSettings(request_timeout=0)}}, "request_timeout"),
    ],
)
def test_bad_keywords_are_refused_naming_the_setting(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(AdaptationError, match=message):
        MockRuntime(**options)  # type: ignore[arg-type]


def test_scenario_runtime_section_is_parsed() -> None:
    document = yaml.safe_load(RUNTIME_SECTION + "steps: []\n")
    settings = parse_scenario(document, "s.yaml").settings
    assert settings == RuntimeSettings(
        timeout_policy="skip",
        max_consecutive_timeouts=5,
        plugins={
            "10-slow": PluginSettings(request_timeout=0.5, timeout_policy="fail"),
            "logger": PluginSettings(registration_timeout=4.0),
        },
        required_plugins=("ulimit-adjuster", "20-rules"),
        replace_plugins=True,
        per_pod_concurrency=True,
        shutdown_plugins=True,
        shutdown_timeout=2.5,
        restart_plugins=True,
        restart_backoff=0.25,
        restart_backoff_max=8.0,
        plugin_stop_grace=0.0,
    )
    assert parse_scenario({"steps": []}, "s.yaml").settings == RuntimeSettings()


def test_scenario_runtime_section_problems_are_all_listed() -> None:
    document = yaml.safe_load(
        """
        runtime:
          timeout-policy: later
          max-consecutive-timeouts: 0
          plugins:
            bad/name: {request-timeout: 1}
            10-x: {request-timeout: -1, colour: red}
          required-plugins: ulimit-adjuster
          replace-plugins: "yes"
          shutdown-timeout: soon
          plugin-stop-grace: -2
          frobnicate: 1
        """
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(document, "s.yaml")
    problems = info.value.problems
    assert problems == [
        "runtime.timeout-policy: expected one of close, skip, fail, got 'later'",
        "runtime.max-consecutive-timeouts: expected a whole number >= 1, got 0",
        "runtime.plugins.bad/name: invalid plugin name: invalid plugin name 'bad/name': "
        "contains invalid character '/'",
        "runtime.plugins.10-x.request-timeout: expected a number of seconds > 0, got -1",
        "runtime.plugins.10-x.colour: unknown key (known keys: request-timeout, "
        "registration-timeout, timeout-policy)",
        "runtime.required-plugins: expected a list of plugin names, got 'ulimit-adjuster'",
        "runtime.replace-plugins: expected true or false, got 'yes'",
        "runtime.shutdown-timeout: expected a number of seconds >= 0, got 'soon'",
        "runtime.plugin-stop-grace: expected a number of seconds >= 0, got -2",
        "runtime.frobnicate: unknown key (known keys: timeout-policy, max-consecutive-timeouts, "
        "plugins, required-plugins, replace-plugins, per-pod-concurrency, shutdown-plugins, "
        "shutdown-timeout, restart-plugins, restart-backoff, restart-backoff-max, "
        "plugin-stop-grace)",
    ]


FLAGS = [
    "--timeout-policy",
    "fail",
    "--max-consecutive-timeouts",
    "2",
    "--plugin-timeout",
    "10-slow=0.75",
    "--plugin-timeout",
    "logger=3",
    "--plugin-timeout-policy",
    "10-slow=skip",
    "--require-plugin",
    "ulimit-adjuster",
    "--require-plugin",
    "30-rules",
    "--replace-plugins",
    "--per-pod-concurrency",
    "--shutdown-plugins",
    "--shutdown-timeout",
    "0.5",
    "--restart-plugins",
    "--restart-backoff",
    "0.2",
    "--restart-backoff-max",
    "3",
    "--plugin-stop-grace",
    "1.5",
]


async def test_flags_reach_the_adaptation_config(short_dir: Path) -> None:
    args = argument_parser().parse_args(["run", PASSING, "--socket", str(short_dir / "s"), *FLAGS])
    runtime, _, commands = await start_runtime(args, None)
    try:
        config = runtime.adaptation.config
        assert config.timeout_policy == "fail"
        assert config.max_consecutive_timeouts == 2
        assert config.plugin_settings == {
            "10-slow": PluginSettings(request_timeout=0.75, timeout_policy="skip"),
            "logger": PluginSettings(request_timeout=3.0),
        }
        assert tuple(config.required_plugins) == ("ulimit-adjuster", "30-rules")
        assert config.replace_plugins and config.per_pod_concurrency
        assert config.shutdown_plugins and config.restart_plugins
        assert config.shutdown_timeout == 0.5
        assert (config.restart_backoff, config.restart_backoff_max) == (0.2, 3)
        assert config.plugin_stop_grace == 1.5
    finally:
        await commands.stop()
        await runtime.close()


async def test_flags_override_the_scenario_section(short_dir: Path) -> None:
    scenario = parse_scenario(yaml.safe_load(RUNTIME_SECTION), "s.yaml")
    argv = [
        "run",
        PASSING,
        "--socket",
        str(short_dir / "s"),
        "--timeout-policy",
        "close",
        "--plugin-timeout",
        "10-slow=2",
        "--require-plugin",
        "logger",
        "--no-replace-plugins",
    ]
    runtime, _, commands = await start_runtime(argument_parser().parse_args(argv), scenario)
    try:
        config = runtime.adaptation.config
        assert config.timeout_policy == "close"
        assert config.max_consecutive_timeouts == 5  # from the scenario
        assert config.plugin_settings["10-slow"] == PluginSettings(
            request_timeout=2.0, timeout_policy="fail"
        )
        assert config.plugin_settings["logger"] == PluginSettings(registration_timeout=4.0)
        assert tuple(config.required_plugins) == ("ulimit-adjuster", "20-rules", "logger")
        assert not config.replace_plugins
        assert config.per_pod_concurrency
        assert config.shutdown_timeout == 2.5
    finally:
        await commands.stop()
        await runtime.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--timeout-policy", "never"],
            "--timeout-policy never: expected one of close, skip, fail",
        ),
        (["--max-consecutive-timeouts", "0"], "--max-consecutive-timeouts 0: expected a whole"),
        (["--max-consecutive-timeouts", "x"], "--max-consecutive-timeouts x: expected a whole"),
        (["--plugin-timeout", "slow"], "--plugin-timeout slow: expected NAME=SECONDS"),
        (["--plugin-timeout", "=1"], "--plugin-timeout =1: expected NAME=SECONDS"),
        (
            ["--plugin-timeout", "slow=0"],
            "--plugin-timeout slow=0: expected a number of seconds > 0",
        ),
        (
            ["--plugin-timeout", "slow=nan"],
            "--plugin-timeout slow=nan: expected a number of seconds",
        ),
        (["--plugin-timeout", "a/b=1"], "--plugin-timeout a/b=1: invalid plugin name"),
        (["--plugin-timeout-policy", "slow=later"], "--plugin-timeout-policy slow=later: expected"),
        (["--require-plugin", "a b"], "--require-plugin a b: invalid plugin name"),
        (["--shutdown-timeout", "-1"], "--shutdown-timeout -1: expected a number of seconds >= 0"),
    ],
)
def test_bad_flag_values_exit_2_on_one_line(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", PASSING, *flags]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()], err
    assert err.startswith(f"nri-mock-runtime: error: {message}"), err


def test_bad_flag_value_from_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "serve", "--timeout-policy", "sometimes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "nri-mock-runtime: error: --timeout-policy sometimes: expected one of close, skip, "
        "fail, got 'sometimes'\n"
    )


def test_required_plugin_from_the_scenario_or_a_flag_takes_effect(tmp_path: Path) -> None:
    scenario = tmp_path / "required.yaml"
    scenario.write_text(
        "runtime: {required-plugins: [absent]}\n"
        "pods: {p: {}}\ncontainers: {c: {pod: p}}\n"
        "steps:\n  - run-pod: p\n  - create-container: c\n"
        "    expect: {error: not registered}\n"
    )

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nri.mock", "run", str(scenario), *flags]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'required plugin "absent" not registered' in done.stdout
    done = run("--require-plugin", "other")  # added to the file's list
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'required plugins "absent", "other" not registered' in done.stdout
    scenario.write_text(scenario.read_text().replace("runtime: {required-plugins: [absent]}\n", ""))
    assert run().returncode == 1  # nothing required: the container is created
    assert run("--require-plugin", "absent").returncode == 0
