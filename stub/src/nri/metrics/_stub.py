"""Prometheus metrics of plugin stubs."""

from __future__ import annotations

from typing import Any

from nri.metrics._adaptation import LATENCY_BUCKETS
from nri.metrics._require import prometheus

__all__ = ["PluginMetrics"]


class PluginMetrics:
    """The ``nri_plugin_*`` metrics of one or more stubs, kept in :attr:`registry`.

    ``registry`` defaults to a new ``prometheus_client.CollectorRegistry``. Raises
    :class:`~nri.metrics.MetricsError` when ``prometheus_client`` is not installed.
    """

    def __init__(self, registry: Any = None) -> None:
        prom = prometheus()
        self.registry: Any = prom.CollectorRegistry() if registry is None else registry
        """The ``CollectorRegistry`` holding the metrics."""
        reg = {"registry": self.registry}
        self._latency = prom.Histogram(
            "nri_plugin_handler_duration_seconds",
            "Time a plugin handler took",
            ("plugin", "event"),
            buckets=LATENCY_BUCKETS,
            **reg,
        )
        self._errors = prom.Counter(
            "nri_plugin_handler_errors", "Plugin handlers that raised", ("plugin", "event"), **reg
        )
        self._reconnects = prom.Counter(
            "nri_plugin_reconnects",
            "Times the runtime went away and was dialled again",
            ("plugin",),
            **reg,
        )
        self._connected = prom.Gauge(
            "nri_plugin_connected", "1 while connected to the runtime, else 0", ("plugin",), **reg
        )

    def handler_done(self, plugin: str, handler: str, seconds: float, failed: bool) -> None:
        """Record one handler call."""
        self._latency.labels(plugin, handler).observe(seconds)
        if failed:
            self._errors.labels(plugin, handler).inc()

    def connected(self, plugin: str, up: bool) -> None:
        """Set the connected state of ``plugin``."""
        self._connected.labels(plugin).set(1 if up else 0)

    def reconnect(self, plugin: str) -> None:
        """Count a reconnect of ``plugin``."""
        self._reconnects.labels(plugin).inc()
