"""``nri-rules``: run the rules plugin, or check/explain a rules file without a runtime."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from nri.stub import Flag, Invocation, PluginCommand, number
from nri_rules._apply import host_resolver, parse_rules
from nri_rules._explain import SUBCOMMANDS
from nri_rules._explain import main as subcommand_main
from nri_rules._plugin import DEFAULT_POLL_INTERVAL, RulesPlugin
from nri_rules._rules import RuleSet


def make(run: Invocation[RuleSet]) -> RulesPlugin:
    """The plugin serving the rules of ``--config``, watching that file."""
    interval = run.args.poll_interval
    return RulesPlugin(
        run.config,
        run.args.config,
        poll_interval=DEFAULT_POLL_INTERVAL if interval is None else interval,
        resolve=host_resolver(
            host_lookup=run.args.host_lookup is not False,
            host_permissions=run.args.host_permissions is not False,
        ),
        initial_text=run.config_text,
    )


COMMAND = PluginCommand(
    name="rules",
    description="Adjust containers by the ordered rules of a YAML file (--config FILE). "
    "Without a runtime: check FILE validates rules files, explain FILE --pod POD.yaml shows "
    "what they do to a pod (see check --help, explain --help).",
    config=RuleSet,
    parse_config=parse_rules,
    flags=[
        Flag(
            "poll-interval",
            f"seconds between checks of the rules file for changes, 0 for none (default: "
            f"{DEFAULT_POLL_INTERVAL:g}; it is also checked at every event)",
            type=number(float, minimum=0, unit="seconds"),
            metavar="SECONDS",
        ),
        Flag("host-lookup", "allow devices looked up on the host (default: true)"),
        Flag(
            "host-permissions",
            "looked-up devices take mode and owner from the host node (default: true)",
        ),
    ],
    plugin=make,
)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: a subcommand (``check``, ``explain``) or the plugin command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        sys.exit(subcommand_main(args))
    COMMAND.main(args)


if __name__ == "__main__":
    main()
