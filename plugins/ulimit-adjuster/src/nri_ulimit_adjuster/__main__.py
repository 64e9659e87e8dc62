"""``nri-ulimit-adjuster``: run the ulimit-adjuster plugin against a runtime."""

from nri.stub import Flag, PluginCommand
from nri_ulimit_adjuster._plugin import Config, UlimitAdjuster, parse_config

COMMAND = PluginCommand(
    name="ulimit-adjuster",
    description="Adjust container rlimits from pod annotations.",
    config=Config,
    parse_config=parse_config,
    flags=[Flag("verbose", "log every adjusted ulimit", field="verbose")],
    plugin=lambda run: UlimitAdjuster(run.config, **run.overrides),
)
main = COMMAND.main

if __name__ == "__main__":
    main()
