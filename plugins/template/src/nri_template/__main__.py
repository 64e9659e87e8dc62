"""``nri-template``: run the template plugin against a runtime."""

from nri.stub import PluginCommand
from nri_template._plugin import TemplateConfig, TemplatePlugin

COMMAND = PluginCommand(
    name="template",
    description="NRI template plugin: logs every event; copy it to start a new plugin.",
    config=TemplateConfig,
    plugin=lambda run: TemplatePlugin(run.config),
)
main = COMMAND.main

if __name__ == "__main__":
    main()
