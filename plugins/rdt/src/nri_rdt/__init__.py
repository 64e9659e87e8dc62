"""NRI rdt: a container's Intel RDT settings from pod annotations.

A Python port of upstream containerd/nri ``plugins/rdt``: the same annotation keys
(``closid``, ``schemata`` and ``enablemonitoring`` ``.rdt.noderesource.dev/container.NAME``),
value syntax and adjustments. See README.md.
"""

from nri_rdt._plugin import (
    FIELDS,
    RDT_KEY_DOMAIN,
    Config,
    RdtAnnotationError,
    RdtPlugin,
    RdtSettings,
    build_adjustment,
    go_parse_bool,
    parse_config,
    parse_rdt,
    requested_keys,
)

__all__ = [
    "FIELDS",
    "RDT_KEY_DOMAIN",
    "Config",
    "RdtAnnotationError",
    "RdtPlugin",
    "RdtSettings",
    "build_adjustment",
    "go_parse_bool",
    "parse_config",
    "parse_rdt",
    "requested_keys",
]
