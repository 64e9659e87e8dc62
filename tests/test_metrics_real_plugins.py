"""The runtime's ``nri_adaptation_*`` counters, driven by real plugin processes.

A mock runtime observed by an :class:`~nri.metrics.AdaptationMetrics`, whose registry is
served over HTTP and scraped as Prometheus would, runs plugin commands
(tests/_metrics_plugin.py, ``nri-default-validator``) that time out, refuse, evict,
conflict and send unsolicited updates; every counter must move by exactly what happened,
under the labels of the plugin and event concerned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from nri.adaptation import ConflictError, ValidationError
from nri.metrics import AdaptationMetrics, MetricsServer, serve_metrics
from nri.mock import MockRuntime, SyncMockRuntime
from nri.testing import MetricSamples, free_tcp_port, scrape_metrics

PLUGIN = [sys.executable, str(Path(__file__).parent / "_metrics_plugin.py")]
DURATION = "nri_adaptation_plugin_request_duration_seconds_count"
ERRORS = "nri_adaptation_plugin_request_errors_total"
TIMEOUTS = "nri_adaptation_plugin_request_timeouts_total"
CONFLICTS = "nri_adaptation_conflicts_total"
REFUSALS = "nri_adaptation_validation_refusals_total"
UPDATES = "nri_adaptation_unsolicited_updates_total"
EVICTIONS = "nri_adaptation_evictions_total"
CREATE = {"event": "CreateContainer"}


def samples_of(samples: MetricSamples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples called ``name``, by label set."""
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


def wait_until(done: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout}s still waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def request_timeout() -> float:
    """The runtime's request timeout (the default); a test parametrizes it to shorten it."""
    return 2.0


@pytest.fixture
def adaptation_metrics() -> AdaptationMetrics:
    return AdaptationMetrics()


@pytest.fixture
def metrics_port(adaptation_metrics: AdaptationMetrics) -> Iterator[int]:
    """The port serving the runtime's metrics."""
    server: MetricsServer = serve_metrics(adaptation_metrics.registry, "127.0.0.1:0")
    yield server.port
    server.close()


@pytest.fixture
def nri_mock_runtime(
    adaptation_metrics: AdaptationMetrics, request_timeout: float
) -> Iterator[MockRuntime]:
    """The runtime behind ``nri_runtime``, observed by ``adaptation_metrics``."""
    runtime = MockRuntime(metrics=adaptation_metrics, request_timeout=request_timeout)
    yield runtime
    for handle in runtime.processes:
        if handle.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGKILL)


@pytest.mark.parametrize("request_timeout", [1.0])
def test_a_request_timeout(nri_runtime: SyncMockRuntime, metrics_port: int) -> None:
    slow = ["--sleep-on", "app", "--sleep", "30"]
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "10", "--name", "slow", *slow])
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "20", "--name", "fast", "--env", "FAST=1"])
    pod = nri_runtime.run_pod("web")
    quick = nri_runtime.create_container(pod, "quick")
    before = scrape_metrics(metrics_port)
    # The slow plugin misses the deadline: it is closed and the creation goes on without it.
    app = nri_runtime.create_container(pod, "app")
    assert "FAST=1" in app.spec["process"]["env"]
    assert [p.full_name for p in nri_runtime.plugins] == ["20-fast"]
    after = scrape_metrics(metrics_port)

    late = {"plugin": "10-slow", **CREATE}
    assert samples_of(after, TIMEOUTS) == {labels(**late): 1}
    assert samples_of(after, ERRORS) == {labels(**late): 1}
    assert samples_of(before, TIMEOUTS) == samples_of(before, ERRORS) == {}
    assert samples_of(after, DURATION) == {
        labels(plugin="10-slow", event="Configure"): 1,
        labels(plugin="10-slow", event="Synchronize"): 1,
        labels(**late): 2,
        labels(plugin="20-fast", event="Configure"): 1,
        labels(plugin="20-fast", event="Synchronize"): 1,
        labels(plugin="20-fast", **CREATE): 2,
    }
    assert after[("nri_adaptation_plugins_registered_total", labels())] == 2
    assert after[("nri_adaptation_plugins_closed_total", labels())] == 1
    assert after[("nri_adaptation_plugins", labels())] == 1
    assert "FAST=1" in quick.spec["process"]["env"]


def test_a_validation_refusal(
    nri_runtime: SyncMockRuntime, metrics_port: int, tmp_path: Path
) -> None:
    config = tmp_path / "validator.yaml"
    config.write_text("requiredPlugins: [marker]\n")
    plugin_port = free_tcp_port()
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "10", "--name", "marker", "--env", "M=1"])
    validator = ["nri-default-validator", "--idx", "90", "--config", str(config)]
    nri_runtime.launch_plugin([*validator, "--metrics-address", f"127.0.0.1:{plugin_port}"])
    pod = nri_runtime.run_pod("web")
    nri_runtime.create_container(pod, "one")
    nri_runtime.create_container(pod, "two")
    assert samples_of(scrape_metrics(metrics_port), REFUSALS) == {}

    # A pod requiring a plugin that is not there: the validator refuses each of its containers.
    needy = nri_runtime.run_pod(
        "needy", annotations={"required-plugins.noderesource.dev/pod": "[absent]"}
    )
    for name in ("three", "four"):
        with pytest.raises(ValidationError, match='required plugin "absent" not present'):
            nri_runtime.create_container(needy, name)
    samples = scrape_metrics(metrics_port)
    assert samples_of(samples, REFUSALS) == {labels(plugin="90-default-validator"): 2}
    # A refusal is an answer, not a failed request.
    assert samples_of(samples, ERRORS) == {}
    validate = {"plugin": "90-default-validator", "event": "ValidateContainerAdjustment"}
    assert samples[(DURATION, labels(**validate))] == 4
    # The validator's own endpoint saw the four requests too.
    handled = scrape_metrics(plugin_port)
    handler = {"plugin": "90-default-validator", "event": "validate_container_adjustment"}
    assert handled[("nri_plugin_handler_duration_seconds_count", labels(**handler))] == 4
    # It refuses by raising in its handler, which its endpoint counts as a handler error.
    assert samples_of(handled, "nri_plugin_handler_errors_total") == {labels(**handler): 2}
    assert handled[("nri_plugin_connected", labels(plugin="90-default-validator"))] == 1


def test_unsolicited_updates_and_an_eviction(
    nri_runtime: SyncMockRuntime, metrics_port: int
) -> None:
    nri_runtime.launch_plugin(
        [*PLUGIN, "--idx", "10", "--name", "mover", "--update", "app", "--evict", "victim"]
    )
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "20", "--name", "still"])
    pod = nri_runtime.run_pod("web")
    app = nri_runtime.create_container(pod, "app")
    wait_until(
        lambda: any(r.event == "UpdateContainers" for r in nri_runtime.history),
        "the update of app",
    )
    samples = scrape_metrics(metrics_port)
    assert samples_of(samples, UPDATES) == {labels(plugin="10-mover"): 1}
    assert samples_of(samples, EVICTIONS) == {}
    assert nri_runtime.container(app.id).spec["linux"]["resources"]["cpu"]["shares"] == 512

    victim = nri_runtime.create_container(pod, "victim")
    wait_until(
        lambda: any(r.event == "EvictContainer" for r in nri_runtime.history),
        "the eviction of victim",
    )
    samples = scrape_metrics(metrics_port)
    assert samples_of(samples, UPDATES) == {labels(plugin="10-mover"): 2}
    assert samples_of(samples, EVICTIONS) == {labels(plugin="10-mover"): 1}
    evicted = [r for r in nri_runtime.history if r.event == "EvictContainer"]
    assert [e.container_id for e in evicted] == [victim.id]
    assert samples_of(samples, ERRORS) == samples_of(samples, CONFLICTS) == {}


def test_evictions_in_event_replies(nri_runtime: SyncMockRuntime, metrics_port: int) -> None:
    pod = nri_runtime.run_pod("web")
    old = nri_runtime.create_container(pod, "old")
    nri_runtime.launch_plugin(
        [*PLUGIN, "--idx", "10", "--name", "evictor", "--evict-in-reply", old.id]
    )
    nri_runtime.create_container(pod, "new")
    samples = scrape_metrics(metrics_port)
    assert samples_of(samples, EVICTIONS) == {labels(plugin="10-evictor"): 1}
    assert samples_of(samples, UPDATES) == {}


def test_conflicts(nri_runtime: SyncMockRuntime, metrics_port: int) -> None:
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "10", "--name", "a", "--env", "OWNER=a"])
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "20", "--name", "b", "--env", "OWNER=b"])
    nri_runtime.launch_plugin([*PLUGIN, "--idx", "30", "--name", "c", "--env", "OTHER=c"])
    pod = nri_runtime.run_pod("web")
    for name in ("app", "sidecar"):
        with pytest.raises(ConflictError, match="OWNER"):
            nri_runtime.create_container(pod, name)
    samples = scrape_metrics(metrics_port)
    # Only the later plugin is refused; the requests themselves all succeeded.
    assert samples_of(samples, CONFLICTS) == {labels(plugin="20-b", **CREATE): 2}
    assert samples_of(samples, ERRORS) == {}
    assert samples[(DURATION, labels(plugin="10-a", **CREATE))] == 2
    assert samples[(DURATION, labels(plugin="20-b", **CREATE))] == 2
    # The event stops at the conflict: the plugin after it is not asked.
    assert (DURATION, labels(plugin="30-c", **CREATE)) not in samples
    assert samples[("nri_adaptation_plugins", labels())] == 3
