"""Write NRI plugins: subclass :class:`Plugin`, override the handlers you need, run it.

A complete plugin that adds an environment variable to every new container::

    import sys

    from nri.api import Adjustment
    from nri.stub import Plugin, run


    class Hello(Plugin):
        def create_container(self, pod, container):
            self.log.info("creating %s/%s", pod.name, container.name)
            return Adjustment().add_env("HELLO", "world")


    if __name__ == "__main__":
        sys.exit(run(Hello))  # flags: --name --idx --socket-path --config --log-level ...

Start it as ``python hello.py --idx 10 --name hello`` next to a runtime with NRI enabled (it
dials ``/var/run/nri/nri.sock``), or drop it as ``10-hello`` into the runtime's plugin
directory. The stub subscribes to exactly the events whose handlers are overridden (here:
CreateContainer), registers, takes its configuration and synchronizes, and then dispatches
events. Handlers may be ``def`` or ``async def``; lifecycle handlers return ``None`` (no
change), an :class:`~nri.api.Adjustment`, :class:`~nri.api.Update` objects, evictions, or a
list of those. Use :meth:`Plugin.update_containers` for unsolicited updates. Raise
:class:`RequestError` (or a ValueError) to refuse one request: it is logged on one line.

A plugin package declares its command instead: a :class:`PluginCommand` names the plugin (its
default ``--name``), its configuration dataclass, its own flags (:class:`Flag`) and the factory of
the plugin, and gets the shared command line in our and upstream's spellings (``--idx 10``,
``-idx 10``, ``-idx=10``), ``--config`` checking, ``--version``, ``--log-format`` and exit
statuses (0 stopped, 1 runtime gone, 2 bad input reported as ``prog: error: ...``).
"""

from nri.stub._allowlist import (
    Allowlist,
    InjectionDenied,
    LabelRequirement,
    load_config_with_allowlist,
    parse_allowlist,
)
from nri.stub._cli import (
    PluginArgumentParser,
    argument_parser,
    config_keys,
    default_plugin_name,
    go_bool,
    load_config,
    load_config_fields,
    number,
    read_config_file,
    version_text,
)
from nri.stub._command import Flag, Invocation, PluginCommand, PluginFactory, run
from nri.stub._errors import (
    EXPECTED_ERRORS,
    ConfigError,
    RegistrationRefusedError,
    RequestError,
    RuntimeGoneError,
    StubError,
)
from nri.stub._logging import (
    FILE_LOG_FORMAT,
    LOG_FORMATS,
    JsonFormatter,
    LogFile,
    LogfmtFormatter,
    setup_logging,
)
from nri.stub._plugin import (
    EVENT_HANDLERS,
    Change,
    Changes,
    EventHandler,
    Plugin,
    PluginHost,
    Subscription,
    implemented_events,
)
from nri.stub._stub import Stub, resolve_identity

__all__ = [
    "EVENT_HANDLERS",
    "EXPECTED_ERRORS",
    "FILE_LOG_FORMAT",
    "LOG_FORMATS",
    "Allowlist",
    "Change",
    "Changes",
    "ConfigError",
    "EventHandler",
    "Flag",
    "InjectionDenied",
    "Invocation",
    "JsonFormatter",
    "LabelRequirement",
    "LogFile",
    "LogfmtFormatter",
    "Plugin",
    "PluginArgumentParser",
    "PluginCommand",
    "PluginFactory",
    "PluginHost",
    "RegistrationRefusedError",
    "RequestError",
    "RuntimeGoneError",
    "Stub",
    "StubError",
    "Subscription",
    "argument_parser",
    "config_keys",
    "default_plugin_name",
    "go_bool",
    "implemented_events",
    "load_config",
    "load_config_fields",
    "load_config_with_allowlist",
    "number",
    "parse_allowlist",
    "read_config_file",
    "resolve_identity",
    "run",
    "setup_logging",
    "version_text",
]
