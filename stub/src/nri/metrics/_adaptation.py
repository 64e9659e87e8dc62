"""Prometheus metrics of the runtime adaptation."""

from __future__ import annotations

from typing import Any

from nri.metrics._require import prometheus

__all__ = ["AdaptationMetrics"]

#: Bucket bounds (seconds) of the latency histograms: 100 µs up to the 2 s request timeout.
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2)


class AdaptationMetrics:
    """The ``nri_adaptation_*`` metrics, kept in :attr:`registry`.

    ``registry`` defaults to a new ``prometheus_client.CollectorRegistry``. Raises
    :class:`~nri.metrics.MetricsError` when ``prometheus_client`` is not installed.
    """

    def __init__(self, registry: Any = None) -> None:
        prom = prometheus()
        self.registry: Any = prom.CollectorRegistry() if registry is None else registry
        """The ``CollectorRegistry`` holding the metrics."""
        labels = ("plugin", "event")
        reg = {"registry": self.registry}
        self._latency = prom.Histogram(
            "nri_adaptation_plugin_request_duration_seconds",
            "Time a plugin took to answer a request of the runtime",
            labels,
            buckets=LATENCY_BUCKETS,
            **reg,
        )
        self._errors = prom.Counter(
            "nri_adaptation_plugin_request_errors",
            "Requests to a plugin that failed (timeouts included)",
            labels,
            **reg,
        )
        self._timeouts = prom.Counter(
            "nri_adaptation_plugin_request_timeouts",
            "Requests to a plugin that ran out of time",
            labels,
            **reg,
        )
        self._conflicts = prom.Counter(
            "nri_adaptation_conflicts",
            "Adjustments refused because another plugin owns the field",
            labels,
            **reg,
        )
        self._refusals = prom.Counter(
            "nri_adaptation_validation_refusals",
            "Container adjustments a validator plugin refused",
            ("plugin",),
            **reg,
        )
        self._updates = prom.Counter(
            "nri_adaptation_unsolicited_updates",
            "UpdateContainers requests sent by a plugin",
            ("plugin",),
            **reg,
        )
        self._evictions = prom.Counter(
            "nri_adaptation_evictions",
            "Containers a plugin asked to evict",
            ("plugin",),
            **reg,
        )
        self._registered = prom.Counter(
            "nri_adaptation_plugins_registered", "Plugins that joined the invocation list", **reg
        )
        self._closed = prom.Counter(
            "nri_adaptation_plugins_closed", "Registered plugins whose connection closed", **reg
        )
        self._plugins = prom.Gauge(
            "nri_adaptation_plugins", "Plugins in the invocation list now", **reg
        )

    def request_done(self, plugin: str, event: str, seconds: float, error: str | None) -> None:
        """Record one request to ``plugin``."""
        self._latency.labels(plugin, event).observe(seconds)
        if error is not None:
            self._errors.labels(plugin, event).inc()
            if error == "timeout":
                self._timeouts.labels(plugin, event).inc()

    def validation_refused(self, plugin: str) -> None:
        """Count a refusal by validator ``plugin``."""
        self._refusals.labels(plugin).inc()

    def unsolicited_update(self, plugin: str, evictions: int) -> None:
        """Count an UpdateContainers request and its evictions."""
        self._updates.labels(plugin).inc()
        if evictions:
            self._evictions.labels(plugin).inc(evictions)

    def evictions_requested(self, plugin: str, evictions: int) -> None:
        """Count the evictions ``plugin`` asked for in a reply to an event."""
        self._evictions.labels(plugin).inc(evictions)

    def plugin_registered(self, plugin: str) -> None:
        """Count a plugin joining the invocation list."""
        self._registered.inc()
        self._plugins.inc()

    def plugin_closed(self, plugin: str) -> None:
        """Count a registered plugin leaving."""
        self._closed.inc()
        self._plugins.dec()

    def conflict(self, plugin: str, event: str) -> None:
        """Count an ownership conflict caused by ``plugin``."""
        self._conflicts.labels(plugin, event).inc()
