"""``nri-resource-tuner``: run the resource-tuner plugin against a runtime."""

from nri.stub import Flag, PluginCommand
from nri_resource_tuner._plugin import ResourceTuner
from nri_resource_tuner._policy import Config

COMMAND = PluginCommand(
    name="resource-tuner",
    description="Place containers on exclusive or shared CPUs and tune CPU and memory by class.",
    config=Config,
    flags=[
        Flag(
            "host",
            "host description (YAML/JSON) to use instead of this machine's topology",
            field="host",
            type=str,
            metavar="FILE",
        ),
        Flag("verbose", "log every placement", field="verbose"),
    ],
    plugin=lambda run: ResourceTuner(run.config, source=run.config_source, **run.overrides),
)
main = COMMAND.main

if __name__ == "__main__":
    main()
