"""``nri-device-injector``: run the device-injector plugin against a runtime."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import nri.stub
from nri.stub import ConfigError, load_config
from nri_device_injector._plugin import Config, DeviceInjector


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, validate the configuration, serve; exits with the status."""
    parser = nri.stub.argument_parser(
        "nri-device-injector",
        "Inject devices, CDI devices, mounts and I/O priority from pod annotations.",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log parsed annotations and adjustments"
    )
    parser.add_argument(
        "--no-host-lookup",
        action="store_true",
        help="reject device entries that need a host lookup (path only, or match)",
    )
    args = parser.parse_args(argv)
    config = Config()
    if args.config is not None:
        try:
            text = args.config.read_text()
            config = load_config(text, Config, source=str(args.config))
        except OSError as exc:
            parser.exit(2, f"{parser.prog}: error: cannot read {args.config}: {exc.strerror}\n")
        except ConfigError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
    overrides = {}
    if args.verbose:
        overrides["verbose"] = True
    if args.no_host_lookup:
        overrides["host_lookup"] = False
    sys.exit(nri.stub.run(DeviceInjector(config, **overrides), args=args))


if __name__ == "__main__":
    main()
