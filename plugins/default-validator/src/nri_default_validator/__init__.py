"""NRI default-validator: the runtime's default validator as a standalone plugin.

Upstream containerd/nri runs ``plugins/default-validator`` inside the runtime; this plugin
runs the same checks (``nri.adaptation.DefaultValidator``) over the NRI socket, for
runtimes that have no validator built in. See README.md.
"""

from nri_default_validator._plugin import (
    ConfigError,
    DefaultValidatorPlugin,
    Rejected,
    describe,
    parse_config,
)

__all__ = [
    "ConfigError",
    "DefaultValidatorPlugin",
    "Rejected",
    "describe",
    "parse_config",
]
