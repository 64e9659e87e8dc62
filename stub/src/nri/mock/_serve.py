"""``nri-mock-runtime serve``: a mock runtime driven line by line from stdin.

Lifecycle commands become scenario steps (so they are checked and played exactly as in a
scenario file), and their events are printed with the same renderer as ``run``. Events that
arrive while idle, such as unsolicited updates from plugins, and plugins registering or
going away are printed as they happen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from nri.api import api_pb2 as pb
from nri.mock._checks import resolve_pointer
from nri.mock._hosting import PluginLaunchError
from nri.mock._player import Player
from nri.mock._render import (
    Line,
    Printer,
    render_plugin_output,
    render_plugins,
    render_step,
    use_color,
)
from nri.mock._runtime import MockRuntime
from nri.mock._scenario import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    parse_step,
    parse_yaml,
)
from nri.mock._settings import RuntimeSettings
from nri.mock._startup import (
    EXIT_OK,
    EXIT_USAGE,
    PluginCommands,
    StartupError,
    progress,
    start_runtime,
    synchronized,
)

__all__ = ["HELP", "Session", "serve"]

SOURCE = "<command>"
_SIMPLE_STEPS = (
    "start-container",
    "stop-container",
    "remove-container",
    "stop-pod",
    "remove-pod",
    "sleep",
)
WATCH_INTERVAL = 0.1
PROMPT = "nri> "
"""The prompt of ``serve`` when stdin is a terminal."""

HELP = """\
commands (POD and CTR are scenario keys, runtime IDs or names):
  run-pod POD [--namespace NS] [--uid UID] [--label K=V]... [--annotation K=V]...
          [--runtime-handler H]        (just POD: as a loaded scenario defines it)
  create-container POD NAME [--env K=V]... [--annotation K=V]... [--label K=V]...
          [--mount SRC:DST[:OPT,...]]... [--resources YAML] [-- ARGS...]
  create-container CTR                 a container a loaded scenario defines
  start-container CTR | stop-container CTR | remove-container CTR
  update-container CTR RESOURCES     RESOURCES: OCI linux.resources as YAML, e.g.
  update-pod POD RESOURCES             {cpu: {shares: 512}, memory: {limit: 1000000}}
  stop-pod POD | remove-pod POD | sleep SECONDS
  {STEP}               one scenario step in YAML flow style, expectations included, e.g.
                       {create-container: c, expect: {spec: [{path: /process/env, contains: A}]}}
  load FILE            define a scenario's pods and containers and play its steps
  launch CMD ARGS      launch a plugin command and wait for it to register
  plugins              registered plugins
  list                 pods and containers
  show CTR [POINTER]   a container's OCI spec (or the part at a JSON pointer)
  help | quit          (end of input quits too)"""


class _CommandError(Exception):
    """A command line that cannot be run; the message says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never returns: report instead of exiting
        raise _CommandError(f"{self.prog}: {message}")


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _CommandError(f"{option} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _mount(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise _CommandError(f"--mount {text!r}: expected SRC:DST or SRC:DST:OPT,OPT")
    mount: dict[str, Any] = {"source": parts[0], "destination": parts[1], "type": "bind"}
    mount["options"] = parts[2].split(",") if len(parts) == 3 else ["rbind"]
    return mount


def _yaml_value(text: str) -> Any:
    try:
        return parse_yaml(text, SOURCE)
    except ScenarioError as exc:
        raise _CommandError(str(exc)) from exc


class Session:
    """One interactive runtime: reads command lines, plays them, prints what happened."""

    def __init__(
        self,
        runtime: MockRuntime,
        player: Player,
        out: Printer,
        *,
        timeout: float = 10.0,
        commands: PluginCommands | None = None,
        prompt: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.prompt = prompt
        """Shown before each command when reading from a terminal; events then leave out
        the heading that repeats the command (the terminal shows it already)."""
        self.player = player
        self.out = out
        self.timeout = timeout
        self.commands = commands if commands is not None else PluginCommands(runtime)
        self.lock = asyncio.Lock()
        self._known_plugins = {p.full_name for p in runtime.plugins}
        self._commands: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "run-pod": self._run_pod,
            "create-container": self._create_container,
            "load": self._load,
            "launch": self._launch,
            "plugins": self._plugins,
            "list": self._list,
            "show": self._show,
            "help": self._help,
        }
        self._pod_parser = _Parser(prog="run-pod", add_help=False)
        self._pod_parser.add_argument("pod")
        self._pod_parser.add_argument("--namespace")
        self._pod_parser.add_argument("--uid")
        self._pod_parser.add_argument("--label", action="append", default=[])
        self._pod_parser.add_argument("--annotation", action="append", default=[])
        self._pod_parser.add_argument("--runtime-handler")
        self._ctr_parser = _Parser(prog="create-container", add_help=False)
        self._ctr_parser.add_argument("pod")
        self._ctr_parser.add_argument("name", nargs="?")
        for option in ("--env", "--annotation", "--label", "--mount"):
            self._ctr_parser.add_argument(option, action="append", default=[])
        self._ctr_parser.add_argument("--resources")

    # -- dispatch ----------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Run one command line; False when the session should end."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line in ("quit", "exit"):
            return False
        async with self.lock:
            self.out.print(self._new_events())
            try:
                await self._dispatch(line)
            except (_CommandError, ScenarioError) as exc:
                self.out.print([(f"error: {exc}", "error")])
            await self.commands.settle()
            self._print_plugin_output()
        return True

    def _print_plugin_output(self) -> None:
        output = self.commands.take()
        if output:
            self.out.print(render_plugin_output(output))

    async def _dispatch(self, line: str) -> None:
        if line.startswith("{"):
            await self._play(_yaml_value(line))
            return
        word, _, rest = line.partition(" ")
        if word in ("update-container", "update-pod"):
            target, _, resources = rest.strip().partition(" ")
            if not target or not resources.strip():
                raise _CommandError(f"usage: {word} {word[7:].upper()} RESOURCES")
            kind = word.partition("-")[2]
            step = {word: {kind: target, "resources": _yaml_value(resources)}}
            await self._play(step)
            return
        try:
            argv = shlex.split(rest)
        except ValueError as exc:
            raise _CommandError(f"{word}: {exc}") from exc
        if word in _SIMPLE_STEPS:
            await self._simple(word, argv)
        elif word in self._commands:
            await self._commands[word](argv)
        else:
            raise _CommandError(f"unknown command {word!r}; type 'help'")

    async def _simple(self, word: str, argv: list[str]) -> None:
        if len(argv) != 1:
            raise _CommandError(f"usage: {word} {'SECONDS' if word == 'sleep' else 'NAME'}")
        value: Any = argv[0]
        if word == "sleep":
            try:
                value = float(value)
            except ValueError:
                raise _CommandError(f"sleep {value!r}: expected a number of seconds") from None
        await self._play({word: value})

    async def _play(self, raw_step: Any) -> None:
        result = await self.player.play(parse_step(raw_step, SOURCE, "step"))
        await self.commands.settle()
        result.plugin_output = self.commands.take()
        lines = render_step(result, self.player.names)
        self.out.print(lines[1:] if self.prompt is not None else lines)

    # -- commands ----------------------------------------------------------------------------

    async def _run_pod(self, argv: list[str]) -> None:
        opts = self._pod_parser.parse_args(argv)
        if len(argv) == 1 and opts.pod in self.player.pod_defs:  # as defined by a scenario
            await self._play({"run-pod": opts.pod})
            return
        fields: dict[str, Any] = {
            "labels": _pairs(opts.label, "--label"),
            "annotations": _pairs(opts.annotation, "--annotation"),
        }
        for key in ("namespace", "uid", "runtime_handler"):
            if getattr(opts, key) is not None:
                fields[key] = getattr(opts, key)
        scenario = parse_scenario({"pods": {opts.pod: fields}}, SOURCE)
        self.player.pod_defs.update(scenario.pods)
        await self._play({"run-pod": opts.pod})

    async def _create_container(self, argv: list[str]) -> None:
        args: list[str] = []
        if "--" in argv:
            argv, args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
        opts = self._ctr_parser.parse_args(argv)
        if opts.name is None:
            if len(argv) != 1 or opts.pod not in self.player.container_defs:
                raise _CommandError(
                    "usage: create-container POD NAME [options] [-- ARGS...], or "
                    "create-container CTR for a container a loaded scenario defines"
                )
            await self._play({"create-container": opts.pod})
            return
        fields: dict[str, Any] = {
            "pod": opts.pod,
            "env": _pairs(opts.env, "--env"),
            "annotations": _pairs(opts.annotation, "--annotation"),
            "labels": _pairs(opts.label, "--label"),
            "mounts": [_mount(m) for m in opts.mount],
        }
        if args:
            fields["args"] = args
        if opts.resources is not None:
            fields["resources"] = _yaml_value(opts.resources)
        document = {"pods": {opts.pod: None}, "containers": {opts.name: fields}}
        scenario = parse_scenario(document, SOURCE)
        self.player.container_defs.update(scenario.containers)
        await self._play({"create-container": opts.name})

    async def _load(self, argv: list[str]) -> None:
        if len(argv) != 1:
            raise _CommandError("usage: load FILE")
        scenario = load_scenario(argv[0])
        if scenario.profile is not None and scenario.profile != self.runtime.profile.name:
            note = (
                f"{scenario.name} is written for {scenario.profile}; this runtime behaves as "
                f"{self.runtime.profile.name} (--profile)"
            )
            self.out.print([(note, "note")])
        if scenario.settings != RuntimeSettings():
            note = f"{scenario.name}: its runtime section does not apply to a running runtime"
            self.out.print([(note, "note")])
        self.player.define(scenario)
        if scenario.existing_pods or scenario.existing_containers:
            reused = self.player.add_existing(scenario)
            notes: list[Line] = [
                (f"{what} exists already: the scenario's steps act on it", "note")
                for what in reused
            ]
            added = len(scenario.existing_pods) + len(scenario.existing_containers)
            if added > len(reused):
                notes.append(
                    (
                        "existing pods and containers added; plugins connected already do not see "
                        "them (no Synchronize)",
                        "note",
                    )
                )
            self.out.print(notes)
        failed = 0
        for number, step in enumerate(scenario.steps, 1):
            result = await self.player.play(step)
            await self.commands.settle()
            result.plugin_output = self.commands.take()
            failed += not result.passed
            self.out.print(render_step(result, self.player.names, number))
        verdict = f"{scenario.name}: {len(scenario.steps)} steps, {failed} failed"
        self.out.print([(verdict, "fail" if failed else "pass")])

    async def _launch(self, argv: list[str]) -> None:
        if not argv:
            raise _CommandError("usage: launch CMD [ARGS...]")
        try:
            handle = await self.commands.launch(argv, self.timeout)
        except (PluginLaunchError, TimeoutError) as exc:
            raise _CommandError(str(exc)) from exc
        self._known_plugins.add(handle.info.full_name)
        self.out.print([(f"plugin {handle.info.full_name} registered (pid {handle.pid})", "pass")])

    async def _plugins(self, argv: list[str]) -> None:
        self.out.print(render_plugins(self.runtime.plugins))

    async def _list(self, argv: list[str]) -> None:
        lines: list[Line] = []
        for pod in self.runtime.pods.values():
            lines.append((f"pod {pod.name} ({pod.id}, {pod.namespace}, {pod.state})", ""))
            for ctr in self.runtime.containers.values():
                if ctr.pod_id == pod.id:
                    state = _state_name(ctr.state)
                    lines.append((f"  container {ctr.name} ({ctr.id}, {state})", ""))
        self.out.print(lines or [("no pods", "note")])

    async def _show(self, argv: list[str]) -> None:
        if len(argv) not in (1, 2):
            raise _CommandError("usage: show CTR [POINTER]")
        try:
            ctr = self.player.container(argv[0])
        except KeyError as exc:
            raise _CommandError(str(exc.args[0])) from exc
        found, value = resolve_pointer(ctr.spec, argv[1] if len(argv) == 2 else "")
        if not found:
            raise _CommandError(f"{argv[1]}: not in the spec of {argv[0]}")
        text = json.dumps(value, indent=2, sort_keys=True)
        self.out.print([(line, "") for line in text.splitlines()])

    async def _help(self, argv: list[str]) -> None:
        self.out.print([(line, "") for line in HELP.splitlines()])

    # -- watching ----------------------------------------------------------------------------

    def _new_events(self) -> list[Line]:
        plugins = {p.full_name for p in self.runtime.plugins}
        lines: list[Line] = [
            (f"plugin {name} registered", "pass") for name in sorted(plugins - self._known_plugins)
        ]
        self._known_plugins = plugins
        idle = self.player.since_last("while idle")
        if idle.records:
            idle.plugin_output = self.commands.take()
            lines += render_step(idle, self.player.names)
        else:
            lines += render_plugin_output(self.commands.take())
        return lines

    async def watch(self) -> None:
        """Print plugin arrivals and departures and unsolicited events while idle."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if not self.lock.locked():
                async with self.lock:
                    lines = self._new_events()
                    if not lines:
                        continue
                    if self.prompt is None:
                        self.out.print(lines)
                        continue
                    # Waiting at the prompt: end its line, show the events, prompt again.
                    self.out.print([("", ""), *lines])
                    self.out.stream.write(self.prompt)
                    self.out.stream.flush()


def _state_name(state: int) -> str:
    return pb.ContainerState.Name(state).removeprefix("CONTAINER_").lower()


def _stdin_lines(
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[str | None],
    prompt: str | None,
    ready: threading.Event,
) -> None:
    """Read stdin in a thread; with a ``prompt``, show it and read one line each time
    ``ready`` is set (once the previous command is done)."""

    # A daemon thread, so that a pending read never keeps the process alive at exit.
    def read() -> None:
        if prompt is None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        else:
            while ready.wait():
                ready.clear()
                try:
                    line = input(prompt)
                except EOFError:
                    print(file=sys.stdout, flush=True)  # end the prompt's line
                    break
                loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()


async def _serve(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario) if args.scenario else None
    out = Printer(sys.stdout, color=use_color(args.color, sys.stdout))
    runtime, player, commands = await start_runtime(args, scenario)
    prompt = PROMPT if sys.stdin.isatty() else None
    if prompt is not None:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
    session = Session(runtime, player, out, timeout=args.timeout, commands=commands, prompt=prompt)
    ready = threading.Event()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    main = asyncio.current_task()
    assert main is not None
    # A signal ends the session at once, even in the middle of a command (sleep 600); more
    # signals while closing down are ignored so that plugins are still terminated.
    interrupted: list[int] = []

    def interrupt(signum: int) -> None:
        if not interrupted:
            interrupted.append(signum)
            main.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt, signum)
    watcher = asyncio.ensure_future(session.watch())
    try:
        out.print(
            [
                (f"NRI socket: {runtime.socket_path}", "heading"),
                (f"connect plugins with: --socket-path {runtime.socket_path}", "note"),
                *render_plugins(runtime.plugins),
                ("type 'help' for commands", "note"),
            ]
        )
        await commands.settle()
        connected = player.since_last(synchronized(runtime))
        connected.plugin_output = commands.take()
        if connected.records or connected.plugin_output:
            out.print(render_step(connected, player.names))
        _stdin_lines(loop, queue, prompt, ready)
        ready.set()
        while (line := await queue.get()) is not None:
            if not await session.handle(line):
                break
            ready.set()
    except asyncio.CancelledError:
        if not interrupted:
            raise
        main.uncancel()
        progress(f"stopping on {signal.Signals(interrupted[0]).name}")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await commands.stop()
        await runtime.close()
        progress("runtime stopped")
    return EXIT_OK


def serve(args: argparse.Namespace) -> int:
    """Run the ``serve`` command; returns the exit status."""
    try:
        return asyncio.run(_serve(args))
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except StartupError as exc:
        progress(str(exc))
        return exc.status
