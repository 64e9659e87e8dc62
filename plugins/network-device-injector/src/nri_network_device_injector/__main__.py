"""``nri-network-device-injector``: run the network-device-injector plugin against a runtime."""

from nri.stub import Flag, PluginCommand
from nri_network_device_injector._plugin import Config, NetworkDeviceInjector, parse_config

COMMAND = PluginCommand(
    name="network-device-injector",
    description="Move host network devices into pods as their annotations ask.",
    config=Config,
    parse_config=parse_config,
    flags=[
        Flag("verbose", "dump every pod the plugin handles", field="verbose"),
        Flag("strict", "fail the pod when a device cannot be moved", field="strict"),
        Flag(
            "configure-devices",
            "apply the annotated address/prefix and mtu inside the pod",
            field="configure_devices",
        ),
        Flag(
            "default-new-name",
            "a device without new_name keeps its host name in the pod",
            field="default_new_name",
        ),
        Flag(
            "documented-key",
            "also read the netdevices.noderesource.dev annotation",
            field="documented_key",
        ),
    ],
    plugin=lambda run: NetworkDeviceInjector(run.config, **run.overrides),
)
main = COMMAND.main

if __name__ == "__main__":
    main()
