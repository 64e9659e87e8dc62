"""What the adaptation and the stub report to a metrics object (no dependencies).

These protocols are all :mod:`nri.adaptation` and :mod:`nri.stub` know of metrics; any
object with these methods will do, :class:`~nri.metrics.AdaptationMetrics` and
:class:`~nri.metrics.PluginMetrics` being the Prometheus ones.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["AdaptationObserver", "PluginObserver", "StubObserver"]


class PluginObserver(Protocol):
    """What one plugin connection of the runtime reports."""

    def request_done(self, plugin: str, event: str, seconds: float, error: str | None) -> None:
        """A request to ``plugin`` ended after ``seconds``; ``error``: None, ``"timeout"``
        or ``"error"``."""

    def validation_refused(self, plugin: str) -> None:
        """Validator ``plugin`` refused a container adjustment (or failed to validate)."""

    def unsolicited_update(self, plugin: str, evictions: int) -> None:
        """``plugin`` sent UpdateContainers, asking to evict ``evictions`` containers."""


class AdaptationObserver(PluginObserver, Protocol):
    """What the adaptation reports, besides what its plugin connections report."""

    def plugin_registered(self, plugin: str) -> None:
        """``plugin`` joined the invocation list."""

    def plugin_closed(self, plugin: str) -> None:
        """``plugin`` left the invocation list (its connection closed)."""

    def conflict(self, plugin: str, event: str) -> None:
        """``plugin`` claimed a field another plugin owns while handling ``event``."""

    def evictions_requested(self, plugin: str, evictions: int) -> None:
        """``plugin`` asked to evict ``evictions`` containers in its reply to an event."""


class StubObserver(Protocol):
    """What a plugin stub reports."""

    def handler_done(self, plugin: str, handler: str, seconds: float, failed: bool) -> None:
        """Handler ``handler`` of ``plugin`` returned (or raised) after ``seconds``."""

    def connected(self, plugin: str, up: bool) -> None:
        """The connection of ``plugin`` to the runtime came up or went down."""

    def reconnect(self, plugin: str) -> None:
        """``plugin`` lost the runtime and dials it again."""
