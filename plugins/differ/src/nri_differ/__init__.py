"""nri-differ: register at several indices and show what plugins in between change.

A Python port of upstream containerd/nri ``plugins/differ``. One process runs one stub
per index (``--indices 0,50,99``); for each pod and container event the plugin at each
index compares what it receives with what the previous index received, and logs the
changed field paths or a unified YAML diff.
"""

from nri_differ._config import DifferConfig, parse_config, parse_indices
from nri_differ._data import FieldChange, field_changes, to_data, to_yaml, yaml_diff
from nri_differ._plugin import DifferPlugin, Tracker

__all__ = [
    "DifferConfig",
    "DifferPlugin",
    "FieldChange",
    "Tracker",
    "field_changes",
    "parse_config",
    "parse_indices",
    "to_data",
    "to_yaml",
    "yaml_diff",
]
