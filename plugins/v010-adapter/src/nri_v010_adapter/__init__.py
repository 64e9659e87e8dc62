"""NRI v010-adapter: NRI v0.1.0 plugins hooked into today's NRI events.

A Python port of upstream containerd/nri ``plugins/v010-adapter`` with the v0.1.0 client it
embeds: ``/etc/nri/conf.json``, plugin binaries on ``$PATH`` and in ``/opt/nri/bin``, one
JSON request on stdin and one JSON result on stdout per run. See README.md.
"""

from nri_v010_adapter._invoke import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, InvokeError, Invoker
from nri_v010_adapter._plugin import V010Adapter, load_config
from nri_v010_adapter._v010 import (
    CREATE,
    DEFAULT_BINARY_PATH,
    DEFAULT_CONF_PATH,
    DELETE,
    VERSION,
    V010Config,
    V010ConfigError,
    V010Plugin,
    V010Result,
    V010ResultError,
    V010Spec,
    build_request,
    go_compact,
    go_json,
    parse_config,
    parse_result,
    resources_to_oci_json,
    spec_from_container,
    spec_from_pod,
)

__all__ = [
    "CREATE",
    "DEFAULT_BINARY_PATH",
    "DEFAULT_CONF_PATH",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_TIMEOUT",
    "DELETE",
    "VERSION",
    "InvokeError",
    "Invoker",
    "V010Adapter",
    "V010Config",
    "V010ConfigError",
    "V010Plugin",
    "V010Result",
    "V010ResultError",
    "V010Spec",
    "build_request",
    "go_compact",
    "go_json",
    "load_config",
    "parse_config",
    "parse_result",
    "resources_to_oci_json",
    "spec_from_container",
    "spec_from_pod",
]
