"""The nri-template command: bad input exits 2 before connecting; a lifecycle in the mock
runtime through the ``nri_runtime`` fixture."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nri.mock import SyncMockRuntime

NAME = "template"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = PLUGIN_DIR / "sample-config.yaml"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NRI_")}


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--idx", "1"], None, "invalid plugin identity"),
        (["--idx", "10"], "bogus: 1\n", "unknown key 'bogus'"),
        (["--idx", "10"], "cfg_param1: [x]\n", "cfg_param1: expected str"),
        (["--idx", "10", "--config", "/nonexistent.yaml"], None, "cannot read config file"),
        (["--log-level", "loud"], None, "invalid choice"),
    ],
)
def test_bad_input_exits_2_without_connecting(
    tmp_path: Path, nri_unused_socket: str, args: list[str], config: str | None, message: str
) -> None:
    extra = list(args)
    if config is not None:
        (tmp_path / "template.yaml").write_text(config)
        extra += ["--config", str(tmp_path / "template.yaml")]
    result = subprocess.run(
        [sys.executable, "-m", "nri_template", "--socket-path", nri_unused_socket, *extra],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_runs_in_the_mock_runtime(nri_runtime: SyncMockRuntime) -> None:
    # nri_runtime (from the nri package's pytest plugin) launches the command the way a
    # runtime launches a pre-installed plugin; each call returns once the plugin answered.
    plugin = nri_runtime.launch_plugin(
        [sys.executable, "-m", "nri_template", "--idx", "50", "--config", str(SAMPLE_CONFIG)]
    )
    assert [p.full_name for p in nri_runtime.plugins] == [f"50-{NAME}"]
    pod = nri_runtime.run_pod("web", namespace="shop")
    ctr = nri_runtime.create_container(pod, "app", args=["sleep", "inf"])
    assert ctr.owners == {}  # no field set by any plugin: the template changes nothing
    assert ctr.spec["process"]["args"] == ["sleep", "inf"]
    nri_runtime.start_container(ctr)
    nri_runtime.remove_pod(pod)

    nri_runtime.close()  # stops the plugin, so that all it logged has arrived
    log = plugin.stderr.decode()
    assert "got configuration TemplateConfig(cfg_param1='some value')" in log
    for line in ("creating container shop/web/app", "started container shop/web/app"):
        assert f"50-{NAME}: {line}" in log, log


def test_sample_config_is_valid() -> None:
    from nri_template import parse_config

    parse_config(SAMPLE_CONFIG.read_text(), source=str(SAMPLE_CONFIG))


def test_scenario_passes() -> None:
    # scenario.yaml played by the nri-mock-runtime command, as README.md shows.
    plugin = f"{shlex.quote(sys.executable)} -m nri_template --idx 50 --config sample-config.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", "scenario.yaml", "--plugin", plugin],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"50-{NAME}: creating container shop/web-0/app" in done.stdout
