"""The ``nri-mock-runtime`` command: play scenario files, or serve a runtime interactively.

``run SCENARIO`` starts the mock runtime, launches the ``--plugin`` commands (and the
plugins pre-installed in ``--plugin-dir``), plays the scenario and prints per step which
plugin changed what, a diff of each changed container spec and what the plugin commands
wrote to stderr meanwhile (``--json``: one JSON document). ``serve`` keeps a runtime up and
reads lifecycle commands from stdin.

Plugins that connect to the runtime's socket by themselves (``--external-plugin`` commands,
which need a known ``--socket``, or plugins started elsewhere) are waited for with
``--wait-for``: a plugin that registers at several indices from one process, such as
nri-differ, is waited for by naming every registration or counting them.

The adaptation's settings beyond upstream's (``--timeout-policy``, ``--plugin-timeout``,
``--require-plugin``, ``--replace-plugins``, ... see :mod:`nri.mock._settings`) override
those of the scenario's ``runtime`` section; a bad value is reported on one line as
``nri-mock-runtime: error: ...``.

Exit status: 0 every expectation held, 1 an expectation failed, 2 bad usage or an invalid
scenario file, 3 a plugin failed to start or register.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from nri.metrics import parse_address
from nri.mock._player import RunResult
from nri.mock._profiles import PROFILES
from nri.mock._render import (
    Line,
    Printer,
    render_plugins,
    render_step,
    render_summary,
    run_data,
    use_color,
)
from nri.mock._scenario import Scenario, ScenarioError, load_scenario
from nri.mock._serve import serve
from nri.mock._settings import add_settings_options, settings_from_args
from nri.mock._startup import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    StartupError,
    parse_wait_for,
    progress,
    start_runtime,
    synchronized,
)

__all__ = ["argument_parser", "main", "play_scenario"]


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar='"CMD ARGS"',
        help="launch this plugin command (pre-connected, like a pre-installed plugin) and "
        "wait for it to register; repeatable, e.g. --plugin 'nri-template --idx 10'",
    )
    parser.add_argument(
        "--external-plugin",
        action="append",
        default=[],
        metavar='"CMD ARGS"',
        help="start this command as an external plugin that connects to --socket by itself "
        "(pass it the same path, e.g. with --socket-path) and wait for one more plugin to "
        "register; repeatable; see --wait-for for a command that registers several times",
    )
    parser.add_argument(
        "--wait-for",
        metavar="NAMES|COUNT",
        help="before going on, wait until these plugins are registered (comma-separated "
        "names or NN-names, e.g. 00-differ,50-differ), or COUNT plugins in all",
    )
    parser.add_argument(
        "--plugin-output",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show what the plugin commands started here write to stderr, prefixed with "
        "the plugin's name, after the step during which it arrived (in --json: each step's "
        "plugin_output); default: on",
    )
    parser.add_argument(
        "--profile",
        choices=list(PROFILES),
        help="behave as this runtime: send the pod and container data it sends, deliver "
        "events and treat plugins as it does (default: the scenario's profile, else "
        "containerd)",
    )
    parser.add_argument(
        "--plugin-dir", metavar="DIR", help="start the pre-installed plugins (NN-name) in DIR"
    )
    parser.add_argument(
        "--config-dir", metavar="DIR", help="configuration of pre-installed plugins (NN-name.conf)"
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="NRI socket for external plugins (default: one in a temporary directory)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for each plugin to register (default: 10)",
    )
    parser.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help="serve Prometheus metrics of the runtime's plugin calls at "
        "http://HOST:PORT/metrics (needs the extra nri[metrics])",
    )
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the output (auto: when rich is installed and stdout is a terminal)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the runtime's activity on stderr"
    )
    add_settings_options(parser)


def argument_parser() -> argparse.ArgumentParser:
    """The command line of ``nri-mock-runtime``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A mock NRI runtime: run NRI plugins against scripted pod and container "
        "lifecycles, without containerd or Kubernetes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="play a scenario file and show what the plugins changed",
        description="Play a scenario file through the mock runtime with the given plugins; "
        "exit status 0: all expectations held, 1: one failed, 2: usage or scenario error, "
        "3: a plugin failed to start or register.",
    )
    run.add_argument("scenario", metavar="SCENARIO", help="scenario file (YAML)")
    run.add_argument("--json", action="store_true", help="print one JSON document instead")
    _add_runtime_options(run)
    serve = commands.add_parser(
        "serve",
        help="keep a runtime up and drive it with commands on stdin",
        description="Keep a mock runtime up for interactive plugin development: plugins "
        "connect to the printed socket (or are launched with --plugin); lifecycle commands "
        "are read from stdin (type 'help'); events are printed as they happen.",
    )
    serve.add_argument(
        "--scenario",
        metavar="FILE",
        help="define this scenario's pods and containers, and add its existing ones, "
        "before plugins connect (its steps are not played; use 'load FILE' for that)",
    )
    _add_runtime_options(serve)
    return parser


async def play_scenario(
    args: argparse.Namespace, scenario: Scenario, out: Printer | None
) -> RunResult:
    """Start everything, play every step (printing each when ``out`` is given), stop."""
    runtime, player, commands = await start_runtime(args, scenario)
    try:
        result = RunResult(scenario, plugins=runtime.plugins)
        if out is not None:
            lines: list[Line] = [(f"scenario {scenario.name} ({scenario.source})", "heading")]
            if scenario.description:
                lines.append((scenario.description.strip(), "note"))
            out.print([*lines, *render_plugins(result.plugins)])
        await commands.settle()
        connected = player.since_last(synchronized(runtime))
        connected.plugin_output = commands.take()
        if connected.records or scenario.existing_pods or connected.plugin_output:
            result.connected = connected
            if out is not None:
                out.print(render_step(connected, player.names))
        for number, step in enumerate(scenario.steps, 1):
            step_result = await player.play(step)
            await commands.settle()
            step_result.plugin_output = commands.take()
            result.steps.append(step_result)
            if out is not None:
                out.print(render_step(step_result, player.names, number))
        result.names = dict(player.names)
        return result
    finally:
        await commands.stop()
        await runtime.close()


def _run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    out = None if args.json else Printer(sys.stdout, color=use_color(args.color, sys.stdout))
    try:
        result = asyncio.run(play_scenario(args, scenario, out))
    except StartupError as exc:
        progress(str(exc))
        return exc.status
    if out is not None:
        out.print(render_summary(result))
    else:
        print(json.dumps(run_data(result), indent=2))
    return EXIT_OK if result.passed else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nri-mock-runtime``; returns the exit status."""
    args = argument_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"{PROG}: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.timeout > 0:  # nan included
        progress("--timeout must be a positive number of seconds")
        return EXIT_USAGE
    for option, path in (("--plugin-dir", args.plugin_dir), ("--config-dir", args.config_dir)):
        if path is not None and not os.path.isdir(path):
            what = "not a directory" if os.path.exists(path) else "no such directory"
            progress(f"{option} {path!r}: {what}")
            return EXIT_USAGE
    if args.external_plugin and not args.socket:
        progress("--external-plugin needs --socket PATH: the command must know where to connect")
        return EXIT_USAGE
    if args.metrics_address is not None:
        try:
            parse_address(args.metrics_address)
        except ValueError as exc:
            progress(str(exc))
            return EXIT_USAGE
    if args.wait_for is not None:
        try:
            parse_wait_for(args.wait_for)
        except ValueError as exc:
            progress(str(exc))
            return EXIT_USAGE
    try:
        settings_from_args(args)
    except ValueError as exc:
        progress(f"error: {exc}")
        return EXIT_USAGE
    try:
        if args.command == "run":
            return _run(args)
        return serve(args)
    except KeyboardInterrupt:
        return 130
