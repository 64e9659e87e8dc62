"""``nri-device-injector``: run the device-injector plugin against a runtime."""

from nri.stub import Flag, PluginCommand
from nri_device_injector._plugin import Config, DeviceInjector, parse_config

COMMAND = PluginCommand(
    name="device-injector",
    description="Inject devices, CDI devices, mounts and I/O priority from pod annotations.",
    config=Config,
    parse_config=parse_config,
    flags=[
        Flag("verbose", "log parsed annotations and adjustments", field="verbose"),
        Flag(
            "no-host-lookup",
            "reject device entries that need a host lookup (path only, or match)",
            field="host_lookup",
            value=False,
        ),
    ],
    plugin=lambda run: DeviceInjector(run.config, **run.overrides),
)
main = COMMAND.main

if __name__ == "__main__":
    main()
