"""Loading the optional ``prometheus_client`` dependency."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MetricsError", "prometheus"]

INSTALL_HINT = "metrics need the prometheus-client package: pip install 'nri[metrics]'"


class MetricsError(RuntimeError):
    """Metrics were asked for but cannot be provided (the extra is not installed)."""


def prometheus() -> ModuleType:
    """Return the ``prometheus_client`` module; raise MetricsError naming the extra if absent."""
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:
        raise MetricsError(INSTALL_HINT) from None
