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

Exit status: 0 every expectation held, 1 an expectation failed, 2 bad usage or an invalid
scenario file, 3 a plugin failed to start or register.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
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
from nri.mock._runtime import (
    MockRuntime,
    PluginLaunchError,
    PluginProcess,
    _terminate,
    collect_stderr,
)
from nri.mock._scenario import Scenario, ScenarioError, load_scenario
from nri.net import PLUGIN_SOCKET_ENV

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_PLUGIN",
    "EXIT_USAGE",
    "PluginCommands",
    "StartupError",
    "main",
]

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


class PluginCommands:
    """The plugin commands started for the command line, and the lines they write to stderr.

    Lines are kept (when ``show_output``) until :meth:`take`, labelled with the plugin's
    name: ``NN-name`` of a ``--plugin`` command, the registered name(s) of an external one.
    """

    QUIET = 0.02
    """Seconds without a new line after which the plugins count as flushed."""
    SETTLE_LIMIT = 0.5
    """At most this many seconds are spent waiting for plugins to flush."""

    def __init__(self, runtime: MockRuntime, *, show_output: bool = True) -> None:
        self.runtime = runtime
        self.show_output = show_output
        self.external: list[asyncio.subprocess.Process] = []
        self._lines: list[tuple[list[str], str]] = []
        self._arrived = 0
        self._readers: set[asyncio.Future[None]] = set()

    def _sink(self, label: list[str]) -> Callable[[str], None] | None:
        if not self.show_output:
            return None

        def add(line: str) -> None:
            self._lines.append((label, line))
            self._arrived += 1

        return add

    async def launch(self, command: str | Sequence[str], timeout: float) -> PluginProcess:  # noqa: ASYNC109
        """Launch a pre-connected plugin command; see :meth:`MockRuntime.launch_plugin`."""
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        # A cell the sink reads at take(): the plugin's name is known once it registered.
        label = [os.path.basename(argv[0]) if argv else "?"]
        handle = await self.runtime.launch_plugin(
            argv, timeout=timeout, on_output=self._sink(label)
        )
        label[0] = handle.info.full_name
        return handle

    async def start_external(self, command: str, timeout: float) -> list[str]:  # noqa: ASYNC109
        """Start a command that connects to the runtime's socket by itself; wait until one
        more plugin registered and return the names it registered under so far.

        Raises PluginLaunchError when it cannot start or exits first, TimeoutError.
        """
        argv = shlex.split(command)
        if not argv:
            raise PluginLaunchError(argv, "empty command")
        # Not a pre-connected plugin: an inherited NRI_PLUGIN_SOCKET would mislead it.
        environ = {k: v for k, v in os.environ.items() if k != PLUGIN_SOCKET_ENV}
        before = len(self.runtime.plugins)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=environ,
            )
        except OSError as exc:
            raise PluginLaunchError(argv, f"cannot start: {exc}") from exc
        self.external.append(process)
        label = [os.path.basename(argv[0])]
        stderr = bytearray()
        reader = asyncio.ensure_future(collect_stderr(process, stderr, self._sink(label)))
        self._readers.add(reader)
        registered = asyncio.ensure_future(
            self.runtime.wait_for_plugins(before + 1, timeout=timeout)
        )
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait({registered, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if not registered.done():
            registered.cancel()
            await asyncio.wait({reader}, timeout=1.0)
            why = f"exited with status {process.returncode} before registering"
            raise PluginLaunchError(argv, why, bytes(stderr).decode("utf-8", "replace"))
        try:
            registered.result()
        except TimeoutError:
            tail = bytes(stderr).decode("utf-8", "replace").rstrip()
            raise TimeoutError(
                f"plugin {command!r} did not register within {timeout:g}s"
                + (f"; its stderr:\n{tail}" if tail else "")
            ) from None
        names = sorted({p.name for p in self.runtime.plugins if p.pid == process.pid})
        if names:
            label[0] = ",".join(names)
        return [p.full_name for p in self.runtime.plugins if p.pid == process.pid]

    async def settle(self) -> None:
        """Give the plugins a moment to flush: return once no line arrived for a while."""
        if not self.show_output or not (self.runtime.processes or self.external):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.SETTLE_LIMIT
        while True:
            seen = self._arrived
            await asyncio.sleep(self.QUIET)
            if self._arrived == seen or loop.time() >= deadline:
                return

    def take(self) -> list[tuple[str, str]]:
        """The (plugin, line) pairs that arrived since the last call."""
        lines, self._lines = self._lines, []
        return [(label[0], line) for label, line in lines]

    async def stop(self) -> None:
        """Terminate the external plugin commands (the runtime stops its own)."""
        for process in self.external:
            await _terminate(process)
        if self._readers:
            await asyncio.wait(self._readers, timeout=1.0)


def parse_wait_for(text: str) -> tuple[int | None, list[str]]:
    """``--wait-for``: a count of plugins, or comma-separated names; ValueError if empty."""
    if text.strip().isdigit():
        return int(text), []
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--wait-for {text!r}: expected plugin names (a,b) or a number")
    return None, names


async def start_runtime(
    args: argparse.Namespace, scenario: Scenario | None
) -> tuple[MockRuntime, Player, PluginCommands]:
    """Start the runtime with the scenario's existing state, then bring up every plugin.

    Raises :class:`StartupError` (the runtime is closed again) when the runtime cannot
    listen or a plugin does not come up; the message names the plugin and the timeout.
    """
    runtime = MockRuntime(
        socket_path=args.socket, plugin_path=args.plugin_dir, plugin_config_path=args.config_dir
    )
    player = Player(runtime, scenario)
    commands = PluginCommands(runtime, show_output=args.plugin_output)
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
            await _launch(commands, command, args.timeout)
        for command in args.external_plugin:
            await _start_external(commands, command, args.timeout)
        if args.wait_for is not None:
            await _wait_for(runtime, args.wait_for, args.timeout)
    except BaseException:
        await commands.stop()
        await runtime.close()
        raise
    return runtime, player, commands


@contextlib.contextmanager
def _startup_errors(option: str, command: str) -> Iterator[None]:
    """Turn the errors of starting a plugin command into StartupErrors with exit statuses."""
    try:
        yield
    except PluginLaunchError as exc:
        raise StartupError(EXIT_PLUGIN, str(exc)) from exc
    except TimeoutError as exc:
        raise StartupError(EXIT_PLUGIN, f"timeout: {exc}") from exc
    except ValueError as exc:  # a command line shlex cannot split
        raise StartupError(EXIT_USAGE, f"{option} {command!r}: {exc}") from exc


async def _launch(commands: PluginCommands, command: str, timeout: float) -> None:  # noqa: ASYNC109
    progress(f"launching {command!r}, waiting up to {timeout:g}s for it to register")
    with _startup_errors("--plugin", command):
        handle = await commands.launch(command, timeout)
    progress(f"plugin {handle.info.full_name} registered (pid {handle.pid})")


async def _start_external(commands: PluginCommands, command: str, timeout: float) -> None:  # noqa: ASYNC109
    progress(f"starting {command!r}, waiting up to {timeout:g}s for it to connect and register")
    with _startup_errors("--external-plugin", command):
        names = await commands.start_external(command, timeout)
    progress(f"a plugin registered: {', '.join(names) or '(from another process)'}")


async def _wait_for(runtime: MockRuntime, wanted: str, timeout: float) -> None:  # noqa: ASYNC109
    count, names = parse_wait_for(wanted)
    progress(f"waiting up to {timeout:g}s for plugins {wanted}")
    try:
        await runtime.wait_for_plugins(count, names, timeout=timeout)
    except TimeoutError as exc:
        raise StartupError(EXIT_PLUGIN, f"--wait-for {wanted}: {exc}") from exc
    progress(f"registered: {', '.join(p.full_name for p in runtime.plugins)}")


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
    if not args.timeout > 0:  # nan included
        progress("--timeout must be a positive number of seconds")
        return EXIT_USAGE
    if args.external_plugin and not args.socket:
        progress("--external-plugin needs --socket PATH: the command must know where to connect")
        return EXIT_USAGE
    if args.wait_for is not None:
        try:
            parse_wait_for(args.wait_for)
        except ValueError as exc:
            progress(str(exc))
            return EXIT_USAGE
    try:
        if args.command == "run":
            return _run(args)
        from nri.mock._serve import serve

        return serve(args)
    except KeyboardInterrupt:
        return 130
