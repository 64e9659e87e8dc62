"""``nri-v010-adapter``: run NRI v0.1.0 plugins for pod and container events."""

from __future__ import annotations

import argparse

from nri.stub import Flag, Invocation, PluginCommand
from nri_v010_adapter._invoke import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT
from nri_v010_adapter._plugin import V010Adapter, load_config
from nri_v010_adapter._v010 import DEFAULT_BINARY_PATH, DEFAULT_CONF_PATH


def _positive_seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value}")
    return number


def _positive_bytes(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bytes: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {value}")
    return number


def _plugin(run: Invocation[None]) -> V010Adapter:
    args = run.args
    conf = args.v010_config or DEFAULT_CONF_PATH
    load_config(conf)  # a broken file is reported before connecting (exit status 2)
    return V010Adapter(
        conf,
        args.v010_bin_dir or DEFAULT_BINARY_PATH,
        timeout=args.invoke_timeout or DEFAULT_TIMEOUT,
        max_output=args.max_output or DEFAULT_MAX_OUTPUT,
    )


COMMAND: PluginCommand[None] = PluginCommand(
    name="v010-adapter",
    description="Run NRI v0.1.0 plugins at pod and container start and stop.",
    flags=[
        Flag(
            "v010-config",
            f"the v0.1.0 plugin configuration, read at every event (default: {DEFAULT_CONF_PATH})",
            type=str,
            metavar="FILE",
        ),
        Flag(
            "v010-bin-dir",
            f"directory searched after $PATH for plugin binaries (default: {DEFAULT_BINARY_PATH})",
            type=str,
            metavar="DIR",
        ),
        Flag(
            "invoke-timeout",
            f"kill a v0.1.0 plugin running longer (default: {DEFAULT_TIMEOUT:g})",
            type=_positive_seconds,
            metavar="SECONDS",
        ),
        Flag(
            "max-output",
            f"kill a v0.1.0 plugin writing more to stdout (default: {DEFAULT_MAX_OUTPUT})",
            type=_positive_bytes,
            metavar="BYTES",
        ),
    ],
    plugin=_plugin,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
