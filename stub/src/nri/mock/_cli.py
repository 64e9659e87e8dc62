"""The ``nri-mock-runtime`` command: play scenario files, or serve a runtime interactively.

``run SCENARIO`` starts the mock runtime, launches the ``--plugin`` commands (and the
plugins pre-installed in ``--plugin-dir``), plays the scenario and prints per step which
plugin changed what and a diff of each changed container spec (``--json``: one JSON
document). ``serve`` keeps a runtime up and reads lifecycle commands from stdin.

Exit status: 0 every expectation held, 1 an expectation failed, 2 bad usage or an invalid
scenario file, 3 a plugin failed to start or register.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from nri.adaptation import AdaptationError
from nri.mock._player import Player, RunResult
from nri.mock._render import (
    Line,
    Printer,
    render_plugins,
    render_step,
    render_summary,
    run_data,
    use_color,
)
from nri.mock._runtime import MockRuntime, PluginLaunchError
from nri.mock._scenario import Scenario, ScenarioError, load_scenario

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_PLUGIN", "EXIT_USAGE", "StartupError", "main"]

PROG = "nri-mock-runtime"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PLUGIN = 3


class StartupError(Exception):
    """The runtime or a plugin could not be started; ``status`` is the exit status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def progress(message: str, stream: TextIO | None = None) -> None:
    """Tell the person at the terminal what is happening (on stderr)."""
    print(f"{PROG}: {message}", file=stream or sys.stderr, flush=True)


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
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the output (auto: when rich is installed and stdout is a terminal)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the runtime's activity on stderr"
    )


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


async def start_runtime(
    args: argparse.Namespace, scenario: Scenario | None
) -> tuple[MockRuntime, Player]:
    """Start the runtime with the scenario's existing state, then bring up every plugin.

    Raises :class:`StartupError` (the runtime is closed again) when the runtime cannot
    listen or a plugin does not come up; the message names the plugin and the timeout.
    """
    runtime = MockRuntime(
        socket_path=args.socket, plugin_path=args.plugin_dir, plugin_config_path=args.config_dir
    )
    player = Player(runtime, scenario)
    try:
        if scenario is not None:
            player.add_existing(scenario)
        if args.plugin_dir:
            progress(f"starting the pre-installed plugins in {args.plugin_dir}")
        try:
            await runtime.start()
        except AdaptationError as exc:
            raise StartupError(EXIT_USAGE, f"cannot start the runtime: {exc}") from exc
        if args.plugin_dir:
            names = ", ".join(p.full_name for p in runtime.plugins) or "none"
            progress(f"pre-installed plugins registered: {names}")
        for command in args.plugin:
            await _launch(runtime, command, args.timeout)
    except BaseException:
        await runtime.close()
        raise
    return runtime, player


async def _launch(runtime: MockRuntime, command: str, timeout: float) -> None:  # noqa: ASYNC109
    progress(f"launching {command!r}, waiting up to {timeout:g}s for it to register")
    try:
        handle = await runtime.launch_plugin(command, timeout=timeout)
    except PluginLaunchError as exc:
        raise StartupError(EXIT_PLUGIN, str(exc)) from exc
    except TimeoutError as exc:
        raise StartupError(EXIT_PLUGIN, f"timeout: {exc}") from exc
    except ValueError as exc:  # a command line shlex cannot split
        raise StartupError(EXIT_USAGE, f"--plugin {command!r}: {exc}") from exc
    progress(f"plugin {handle.info.full_name} registered (pid {handle.pid})")


async def play_scenario(
    args: argparse.Namespace, scenario: Scenario, out: Printer | None
) -> RunResult:
    """Start everything, play every step (printing each when ``out`` is given), stop."""
    runtime, player = await start_runtime(args, scenario)
    try:
        result = RunResult(scenario, plugins=runtime.plugins)
        if out is not None:
            lines: list[Line] = [(f"scenario {scenario.name} ({scenario.source})", "heading")]
            if scenario.description:
                lines.append((scenario.description.strip(), "note"))
            out.print([*lines, *render_plugins(result.plugins)])
        connected = player.since_last(synchronized(runtime))
        if connected.records or scenario.existing_pods:
            result.connected = connected
            if out is not None:
                out.print(render_step(connected, player.names))
        for number, step in enumerate(scenario.steps, 1):
            step_result = await player.play(step)
            result.steps.append(step_result)
            if out is not None:
                out.print(render_step(step_result, player.names, number))
        result.names = dict(player.names)
        return result
    finally:
        await runtime.close()


def synchronized(runtime: MockRuntime) -> str:
    """The heading of what happened while plugins connected and synchronized."""
    pods, containers = len(runtime.pods), len(runtime.containers)
    return (
        f"plugins connected (Synchronize: {pods} pod{'s' * (pods != 1)}, "
        f"{containers} container{'s' * (containers != 1)})"
    )


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
    if args.timeout <= 0:
        progress("--timeout must be a positive number of seconds")
        return EXIT_USAGE
    try:
        if args.command == "run":
            return _run(args)
        from nri.mock._serve import serve

        return serve(args)
    except KeyboardInterrupt:
        return 130
