"""``nri-network-logger``: run the network-logger plugin against a runtime."""

from nri.stub import Flag, PluginCommand
from nri_network_logger._plugin import Config, NetworkLogger

COMMAND = PluginCommand(
    name="network-logger",
    description="Log the network namespace and IPs of pods as they start, stop and go away.",
    config=Config,
    flags=[Flag("json", "log each pod as a one-line JSON object", field="json")],
    plugin=lambda run: NetworkLogger(run.config, **run.overrides),
)
main = COMMAND.main

if __name__ == "__main__":
    main()
