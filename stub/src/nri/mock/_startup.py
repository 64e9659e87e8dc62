"""Bringing up a mock runtime and its plugin commands for ``nri-mock-runtime run`` and ``serve``.

:func:`start_runtime` starts the runtime with a scenario's existing pods and containers,
then the plugin commands of the command line; :class:`PluginCommands` keeps what those
write to stderr until it is shown. Errors become :class:`StartupError` with the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from nri.adaptation import AdaptationError
from nri.api import parse_plugin_name
from nri.metrics import AdaptationMetrics, metrics_endpoint
from nri.mock._hosting import (
    PluginLaunchError,
    PluginProcess,
    collect_stderr,
    find_command,
    tail,
    terminate,
)
from nri.mock._player import Player
from nri.mock._runtime import MockRuntime
from nri.mock._scenario import Scenario
from nri.mock._settings import RuntimeSettings, settings_from_args
from nri.net import PLUGIN_SOCKET_ENV

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_PLUGIN",
    "EXIT_USAGE",
    "PROG",
    "PluginCommands",
    "StartupError",
    "parse_wait_for",
    "progress",
    "start_runtime",
    "synchronized",
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

    def preinstalled_sink(self) -> Callable[[str, str], None] | None:
        """What :attr:`MockRuntime.on_preinstalled_output` is set to (None: output off)."""
        if not self.show_output:
            return None

        def add(name: str, line: str) -> None:
            self._lines.append(([name], line))
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
                *find_command(argv),
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
        runtime = self.runtime
        if not self.show_output or not (runtime.processes or self.external or runtime.preinstalled):
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
            await terminate(process)
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
    profile = args.profile or (scenario.profile if scenario is not None else None) or "containerd"
    metrics = None
    if getattr(args, "metrics_address", None) is not None:
        try:
            metrics, _ = metrics_endpoint(AdaptationMetrics, args.metrics_address)
        except ValueError as exc:
            raise StartupError(EXIT_USAGE, str(exc)) from None
    base = scenario.settings if scenario is not None else RuntimeSettings()
    try:
        settings = settings_from_args(args).over(base)
        runtime = MockRuntime(
            metrics=metrics,
            profile=profile,
            socket_path=args.socket,
            plugin_path=args.plugin_dir,
            plugin_config_path=args.config_dir,
            registration_timeout=args.timeout,
            **settings.options(),
        )
    except (ValueError, AdaptationError) as exc:
        raise StartupError(EXIT_USAGE, f"error: {exc}") from None
    player = Player(runtime, scenario)
    commands = PluginCommands(runtime, show_output=args.plugin_output)
    runtime.on_preinstalled_output = commands.preinstalled_sink()
    try:
        progress(f"runtime profile: {profile}")
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
            _check_preinstalled(runtime)
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


def _check_preinstalled(runtime: MockRuntime) -> None:
    """StartupError (exit 3) naming each pre-installed plugin that did not register."""
    registered = {p.full_name for p in runtime.plugins}
    failed = []
    for plugin in runtime.preinstalled:
        try:
            parse_plugin_name(plugin.name)
        except ValueError:
            continue  # not NN-name: the adaptation skipped it with a warning
        if plugin.name not in registered:
            failed.append(plugin)
    if not failed:
        return
    lines = []
    for plugin in failed:
        lines.append(f"pre-installed plugin {plugin.name} ({plugin.path}) did not register")
        output = tail(plugin.stderr).rstrip()
        if output:
            lines.append(f"--- its output (tail) ---\n{output}")
    raise StartupError(EXIT_PLUGIN, "\n".join(lines))


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


def synchronized(runtime: MockRuntime) -> str:
    """The heading of what happened while plugins connected and synchronized."""
    pods, containers = len(runtime.pods), len(runtime.containers)
    return (
        f"plugins connected (Synchronize: {pods} pod{'s' * (pods != 1)}, "
        f"{containers} container{'s' * (containers != 1)})"
    )
