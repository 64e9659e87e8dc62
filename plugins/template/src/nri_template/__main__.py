"""``nri-template``: the command line of the template plugin."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import nri.stub
from nri.stub import ConfigError
from nri_template._plugin import TemplatePlugin, parse_config

DESCRIPTION = "NRI template plugin: logs every event; copy it to start a new plugin."


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The shared NRI plugin flags; add the plugin's own here."""
    return nri.stub.argument_parser(prog, DESCRIPTION)


def build_plugin(args: argparse.Namespace) -> TemplatePlugin:
    """The plugin for parsed ``args``; ConfigError for a bad --config file."""
    if args.config is None:
        return TemplatePlugin()
    path: Path = args.config
    return TemplatePlugin(parse_config(nri.stub.read_config_file(path), str(path)))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and config, then serve the runtime; exits 2 on bad input."""
    parser = build_parser("nri-template")
    args = parser.parse_args(argv)
    nri.stub.default_plugin_name(args, "template")
    try:
        plugin = build_plugin(args)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    sys.exit(nri.stub.run(plugin, args=args))


if __name__ == "__main__":
    main()
