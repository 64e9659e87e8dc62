"""Prometheus metrics of the runtime adaptation and of plugin commands (extra ``nri[metrics]``).

:class:`AdaptationMetrics` observes an :class:`~nri.adaptation.Adaptation` (pass it as
``Adaptation(..., metrics=...)``): per-plugin request latency, errors and timeouts, ownership
conflicts, validation refusals, unsolicited updates, evictions and the registered plugins.
:class:`PluginMetrics` observes plugin stubs (``Stub(..., observer=...)``): handler latency
and errors, reconnects and whether the stub is connected. Both keep their metrics in a
``prometheus_client.CollectorRegistry`` (:attr:`~AdaptationMetrics.registry`), which
:func:`serve_metrics` exposes over HTTP. Importing this package does not import
``prometheus_client``; creating a metrics object without it raises :class:`MetricsError`.
"""

from __future__ import annotations

from nri.metrics._adaptation import AdaptationMetrics
from nri.metrics._http import MetricsServer, metrics_endpoint, parse_address, serve_metrics
from nri.metrics._observer import AdaptationObserver, PluginObserver, StubObserver
from nri.metrics._require import MetricsError
from nri.metrics._stub import PluginMetrics

__all__ = [
    "AdaptationMetrics",
    "AdaptationObserver",
    "MetricsError",
    "MetricsServer",
    "PluginMetrics",
    "PluginObserver",
    "StubObserver",
    "metrics_endpoint",
    "parse_address",
    "serve_metrics",
]
