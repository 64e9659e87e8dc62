"""``nri-hook-injector``: run the hook-injector plugin against a runtime."""

from __future__ import annotations

import argparse
import os

from nri.stub import Flag, Invocation, PluginCommand, number
from nri_hook_injector._hooks import DEFAULT_HOOK_DIRS
from nri_hook_injector._plugin import (
    DEFAULT_POLL_INTERVAL,
    HookInjector,
    HookInjectorConfig,
    parse_config,
)


def parse_hook_dirs(value: str) -> list[str]:
    """Split ``--hook-dirs``; an empty entry or a non-directory is an argument error."""
    dirs = [d.strip() for d in value.split(",")]
    for i, directory in enumerate(dirs):
        if not directory:
            raise argparse.ArgumentTypeError(f"entry {i + 1} of {value!r} is empty")
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise argparse.ArgumentTypeError(f"{directory} exists but is not a directory")
    return dirs


def make(run: Invocation[HookInjectorConfig]) -> HookInjector:
    """The plugin: flags over the configuration file over the defaults."""
    if run.args.verbose:
        run.args.log_level = "debug"
    interval = 0.0 if run.args.disable_watch else run.args.poll_interval
    plugin = HookInjector(run.args.hook_dirs, interval)
    plugin.apply_config(run.config)
    return plugin


COMMAND = PluginCommand(
    name="hook-injector",
    description="Inject OCI hooks from hook configuration directories into new containers.",
    config=HookInjectorConfig,
    parse_config=parse_config,
    flags=[
        Flag(
            "hook-dirs",
            "hook directories in increasing precedence (default: "
            f"{','.join(DEFAULT_HOOK_DIRS)}; overrides hookDirs of the configuration)",
            type=parse_hook_dirs,
            metavar="DIR[,DIR...]",
        ),
        Flag(
            "poll-interval",
            f"seconds between rescans of the directories, 0 for none (default: "
            f"{DEFAULT_POLL_INTERVAL:g}; files are also rechecked on every CreateContainer)",
            type=number(float, minimum=0, unit="seconds"),
            metavar="SECONDS",
        ),
        Flag(
            "disable-watch",
            "no background rescans (--poll-interval 0)",
            aliases=["disableWatch"],
        ),
        Flag("verbose", "log at debug level (--log-level debug)"),
    ],
    plugin=make,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
