"""Serving a metrics registry over HTTP (``GET /metrics``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from nri.metrics._require import MetricsError, prometheus

__all__ = ["MetricsServer", "metrics_endpoint", "parse_address", "serve_metrics"]


class _Metrics(Protocol):
    registry: Any


T = TypeVar("T", bound=_Metrics)


def parse_address(text: str, *, option: str = "--metrics-address") -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:9100``, ``:9100`` for every address); raise ValueError
    with one line naming ``option`` when it is not one."""
    host, sep, port_text = text.rpartition(":")
    bad = f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9100"
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(bad)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(bad) from None
    elif ":" in host or any(c.isspace() for c in host):
        raise ValueError(bad)
    return host or "0.0.0.0", int(port_text)


class MetricsServer:
    """A running HTTP endpoint (in a background thread) serving one registry."""

    def __init__(self, server: Any, thread: Any) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port listened on (useful after asking for port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def serve_metrics(
    registry: Any, address: str, *, option: str = "--metrics-address"
) -> MetricsServer:
    """Serve ``registry`` at ``http://address/metrics``.

    Raises ValueError (one line naming ``option``) for a bad address or one that cannot be
    listened on, :class:`~nri.metrics.MetricsError` without ``prometheus_client``.
    """
    prom = prometheus()
    host, port = parse_address(address, option=option)
    try:
        server, thread = prom.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ValueError(f"{option} {address!r}: cannot listen: {exc.strerror or exc}") from None
    return MetricsServer(server, thread)


def metrics_endpoint(
    factory: Callable[[], T], address: str, *, option: str = "--metrics-address"
) -> tuple[T, MetricsServer]:
    """Check ``address``, make the metrics with ``factory`` and serve their ``registry``.

    What a command does for its ``--metrics-address``: every failure (bad address, missing
    ``prometheus_client``, address in use) is one ValueError line naming ``option``.
    """
    parse_address(address, option=option)
    try:
        metrics = factory()
    except MetricsError as exc:
        raise ValueError(f"{option}: {exc}") from None
    return metrics, serve_metrics(metrics.registry, address, option=option)
