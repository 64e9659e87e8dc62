"""``nri-logger``: run the request logger plugin against a runtime."""

from __future__ import annotations

from nri.stub import Flag, Invocation, PluginCommand
from nri_logger._config import LoggerConfig, parse_config
from nri_logger._plugin import RequestLogger


def make(run: Invocation[LoggerConfig]) -> RequestLogger:
    """The plugin: flags over the configuration file (upstream's order)."""
    config = run.configured
    config.event_mask("--events" if "events" in run.overrides else run.config_source)
    plugin = RequestLogger(config, startup_config=run.config_text)
    run.on_exit(plugin.close)
    return plugin


COMMAND = PluginCommand(
    name="logger",
    description="NRI plugin logging every request and event it subscribes to, as YAML.",
    config=LoggerConfig,
    parse_config=lambda text, source: parse_config(text, source=source)[0],
    flags=[
        Flag("events", "comma-separated list of events to subscribe to", "events", str),
        Flag("log-file", "log to this file (appending) instead of stderr", "log_file", str),
        Flag("add-annotation", "add this annotation to containers", "add_annotation", str),
        Flag("set-annotation", "set this annotation on containers", "set_annotation", str),
        Flag("add-env", "add this environment variable", "add_env", str),
        Flag("set-env", "set this environment variable", "set_env", str),
    ],
    plugin=make,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
