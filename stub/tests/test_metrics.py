"""Prometheus metrics (extra ``nri[metrics]``): the mock runtime's and a plugin command's
``--metrics-address`` endpoints scraped over HTTP while real plugin processes run."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from nri.metrics import AdaptationMetrics, PluginMetrics, parse_address
from nri.testing import MetricSamples, free_tcp_port, scrape_metrics

PLUGIN = [sys.executable, str(Path(__file__).parent / "mock_scenarios" / "scenario_plugin.py")]


def value(samples: MetricSamples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(
    port: int, done: Callable[[MetricSamples], bool], timeout: float = 20
) -> MetricSamples:
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples = scrape_metrics(port)
        except OSError:
            samples = {}
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_mock_runtime_and_plugin_endpoints(tmp_path: Path) -> None:
    runtime_port, plugin_port = free_tcp_port(), free_tcp_port()
    a = [*PLUGIN, "--idx", "10", "--name", "a", "--env", "FOO=a", "--refuse", "bad"]
    a += ["--later-shares", "256", "--metrics-address", f"127.0.0.1:{plugin_port}"]
    b = [*PLUGIN, "--idx", "20", "--name", "b", "--env", "FOO=b"]
    crasher = [*PLUGIN, "--idx", "05", "--name", "c", "--crash-on", "boom"]
    argv = [sys.executable, "-m", "nri.mock", "serve"]
    for plugin in (a, b, crasher):
        argv += ["--plugin", " ".join(plugin)]
    argv += ["--metrics-address", f"127.0.0.1:{runtime_port}"]
    with (tmp_path / "out").open("w") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert process.stdin is not None
            registered = wait_for(runtime_port, lambda s: value(s, "nri_adaptation_plugins") == 3)
            assert value(registered, "nri_adaptation_plugins_registered_total") == 3
            process.stdin.write(
                "run-pod web\n"
                "create-container web app -- sleep inf\n"
                "create-container web bad -- sleep inf\n"
                "create-container web boom -- sleep inf\n"
            )
            process.stdin.flush()
            ran = wait_for(
                runtime_port,
                lambda s: (
                    value(s, "nri_adaptation_plugins_closed_total") == 1
                    and value(s, "nri_adaptation_unsolicited_updates_total", plugin="10-a") >= 1
                ),
            )
            create = {"event": "CreateContainer"}
            duration = "nri_adaptation_plugin_request_duration_seconds_count"
            assert value(ran, duration, plugin="10-a", **create) == 3
            assert value(ran, duration, plugin="10-a", event="Configure") == 1
            assert value(ran, duration, plugin="20-b", event="Synchronize") == 1
            assert (
                value(ran, "nri_adaptation_plugin_request_errors_total", plugin="10-a", **create)
                == 1
            )
            assert (
                value(ran, "nri_adaptation_plugin_request_errors_total", plugin="05-c", **create)
                == 1
            )
            assert value(ran, "nri_adaptation_conflicts_total", plugin="20-b", **create) == 2
            assert value(ran, "nri_adaptation_plugins") == 2
            assert (
                value(ran, "nri_adaptation_plugin_request_timeouts_total", plugin="10-a", **create)
                == 0
            )

            seen = scrape_metrics(plugin_port)
            handler = {"plugin": "10-a", "event": "create_container"}
            assert value(seen, "nri_plugin_handler_duration_seconds_count", **handler) == 3
            assert value(seen, "nri_plugin_handler_errors_total", **handler) == 1
            assert value(seen, "nri_plugin_connected", plugin="10-a") == 1
            assert value(seen, "nri_plugin_reconnects_total", plugin="10-a") == 0
            process.stdin.write("quit\n")
            process.stdin.close()
            assert process.wait(timeout=30) == 0, (tmp_path / "out").read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "a:b:1", "[zz]:1"])
def test_bad_address_of_a_plugin_command(address: str) -> None:
    result = subprocess.run(
        [*PLUGIN, "--idx", "10", "--metrics-address", address],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"--metrics-address {address!r}: expected HOST:PORT" in lines[0]


def test_address_in_use_and_bad_address_of_the_mock_runtime(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("steps: [{run-pod: web}]\n")
    bad = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", str(scenario), "--metrics-address", "x"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "nri-mock-runtime: --metrics-address 'x': expected HOST:PORT, e.g. 127.0.0.1:9100"
    ]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [*PLUGIN, "--idx", "10", "--metrics-address", f"127.0.0.1:{port}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert busy.returncode == 2
    assert len(busy.stderr.splitlines()) == 1, busy.stderr
    assert "cannot listen" in busy.stderr


def test_missing_extra() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import nri.adaptation, nri.mock, nri.stub, nri.metrics\n"
        "try:\n"
        "    nri.metrics.AdaptationMetrics()\n"
        "except nri.metrics.MetricsError as exc:\n"
        "    print(exc)\n"
        "sys.argv = ['plugin', '--idx', '10', '--metrics-address', '127.0.0.1:0']\n"
        f"sys.path.insert(0, {str(Path(PLUGIN[1]).parent)!r})\n"
        "import scenario_plugin\n"
        "sys.exit(scenario_plugin.main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    hint = "metrics need the prometheus-client package: pip install 'nri[metrics]'"
    assert result.stdout == hint + "\n"
    assert result.stderr.splitlines() == [f"plugin: error: --metrics-address: {hint}"]


def test_import_does_not_load_prometheus() -> None:
    code = (
        "import sys, nri, nri.adaptation, nri.mock, nri.stub, nri.metrics\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.stdout == "False\n", result.stderr


def test_observer_methods_fill_their_own_registries() -> None:
    runtime, plugin = AdaptationMetrics(), PluginMetrics()
    runtime.request_done("10-a", "CreateContainer", 0.5, "timeout")
    runtime.validation_refused("90-v")
    runtime.unsolicited_update("10-a", 3)
    plugin.reconnect("10-a")
    plugin.connected("10-a", False)
    get = runtime.registry.get_sample_value
    labels = {"plugin": "10-a", "event": "CreateContainer"}
    assert get("nri_adaptation_plugin_request_timeouts_total", labels) == 1
    assert get("nri_adaptation_plugin_request_errors_total", labels) == 1
    assert get("nri_adaptation_validation_refusals_total", {"plugin": "90-v"}) == 1
    assert get("nri_adaptation_evictions_total", {"plugin": "10-a"}) == 3
    assert plugin.registry.get_sample_value("nri_plugin_reconnects_total", {"plugin": "10-a"}) == 1
    assert plugin.registry.get_sample_value("nri_plugin_connected", {"plugin": "10-a"}) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9100", ("127.0.0.1", 9100)), (":0", ("0.0.0.0", 0)), ("[::1]:80", ("::1", 80))],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected
