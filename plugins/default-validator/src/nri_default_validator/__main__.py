"""``nri-default-validator``: run the default validator as a validating plugin."""

from __future__ import annotations

import logging

from nri.adaptation import DefaultValidatorConfig
from nri.stub import Flag, Invocation, PluginCommand
from nri_default_validator._plugin import DefaultValidatorPlugin, parse_config


def _plugin(run: Invocation[DefaultValidatorConfig]) -> DefaultValidatorPlugin:
    # The validator logs each rejection, and so does the stub (naming the container): keep
    # the validator's own lines for --verbose.
    validator_log = logging.getLogger("nri.adaptation")
    validator_log.setLevel(logging.DEBUG if run.args.verbose else logging.CRITICAL)
    return DefaultValidatorPlugin(run.config)


COMMAND: PluginCommand[DefaultValidatorConfig] = PluginCommand(
    name="default-validator",
    description="Reject container adjustments as the runtime's built-in default validator "
    "does, with its configuration keys.",
    parse_config=parse_config,
    flags=[Flag("verbose", "log every validated adjustment")],
    plugin=_plugin,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
