"""The command line every ``nri-<name>`` plugin shares, and YAML config loading."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from nri.api import DEFAULT_SOCKET_PATH, PLUGIN_NAME_ENV_VAR
from nri.stub._plugin import Plugin
from nri.stub._stub import RuntimeGoneError, Stub, StubError

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(plugin)s: %(message)s"
FILE_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
"""Format of plugin output written to a log file (the file names no plugin)."""


class ConfigError(ValueError):
    """A plugin configuration is malformed; the message names the source and the key."""


def _config_path(value: str) -> Path:
    # pathlib is imported only when a config file is given: plugins run without it.
    from pathlib import Path

    return Path(value)


def _terminal_columns() -> int:
    """The width ``shutil.get_terminal_size()`` reports, without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's default formatter, sized without importing shutil.

    argparse imports shutil (and with it the bz2/lzma/zlib modules, half a megabyte) just
    to find the terminal width; plugin processes stay smaller without them.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def argument_parser(
    prog: str | None = None, description: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser with the flags shared by every plugin command.

    ``--name``, ``--idx``, ``--socket-path``, ``--config FILE``, ``--log-level`` and
    ``--reconnect``; add the plugin's own flags to it before parsing.
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=_HelpFormatter
    )
    group = parser.add_argument_group("NRI plugin options")
    group.add_argument("--name", help="plugin name (default: from the environment or program)")
    group.add_argument("--idx", help="plugin index, two digits (default: as for --name)")
    group.add_argument(
        "--socket-path",
        default=DEFAULT_SOCKET_PATH,
        help=f"runtime's NRI socket (default: {DEFAULT_SOCKET_PATH})",
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        type=_config_path,
        help="plugin configuration file (YAML); the runtime's configuration takes precedence",
    )
    group.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging threshold (default: info)",
    )
    group.add_argument(
        "--reconnect",
        action="store_true",
        help="reconnect with backoff when the runtime goes away instead of exiting",
    )
    return parser


class _PluginNameFilter(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.plugin = name

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "plugin"):
            record.plugin = self.plugin
        return True


def setup_logging(level: str | int, plugin: str, stream: Any = None) -> None:
    """Log to stderr with the plugin's name in every record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_PluginNameFilter(plugin))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)


def default_plugin_name(args: argparse.Namespace, name: str) -> None:
    """Set ``args.name`` to ``name`` when the command runs as ``python -m package``.

    The program name is then ``__main__.py``, which is no plugin name; ``--name`` and
    ``NRI_PLUGIN_NAME`` still take precedence.
    """
    if args.name is None and not os.environ.get(PLUGIN_NAME_ENV_VAR):
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        if program in ("", "__main__.py", "-c"):
            args.name = name


class LogFile:
    """Where a plugin's own output logger writes: a file it appends to, or (by default and
    after ``switch("")``) on to stderr through the root logger :func:`setup_logging` set up.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._handler: logging.FileHandler | None = None

    def switch(self, path: str) -> None:
        """Write to ``path`` (appending), or to stderr when empty; the same file is kept open.

        Raises ConfigError when the file cannot be opened; the old output stays then.
        """
        current = self._handler.baseFilename if self._handler is not None else ""
        if path and current == os.path.abspath(path):
            return
        handler: logging.FileHandler | None = None
        if path:
            try:
                handler = logging.FileHandler(path, mode="a", encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot open log file {path!r}: {exc.strerror or exc}") from exc
            handler.setFormatter(logging.Formatter(FILE_LOG_FORMAT))
        self.close()
        self._handler = handler
        if handler is not None:
            self.logger.addHandler(handler)
            self.logger.propagate = False

    def close(self) -> None:
        """Close the file, if any, and write to stderr again."""
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        self.logger.propagate = True


def read_config_file(path: Path) -> str:
    """Read a plugin config file, turning I/O problems into a ConfigError naming the file."""
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc


def run(
    plugin: Plugin | type[Plugin],
    *,
    args: argparse.Namespace | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Run a plugin as a command: parse the shared flags, log, connect, serve.

    Returns the process exit status: 0 after a clean stop or Shutdown, 1 when the runtime
    went away or registration failed, 2 for bad flags, identity or configuration (reported
    before connecting).
    """
    if args is None:
        args = argument_parser().parse_args(argv)
    instance = plugin() if isinstance(plugin, type) else plugin
    fallback_name = args.name or type(instance).__name__
    setup_logging(args.log_level, fallback_name)
    log = logging.LoggerAdapter(logging.getLogger("nri.stub"), {"plugin": fallback_name})
    try:
        config = read_config_file(args.config) if args.config is not None else None
        stub = Stub(
            instance,
            name=args.name,
            idx=args.idx,
            socket_path=args.socket_path,
            config=config,
            reconnect=args.reconnect,
        )
    except (ConfigError, StubError) as exc:
        log.error("%s", exc)
        return 2
    setup_logging(args.log_level, stub.full_name)
    try:
        asyncio.run(_serve(stub))
    except RuntimeGoneError as exc:
        stub.log.error("%s", exc)
        return 1
    except (StubError, OSError) as exc:
        stub.log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


async def _serve(stub: Stub) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    runner = asyncio.create_task(stub.run())
    stopper = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        stub.log.info("stopping on signal")
        await stub.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return
    stopper.cancel()
    runner.result()


def load_config(text: str, schema: type[T], *, source: str = "config") -> T:
    """Parse YAML ``text`` into the dataclass ``schema``, checking keys and simple types.

    Empty text gives the dataclass defaults. Unknown keys, a non-mapping document and values
    of the wrong type raise ConfigError naming ``source`` and the key.
    """
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    import yaml  # only plugins with a configuration pay for it

    try:
        document = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(document).__name__}")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    aliases = {name.replace("_", "-"): name for name in fields}
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(schema)
    for key, value in document.items():
        name = aliases.get(str(key), str(key))
        if name not in fields:
            known = ", ".join(sorted(aliases))
            raise ConfigError(f"{source}: unknown key {key!r} (known keys: {known})")
        _check_type(f"{source}: {key}", value, hints[name])
        values[name] = value
    return schema(**values)


def _check_type(where: str, value: Any, hint: Any) -> None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                _check_type(where, value, option)
                return
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if hint is Any:
        return
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"{where}: expected nothing, got {value!r}")
        return
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        for i, item in enumerate(value):
            _check_type(f"{where}[{i}]", item, item_hint)
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_hint, value_hint = typing.get_args(hint) or (Any, Any)
        for key, item in value.items():
            _check_type(f"{where}.{key}", key, key_hint)
            _check_type(f"{where}.{key}", item, value_hint)
        return
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if isinstance(hint, type):
        if hint is not bool and isinstance(value, bool):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
