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
        sys.exit(run(Hello))  # flags: --name --idx --socket-path --config --log-level --reconnect

Start it as ``python hello.py --idx 10 --name hello`` next to a runtime with NRI enabled (it
dials ``/var/run/nri/nri.sock``), or drop it as ``10-hello`` into the runtime's plugin
directory. The stub subscribes to exactly the events whose handlers are overridden (here:
CreateContainer), registers, takes its configuration and synchronizes, and then dispatches
events. Handlers may be ``def`` or ``async def``; lifecycle handlers return ``None`` (no
change), an :class:`~nri.api.Adjustment`, :class:`~nri.api.Update` objects, evictions, or a
list of those. Use :meth:`Plugin.update_containers` for unsolicited updates.
"""

from nri.stub._cli import (
    FILE_LOG_FORMAT,
    ConfigError,
    LogFile,
    argument_parser,
    default_plugin_name,
    load_config,
    read_config_file,
    run,
    setup_logging,
)
from nri.stub._plugin import (
    EVENT_HANDLERS,
    Change,
    Changes,
    EventHandler,
    Plugin,
    Subscription,
    implemented_events,
)
from nri.stub._stub import RuntimeGoneError, Stub, StubError, resolve_identity

__all__ = [
    "EVENT_HANDLERS",
    "FILE_LOG_FORMAT",
    "Change",
    "Changes",
    "ConfigError",
    "EventHandler",
    "LogFile",
    "Plugin",
    "RuntimeGoneError",
    "Stub",
    "StubError",
    "Subscription",
    "argument_parser",
    "default_plugin_name",
    "implemented_events",
    "load_config",
    "read_config_file",
    "resolve_identity",
    "run",
    "setup_logging",
]
