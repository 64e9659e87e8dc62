"""``nri-logger``: the command line of the request logger plugin."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import nri.stub
from nri.stub import ConfigError
from nri_logger._config import LoggerConfig, merge, parse_config
from nri_logger._plugin import RequestLogger

DESCRIPTION = "NRI plugin logging every request and event it subscribes to, as YAML."

# command-line flags that override the same config key when given
_FLAG_FIELDS = ("log_file", "events", "add_annotation", "set_annotation", "add_env", "set_env")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The shared NRI plugin flags plus upstream's logger flags."""
    parser = nri.stub.argument_parser(prog, DESCRIPTION)
    group = parser.add_argument_group("logger options")
    group.add_argument("--events", help="comma-separated list of events to subscribe to")
    group.add_argument("--log-file", help="log to this file (appending) instead of stderr")
    group.add_argument("--add-annotation", metavar="KEY", help="add this annotation to containers")
    group.add_argument("--set-annotation", metavar="KEY", help="set this annotation on containers")
    group.add_argument("--add-env", metavar="NAME", help="add this environment variable")
    group.add_argument("--set-env", metavar="NAME", help="set this environment variable")
    return parser


def build_plugin(args: argparse.Namespace) -> RequestLogger:
    """The plugin for parsed ``args``: --config file first, explicit flags over it.

    Raises ConfigError for an unreadable or invalid config file, bad events or an
    unopenable log file.
    """
    config, text = LoggerConfig(), None
    if args.config is not None:
        path: Path = args.config
        text = nri.stub.read_config_file(path)
        loaded, given = parse_config(text, source=str(path))
        config = merge(config, loaded, given)
    flags = {name: getattr(args, name) for name in _FLAG_FIELDS}
    config = merge(
        config,
        LoggerConfig(**{k: v for k, v in flags.items() if v is not None}),
        {k for k, v in flags.items() if v is not None},
    )
    config.event_mask("--events" if args.events is not None else "config")
    return RequestLogger(config, startup_config=text)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and config, then serve the runtime; exits 2 on bad input."""
    parser = build_parser("nri-logger")
    args = parser.parse_args(argv)
    nri.stub.default_plugin_name(args, "logger")
    try:
        plugin = build_plugin(args)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        code = nri.stub.run(plugin, args=args)
    finally:
        plugin.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
