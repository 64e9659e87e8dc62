"""``nri-ulimit-adjuster``: run the ulimit-adjuster plugin against a runtime."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import nri.stub
from nri.stub import ConfigError, load_config
from nri_ulimit_adjuster._plugin import Config, UlimitAdjuster


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, validate the configuration, serve; exits with the status."""
    parser = nri.stub.argument_parser(
        "nri-ulimit-adjuster", "Adjust container rlimits from pod annotations."
    )
    parser.add_argument("--verbose", action="store_true", help="log every adjusted ulimit")
    args = parser.parse_args(argv)
    config = Config()
    if args.config is not None:
        try:
            config = load_config(args.config.read_text(), Config, source=str(args.config))
        except OSError as exc:
            parser.exit(2, f"{parser.prog}: error: cannot read {args.config}: {exc.strerror}\n")
        except ConfigError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
    overrides = {"verbose": True} if args.verbose else {}
    sys.exit(nri.stub.run(UlimitAdjuster(config, **overrides), args=args))


if __name__ == "__main__":
    main()
