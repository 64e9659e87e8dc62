"""Reading a Prometheus endpoint in tests (needs the extra ``nri[metrics]``)."""

from __future__ import annotations

import socket
import urllib.request

__all__ = ["MetricSamples", "free_tcp_port", "scrape_metrics"]

MetricSamples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""Sample values by ``(name, frozenset of (label, value) pairs)``."""


def scrape_metrics(port: int, host: str = "127.0.0.1") -> MetricSamples:
    """Every sample served at ``http://host:port/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for a ``--metrics-address``)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
