"""NRI ulimit-adjuster: container rlimits from pod annotations.

A Python port of upstream containerd/nri ``plugins/ulimit-adjuster``: same annotation keys,
value syntax, type-name normalization and errors. See README.md.
"""

from nri_ulimit_adjuster._plugin import (
    OLD_ULIMIT_KEY,
    RLIMIT_PREFIX,
    RLIMIT_TYPES,
    ULIMIT_KEY,
    Config,
    ContainerUlimitError,
    Ulimit,
    UlimitAdjuster,
    UlimitError,
    annotation_keys,
    build_adjustment,
    normalize_type,
    parse_ulimits,
)

__all__ = [
    "OLD_ULIMIT_KEY",
    "RLIMIT_PREFIX",
    "RLIMIT_TYPES",
    "ULIMIT_KEY",
    "Config",
    "ContainerUlimitError",
    "Ulimit",
    "UlimitAdjuster",
    "UlimitError",
    "annotation_keys",
    "build_adjustment",
    "normalize_type",
    "parse_ulimits",
]
