"""``nri-resource-tuner``: run the resource-tuner plugin against a runtime."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import nri.stub
from nri.stub import ConfigError, load_config
from nri_resource_tuner._plugin import ResourceTuner
from nri_resource_tuner._policy import Config


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, validate the configuration and host, serve; exits with the
    status."""
    parser = nri.stub.argument_parser(
        "nri-resource-tuner",
        "Place containers on exclusive or shared CPUs and tune CPU and memory by class.",
    )
    parser.add_argument(
        "--host",
        metavar="FILE",
        help="host description (YAML/JSON) to use instead of this machine's topology",
    )
    parser.add_argument("--verbose", action="store_true", help="log every placement")
    args = parser.parse_args(argv)
    config = Config()
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.verbose:
        overrides["verbose"] = True
    try:
        if args.config is not None:
            text = args.config.read_text()
            config = load_config(text, Config, source=str(args.config))
        plugin = ResourceTuner(config, source=str(args.config or "configuration"), **overrides)
    except OSError as exc:
        parser.exit(2, f"{parser.prog}: error: cannot read {args.config}: {exc.strerror}\n")
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    sys.exit(nri.stub.run(plugin, args=args))


if __name__ == "__main__":
    main()
