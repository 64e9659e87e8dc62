"""nri-hook-injector: an NRI plugin that injects OCI hooks configured as in CRI-O and podman.

Hook files (``*.json``, oci-hooks(5) schema 1.0.0 or 0.1.0) are read from hook directories (by
default ``/usr/share/containers/oci/hooks.d`` then ``/etc/containers/oci/hooks.d``, later
directories masking files of the same name) and every matching hook is added to each new
container's OCI hooks for the stages the file lists.
"""

from nri_hook_injector._hooks import (
    DEFAULT_HOOK_DIRS,
    SCHEMA_VERSION,
    STAGES,
    HookConfig,
    HookConfigError,
    HookManager,
    HookMatchError,
    When,
    load_hook_file,
    parse_hook,
)
from nri_hook_injector._plugin import (
    DEFAULT_POLL_INTERVAL,
    HookInjector,
    HookInjectorConfig,
    parse_config,
)

__all__ = [
    "DEFAULT_HOOK_DIRS",
    "DEFAULT_POLL_INTERVAL",
    "SCHEMA_VERSION",
    "STAGES",
    "HookConfig",
    "HookConfigError",
    "HookInjector",
    "HookInjectorConfig",
    "HookManager",
    "HookMatchError",
    "When",
    "load_hook_file",
    "parse_config",
    "parse_hook",
]
