"""Plugin commands: a plugin package declares its command, the framework runs it.

A :class:`PluginCommand` names the plugin, describes it in one line, and gives its
configuration dataclass, its own flags (:class:`Flag`, each overriding a configuration field) and
a factory making the plugin. The framework builds the parser (ours and upstream's flag
spellings), reads ``--config`` with every error reported in one place (one line
``prog: error: ...``, exit status 2, no traceback), sets up logging, and serves the
runtime until a signal, a Shutdown or the loss of the runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar

from nri.stub._cli import (
    PluginArgumentParser,
    _Switch,
    argument_parser,
    load_config,
    read_config_file,
)
from nri.stub._errors import ConfigError, RuntimeGoneError, StubError
from nri.stub._logging import setup_logging
from nri.stub._plugin import Plugin
from nri.stub._stub import Stub

C = TypeVar("C")

log = logging.getLogger("nri.stub")


@dataclass(frozen=True)
class Flag:
    """One flag of a plugin command beyond the shared ones.

    ``name`` is the long option without dashes (``"verbose"`` gives ``--verbose``, and
    ``-verbose`` as upstream spells it); ``aliases`` are further names (upstream's, e.g.
    ``"disableWatch"``), hidden from the help. Without ``type`` the flag is a switch that
    sets ``value`` (``--flag=false`` the opposite); with one, it takes an argument converted
    by ``type`` (raise ``argparse.ArgumentTypeError`` or ValueError for a bad one). A given
    flag sets the configuration field ``field`` (see :attr:`Invocation.overrides`); either
    way its value is ``Invocation.args.<name with _>``, None when not given.
    """

    name: str
    help: str
    field: str | None = None
    type: Callable[[str], Any] | None = None
    value: Any = True
    metavar: str | None = None
    choices: Sequence[Any] | None = None
    aliases: Sequence[str] = ()

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments holding the flag's value."""
        return self.name.replace("-", "_")

    def add_to(self, parser: argparse._ActionsContainer) -> None:
        """Add the flag (and its hidden aliases) to ``parser``."""
        options: dict[str, Any] = {"dest": self.dest, "default": None}
        if self.type is None:
            options.update(action=_Switch, const=self.value)
        else:
            options.update(type=self.type, metavar=self.metavar, choices=self.choices)
        parser.add_argument(f"--{self.name}", help=self.help, **options)
        for alias in self.aliases:
            parser.add_argument(f"--{alias}", help=argparse.SUPPRESS, **options)


@dataclass
class Invocation(Generic[C]):
    """What a plugin factory gets: the parsed command line and configuration."""

    command: PluginCommand[C]
    args: argparse.Namespace
    """Every flag's value (shared and own)."""
    config: C
    """The ``--config`` file's configuration, else the defaults (flags not applied); None
    for a command without a configuration."""
    config_text: str | None = None
    """The ``--config`` file's text, None without one; the stub hands it to the plugin's
    ``configure`` when the runtime sends no configuration."""
    config_source: str = "configuration"
    """The ``--config`` file's name (or ``"configuration"``), for error messages."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Configuration fields set by flags given on the command line, by field name."""
    exit_callbacks: list[Callable[[], object]] = field(default_factory=list)

    @property
    def configured(self) -> C:
        """:attr:`config` with :attr:`overrides` applied."""
        return dataclasses.replace(self.config, **self.overrides)  # type: ignore[type-var]

    def on_exit(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the command ends (latest registered first)."""
        self.exit_callbacks.append(callback)

    def close(self) -> None:
        """Run the exit callbacks."""
        while self.exit_callbacks:
            self.exit_callbacks.pop()()


PluginFactory = Callable[[Invocation[C]], "Plugin | Mapping[str, Plugin]"]
"""Makes the plugin from an :class:`Invocation`; returns one plugin, or plugins by index for
a command that registers several (each gets its own connection). Raises ConfigError (or
another ValueError) for bad input: reported as ``prog: error: ...``, exit status 2."""


@dataclass(frozen=True)
class PluginCommand(Generic[C]):
    """The command line of a plugin package, declared; :meth:`main` runs it.

    ``name`` is the plugin's own name, which it registers with unless ``--name`` or the
    runtime says otherwise (upstream's plugins register as e.g. ``ulimit-adjuster``). The
    command is ``nri-<name>`` from the distribution ``nri-<name>`` unless ``prog`` and
    ``distribution`` say otherwise. ``config`` is the configuration dataclass, read from
    ``--config`` by :func:`~nri.stub.load_config` or by ``parse_config(text, source)``.
    ``plugin`` is the factory (a plugin class taking no arguments will do).
    """

    name: str
    description: str
    plugin: PluginFactory[C] | type[Plugin]
    config: type[C] | None = None
    flags: Sequence[Flag] = ()
    parse_config: Callable[[str, str], C] | None = None
    prog: str | None = None
    distribution: str | None = None

    def __post_init__(self) -> None:
        if self.config is None:
            return
        fields = {f.name for f in dataclasses.fields(self.config)}  # type: ignore[arg-type]
        for flag in self.flags:
            if flag.field is not None and flag.field not in fields:
                raise TypeError(f"flag --{flag.name}: {self.config.__name__} has no {flag.field!r}")

    @property
    def command_name(self) -> str:
        """The program name shown in help and errors, ``nri-<name>`` by default."""
        return self.prog or f"nri-{self.name}"

    def parser(self) -> PluginArgumentParser:
        """The parser: the shared flags and the plugin's own."""
        parser = argument_parser(
            self.command_name,
            self.description,
            distribution=self.distribution or f"nri-{self.name}",
            default_name=self.name,
        )
        if self.flags:
            group = parser.add_argument_group(f"{self.name} options")
            for flag in self.flags:
                flag.add_to(group)
        return parser

    def invocation(self, args: argparse.Namespace) -> Invocation[C]:
        """Read the configuration file and collect the flags' overrides.

        Raises ConfigError naming the file and key for a bad configuration.
        """
        text, source = None, "configuration"
        config: Any = None
        if args.config is not None:
            source = str(args.config)
            text = read_config_file(args.config)
        if self.parse_config is not None:
            config = self.parse_config(text or "", source)
        elif self.config is not None:
            config = load_config(text or "", self.config, source=source)
        overrides = {}
        for flag in self.flags:
            value = getattr(args, flag.dest)
            if flag.field is not None and value is not None:
                overrides[flag.field] = value
        return Invocation(self, args, config, text, source, overrides)

    def run(self, argv: Sequence[str] | None = None) -> int:
        """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

        0 after a signal, a clean stop or a Shutdown; 1 when the runtime went away or
        refused the plugin; 2 for bad flags, configuration or identity (reported before
        connecting). ``--help`` and ``--version`` exit 0 at once.
        """
        parser = self.parser()
        args = parser.parse_args(argv)
        setup_logging(args.log_level, self.name, log_format=args.log_format)
        invocation: Invocation[C] | None = None
        try:
            invocation = self.invocation(args)
            made = _make(self.plugin, invocation)
            stubs = _stubs(made, args, invocation.config_text, self.name)
        except (StubError, ValueError) as exc:
            if invocation is not None:
                invocation.close()
            _bad_input(parser, exc)
        except RecursionError:  # a plugin's own parser meeting a deeply nested document
            if invocation is not None:
                invocation.close()
            _bad_input(parser, ConfigError(f"{args.config or 'configuration'}: nested too deeply"))
        try:
            return serve(stubs, args)
        finally:
            invocation.close()

    def main(self, argv: Sequence[str] | None = None) -> NoReturn:
        """Run the command and exit with its status (the console script's entry point)."""
        sys.exit(self.run(argv))


def _make(factory: Any, invocation: Invocation[Any]) -> Plugin | Mapping[str, Plugin]:
    if isinstance(factory, type) and issubclass(factory, Plugin):
        return factory()
    made = factory(invocation)
    if not isinstance(made, Plugin | Mapping):
        raise TypeError(f"plugin factory returned {type(made).__name__}, not a Plugin")
    return made


def _stubs(
    made: Plugin | Mapping[str, Plugin],
    args: argparse.Namespace,
    config: str | None,
    default_name: str | None,
) -> list[Stub]:
    common: dict[str, Any] = {
        "name": args.name,
        "socket_path": args.socket_path,
        "config": config,
        "reconnect": args.reconnect,
        "default_name": default_name,
    }
    if getattr(args, "metrics_address", None) is not None:
        # Imported here: a plugin without --metrics-address never needs it at start-up.
        from nri.metrics import PluginMetrics, metrics_endpoint

        common["observer"], _ = metrics_endpoint(PluginMetrics, args.metrics_address)
    if isinstance(made, Plugin):
        return [Stub(made, idx=args.idx, **common)]
    if args.idx is not None:
        raise ConfigError("--idx does not apply: this command registers at several indices")
    return [Stub(plugin, idx=idx, **common) for idx, plugin in made.items()]


def _bad_input(parser: argparse.ArgumentParser, exc: BaseException) -> NoReturn:
    parser.exit(2, f"{parser.prog}: error: {str(exc) or type(exc).__name__}\n")


def serve(stubs: Sequence[Stub], args: argparse.Namespace) -> int:
    """Log as ``args`` say and run ``stubs`` until a signal, a Shutdown or a failure.

    Returns the exit status: 0 after a signal or a clean stop, 1 when a stub failed (the
    runtime went away, registration refused); then every stub is stopped.
    """
    names = {stub.full_name for stub in stubs}
    label = stubs[0].full_name if len(names) == 1 else stubs[0].name
    setup_logging(args.log_level, label, log_format=args.log_format)
    try:
        return asyncio.run(_serve(stubs))
    except KeyboardInterrupt:
        return 0


async def _serve(stubs: Sequence[Stub]) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    runners: dict[asyncio.Task[Any], Stub] = {asyncio.create_task(s.run()): s for s in stubs}
    stopper = asyncio.create_task(stopping.wait())
    code = 0
    pending: set[asyncio.Task[Any]] = set(runners)
    while pending:
        done, _ = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            stubs[0].log.info("stopping on signal")
            break
        failed = [task for task in done if task.exception() is not None]
        pending -= done
        if failed:
            for task in failed:
                exc = task.exception()
                if isinstance(exc, StubError | OSError | ValueError):
                    runners[task].log.error("%s", exc)
                else:
                    runners[task].log.error("stopped with an error: %r", exc, exc_info=exc)
            code = 1
            break
    stopper.cancel()
    for stub in stubs:
        await stub.stop()
    for task in runners:
        task.cancel()
    await asyncio.gather(*runners, return_exceptions=True)
    return code


def run(
    plugin: Plugin | type[Plugin],
    *,
    args: argparse.Namespace | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Run a plugin as a command: parse the shared flags, log, connect, serve.

    ``args`` are already parsed flags (from :func:`argument_parser`), else ``argv`` (default:
    ``sys.argv[1:]``) is parsed. Returns the process exit status: 0 after a clean stop or
    Shutdown, 1 when the runtime went away or registration failed, 2 for bad flags, identity
    or configuration (reported as ``prog: error: ...`` before connecting). A plugin package
    declares a :class:`PluginCommand` instead, which also reads its configuration.
    """
    parser = argument_parser()
    if args is None:
        args = parser.parse_args(argv)
    instance = plugin() if isinstance(plugin, type) else plugin
    setup_logging(
        args.log_level, type(instance).__name__, log_format=getattr(args, "log_format", "text")
    )
    try:
        config = read_config_file(args.config) if args.config is not None else None
        stubs = _stubs(instance, args, config, None)
    except (StubError, ValueError) as exc:
        _bad_input(parser, exc)
    return serve(stubs, args)


__all__ = ["Flag", "Invocation", "PluginCommand", "PluginFactory", "RuntimeGoneError", "run"]
