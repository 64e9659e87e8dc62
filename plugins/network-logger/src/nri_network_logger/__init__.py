"""NRI network-logger: log the network namespace and IPs of every pod.

A Python port of upstream containerd/nri ``plugins/network-logger``: the same events and
log lines, plus an optional JSON form. See README.md.
"""

from nri_network_logger._plugin import (
    HOST_NETWORK,
    Config,
    NetworkLogger,
    format_ips,
    network_namespace,
    pod_line,
    pod_record,
)

__all__ = [
    "HOST_NETWORK",
    "Config",
    "NetworkLogger",
    "format_ips",
    "network_namespace",
    "pod_line",
    "pod_record",
]
