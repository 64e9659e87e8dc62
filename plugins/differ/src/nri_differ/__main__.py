"""``nri-differ``: one process, one stub per index, all served concurrently."""

from __future__ import annotations

import os

from nri.net import PLUGIN_SOCKET_ENV
from nri.stub import ConfigError, Flag, Invocation, PluginCommand
from nri_differ._config import DifferConfig, parse_config, parse_indices
from nri_differ._plugin import DifferPlugin, Tracker


def make(run: Invocation[DifferConfig]) -> dict[str, DifferPlugin]:
    """One plugin per index, sharing one tracker; flags over the configuration file."""
    if os.environ.get(PLUGIN_SOCKET_ENV):
        raise ConfigError(
            "nri-differ registers several indices and cannot run as a pre-installed plugin "
            "on one runtime-provided socket; start it as an external plugin"
        )
    config = run.configured
    if "indices" in run.overrides:
        indices = parse_indices(config.indices, "--indices")
    else:
        indices = config.index_list(f"{run.config_source}: indices")
    tracker = Tracker(indices, config)
    run.on_exit(tracker.close)
    return {idx: DifferPlugin(tracker, idx, run.config_text) for idx in indices}


COMMAND = PluginCommand(
    name="differ",
    description="NRI plugin registering at several indices to show what the plugins between "
    "them change in pods and containers.",
    config=DifferConfig,
    parse_config=lambda text, source: parse_config(text, source=source)[0],
    flags=[
        Flag(
            "indices",
            "comma-separated indices to register at, at least two (default: 0,99)",
            field="indices",
            type=str,
        ),
        Flag("log-file", "log to this file (appending) instead of stderr", "log_file", str),
        Flag(
            "verbose-level",
            "0: changes only; 1: also the original data; 2: also data before and after each "
            "diff; 3: also Synchronize data",
            field="verbose_level",
            type=int,
            choices=range(4),
        ),
        Flag("yaml", "print a unified YAML diff", field="yaml"),
    ],
    plugin=make,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
