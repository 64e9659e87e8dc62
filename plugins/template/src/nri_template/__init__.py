"""nri-template: a plugin implementing every lifecycle handler, to copy when writing a new one.

A Python port of upstream containerd/nri ``plugins/template``.
"""

from nri_template._plugin import TemplateConfig, TemplatePlugin, parse_config

__all__ = ["TemplateConfig", "TemplatePlugin", "parse_config"]
