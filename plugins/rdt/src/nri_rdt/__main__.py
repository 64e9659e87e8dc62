"""``nri-rdt``: run the rdt plugin against a runtime."""

from __future__ import annotations

import logging

from nri.stub import Flag, Invocation, PluginCommand
from nri_rdt._plugin import Config, RdtPlugin, parse_config


def _plugin(run: Invocation[Config]) -> RdtPlugin:
    if run.args.verbose:
        logging.getLogger("nri.rdt").setLevel(logging.DEBUG)
    return RdtPlugin(run.config, **run.overrides)


COMMAND = PluginCommand(
    name="rdt",
    description="Set containers' Intel RDT settings (closID, schemata, monitoring) from pod "
    "annotations.",
    config=Config,
    parse_config=parse_config,
    flags=[Flag("verbose", "log the plugin's decisions at debug level")],
    plugin=_plugin,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
