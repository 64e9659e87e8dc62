"""Well-known paths, environment variables, timeouts and versions of the NRI protocol."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_PLUGIN_CONFIG_PATH",
    "DEFAULT_PLUGIN_PATH",
    "DEFAULT_REGISTRATION_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SOCKET_PATH",
    "DEVEL_VERSION",
    "NRI_VERSION",
    "PLUGIN_AUTH_FILE_ENV_VAR",
    "PLUGIN_IDX_ENV_VAR",
    "PLUGIN_NAME_ENV_VAR",
    "PLUGIN_SOCKET_ENV_VAR",
    "SELINUX_RELABEL",
    "UNKNOWN_VERSION",
]

#: Socket on which the runtime accepts external plugins.
DEFAULT_SOCKET_PATH: Final = "/var/run/nri/nri.sock"
#: Directory the runtime scans for pre-installed plugins (``NN-name`` executables).
DEFAULT_PLUGIN_PATH: Final = "/opt/nri/plugins"
#: Drop-in directory holding ``NN-name.conf`` / ``name.conf`` plugin configuration.
DEFAULT_PLUGIN_CONFIG_PATH: Final = "/etc/nri/conf.d"

#: Environment variable naming a pre-connected socket file descriptor (launched plugins).
PLUGIN_SOCKET_ENV_VAR: Final = "NRI_PLUGIN_SOCKET"
#: Environment variable carrying the plugin name of a launched plugin.
PLUGIN_NAME_ENV_VAR: Final = "NRI_PLUGIN_NAME"
#: Environment variable carrying the two-digit plugin index of a launched plugin.
PLUGIN_IDX_ENV_VAR: Final = "NRI_PLUGIN_IDX"
#: Environment variable naming a file with plugin authentication keys.
PLUGIN_AUTH_FILE_ENV_VAR: Final = "NRI_PLUGIN_AUTH_FILE"

#: Seconds from connection accept until RegisterPlugin must have arrived.
DEFAULT_REGISTRATION_TIMEOUT: Final = 5.0
#: Seconds allowed for each runtime -> plugin request.
DEFAULT_REQUEST_TIMEOUT: Final = 2.0

#: NRI version announced in RegisterPluginRequest / ConfigureRequest ``NRI_version``.
NRI_VERSION: Final = "v0.12.3"
#: Version reported when detection fails (upstream ``version.UnknownVersion``).
UNKNOWN_VERSION: Final = "0.0.0-unknown"
#: Version reported by Go builds inside the NRI repository (upstream ``version.DevelVersion``).
DEVEL_VERSION: Final = "(devel)"

#: Mount pseudo-option requesting SELinux relabeling.
SELINUX_RELABEL: Final = "relabel"
