"""Command line of the hook-injector plugin: ``nri-hook-injector --idx 10 [--hook-dirs ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import nri.stub
from nri.stub import ConfigError
from nri_hook_injector._hooks import DEFAULT_HOOK_DIRS
from nri_hook_injector._plugin import DEFAULT_POLL_INTERVAL, HookInjector, parse_config

PROG = "nri-hook-injector"


def build_parser() -> argparse.ArgumentParser:
    """The shared NRI plugin flags plus ``--hook-dirs`` and ``--poll-interval``."""
    parser = nri.stub.argument_parser(
        PROG, "Inject OCI hooks from hook configuration directories into new containers."
    )
    group = parser.add_argument_group("hook-injector options")
    group.add_argument(
        "--hook-dirs",
        metavar="DIR[,DIR...]",
        help="hook directories in increasing precedence (default: "
        + ",".join(DEFAULT_HOOK_DIRS)
        + "; overrides hookDirs of the configuration)",
    )
    group.add_argument(
        "--poll-interval",
        metavar="SECONDS",
        type=float,
        help=f"seconds between rescans of the directories, 0 for none (default: "
        f"{DEFAULT_POLL_INTERVAL:g}; files are also rechecked on every CreateContainer)",
    )
    return parser


def parse_hook_dirs(value: str) -> list[str]:
    """Split ``--hook-dirs``; raises ValueError on an empty entry or a non-directory."""
    dirs = [d.strip() for d in value.split(",")]
    for i, directory in enumerate(dirs):
        if not directory:
            raise ValueError(f"--hook-dirs: entry {i + 1} of {value!r} is empty")
        path = Path(directory)
        if path.exists() and not path.is_dir():
            raise ValueError(f"--hook-dirs: {directory} exists but is not a directory")
    return dirs


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, check the configuration up front, then run the plugin."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        dirs = parse_hook_dirs(args.hook_dirs) if args.hook_dirs is not None else None
    except ValueError as exc:
        parser.error(str(exc))
    if args.poll_interval is not None and args.poll_interval < 0:
        parser.error(f"--poll-interval: must be >= 0, got {args.poll_interval:g}")
    plugin = HookInjector(dirs, args.poll_interval)
    if args.config is not None:
        try:
            text = args.config.read_text()
        except OSError as exc:
            parser.error(f"--config: cannot read {args.config}: {exc.strerror or exc}")
        try:
            plugin.apply_config(parse_config(text, str(args.config)))
        except ConfigError as exc:
            parser.error(f"--config: {exc}")
    return nri.stub.run(plugin, args=args)


if __name__ == "__main__":
    sys.exit(main())
