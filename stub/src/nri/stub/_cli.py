"""The command line every plugin command shares, and its configuration files.

The parser takes our spellings (``--idx 10``) and those of upstream's Go ``flag`` package
(``-idx 10``, ``-idx=10``, ``-verbose=false``), so that upstream's manifests carry over.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import types
import typing
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from nri.api import DEFAULT_SOCKET_PATH, PLUGIN_NAME_ENV_VAR
from nri.stub._errors import ConfigError
from nri.stub._logging import LOG_FORMATS, LOG_LEVELS, parse_log_level

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")
N = TypeVar("N", int, float)

MAX_CONFIG_BYTES = 1 << 20
"""The largest configuration file a plugin command reads."""

MAX_CONFIG_DEPTH = 64
"""The deepest nesting of a configuration document."""


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

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, _Switch):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_bool(value: str) -> bool:
    """Parse a boolean as Go's ``strconv.ParseBool`` (what ``-flag=value`` takes)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


class _Switch(argparse.Action):
    """A boolean flag as Go's: ``--flag`` alone, or ``--flag=true|false``.

    Given, it stores ``const`` (``--flag=false``: its opposite); not given, ``default``.
    """

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        const: Any = True,
        default: Any = None,
        help: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("type", switch_value)
        kwargs.setdefault("metavar", "BOOL")
        super().__init__(
            option_strings, dest, nargs="?", const=const, default=default, help=help, **kwargs
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        on = True if values is None else go_bool(str(values))
        setattr(namespace, self.dest, self.const if on else not self.const)


def switch_value(text: str) -> str:
    """Parse the optional value of a switch; the switch itself checks it."""
    go_bool(text)
    return text


def number(
    kind: Callable[[str], N],
    *,
    minimum: float | None = None,
    positive: bool = False,
    unit: str = "",
) -> Callable[[str], N]:
    """An argument type for a :class:`~nri.stub.Flag`: a finite ``int`` or ``float`` (the
    ``kind``), at least ``minimum`` or (``positive``) above 0; ``unit`` names what it
    counts in errors (``"seconds"``)."""
    what = f"a number of {unit}" if unit else "a number"

    def convert(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
        if minimum is not None and not value >= minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}, got {text}")
        return value

    return convert


def version_text(distribution: str | None, prog: str) -> str:
    """``nri-x 1.2.3 (nri 0.1.0)``: the command's distribution and the ``nri`` it runs on."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(not installed)"

    nri = f"nri {of('nri')}"
    if distribution is None:
        return f"{prog} ({nri})"
    if distribution == "nri":
        return nri
    return f"{distribution} {of(distribution)} ({nri})"


class _Version(argparse.Action):
    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str = argparse.SUPPRESS,
        default: str = argparse.SUPPRESS,
        distribution: str | None = None,
        help: str | None = None,
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)
        self.distribution = distribution

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(version_text(self.distribution, parser.prog) + "\n")
        parser.exit(0)


def _log_level(value: str) -> str:
    try:
        return parse_log_level(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class PluginArgumentParser(argparse.ArgumentParser):
    """An argument parser that also takes Go ``flag`` spellings of its long options.

    ``-idx 10`` and ``-idx=10`` mean ``--idx 10``; ``--flag=value`` works as in argparse;
    switches take ``=true``/``=false``. Arguments after ``--`` are left alone.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse ``args`` (default: ``sys.argv[1:]``) after rewriting Go spellings."""
        given = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self.go_spellings(given), namespace)

    def go_spellings(self, args: Sequence[str]) -> list[str]:
        """``args`` with each single-dash long option written with two dashes."""
        long_options = {s for s in self._option_string_actions if s.startswith("--")}
        result: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                return result + list(args[i:])
            single_dash = len(arg) > 2 and arg[0] == "-" and arg[1] != "-"
            if single_dash and "-" + arg.split("=", 1)[0] in long_options:
                result.append("-" + arg)
            else:
                result.append(arg)
        return result


def argument_parser(
    prog: str | None = None,
    description: str | None = None,
    *,
    distribution: str | None = None,
    default_name: str | None = None,
) -> PluginArgumentParser:
    """An argument parser with the flags shared by every plugin command.

    ``--name``, ``--idx``, ``--socket-path``, ``--config FILE``, ``--log-level``,
    ``--log-format``, ``--reconnect`` and ``--version`` (which reports ``distribution``);
    add the plugin's own flags to it before parsing. ``default_name`` is only shown in the
    help: :class:`~nri.stub.Stub` applies it.
    """
    parser = PluginArgumentParser(
        prog=prog,
        description=description,
        formatter_class=_HelpFormatter,
        epilog="Upstream's flag spellings work as well: -idx 10, -name=NAME, -reconnect=false.",
    )
    group = parser.add_argument_group("NRI plugin options")
    name_default = repr(default_name) if default_name else "from the environment or program"
    group.add_argument("--name", help=f"plugin name (default: {name_default})")
    group.add_argument("--idx", help="plugin index, two digits (default: from the environment)")
    group.add_argument(
        "--socket-path",
        default=DEFAULT_SOCKET_PATH,
        help=f"runtime's NRI socket (default: {DEFAULT_SOCKET_PATH})",
    )
    # upstream's template and ulimit-adjuster call it -socket
    group.add_argument("--socket", dest="socket_path", help=argparse.SUPPRESS)
    group.add_argument(
        "--config",
        metavar="FILE",
        type=_config_path,
        help="plugin configuration file (YAML); the runtime's configuration takes precedence",
    )
    group.add_argument(
        "--log-level",
        default="info",
        type=_log_level,
        metavar="LEVEL",
        help=f"logging threshold, any case: {', '.join(LOG_LEVELS)} (default: info)",
    )
    group.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="log lines for people (text, the default) or collectors (json, logfmt)",
    )
    group.add_argument(
        "--reconnect",
        action=_Switch,
        default=False,
        help="wait for the runtime's socket at start, and reconnect with backoff when the "
        "runtime goes away or refuses the registration (its name taken), instead of exiting; "
        "a Shutdown from the runtime still ends the command (status 0)",
    )
    group.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help="serve Prometheus metrics of the plugin's handlers at http://HOST:PORT/metrics "
        "(needs the extra nri[metrics])",
    )
    group.add_argument(
        "--version",
        action=_Version,
        distribution=distribution,
        help="print the version of this command and of nri, then exit",
    )
    return parser


def default_plugin_name(args: argparse.Namespace, name: str) -> None:
    """Set ``args.name`` to ``name`` when the command runs as ``python -m package``.

    Deprecated: a :class:`~nri.stub.PluginCommand` (or ``Stub(default_name=...)``) defaults
    the name to the plugin's own name however the command is started.
    """
    warnings.warn(
        "default_plugin_name() is deprecated: PluginCommand and Stub(default_name=...) "
        "default the plugin name",
        DeprecationWarning,
        stacklevel=2,
    )
    if args.name is None and not os.environ.get(PLUGIN_NAME_ENV_VAR):
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        if program in ("", "__main__.py", "-c"):
            args.name = name


def read_config_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The text of a plugin config file; ConfigError naming the file when it cannot be read,
    is not a regular file, is larger than ``max_bytes`` or is not UTF-8."""
    from nri.decode import TextFileError, read_text_file

    try:
        return read_text_file(path, max_bytes=max_bytes, what="config file")
    except TextFileError as exc:
        raise ConfigError(str(exc)) from None


def parse_yaml(text: str | bytes, *, source: str) -> Any:
    """Decode a YAML configuration document with the shared bounds; ConfigError naming
    ``source`` when it is invalid, too large or too deep."""
    from nri.decode import DecodeError, load_yaml

    try:
        return load_yaml(
            text, source=source, max_bytes=MAX_CONFIG_BYTES, max_depth=MAX_CONFIG_DEPTH
        )
    except DecodeError as exc:
        raise ConfigError(str(exc)) from None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def config_keys(schema: type[Any]) -> dict[str, str]:
    """Every YAML key accepted for the fields of dataclass ``schema``, mapped to the field:
    the field name, its kebab-case and its camelCase spelling (``log_file``, ``log-file``,
    ``logFile``)."""
    keys: dict[str, str] = {}
    for field in dataclasses.fields(schema):
        for key in (field.name, field.name.replace("_", "-"), _camel(field.name)):
            keys.setdefault(key, field.name)
    return keys


def load_config(text: str, schema: type[T], *, source: str = "config") -> T:
    """Parse YAML ``text`` into the dataclass ``schema``, checking keys and simple types.

    Keys may be written as the field name, in kebab case or in camelCase (upstream's
    spelling). Empty text gives the dataclass defaults. Unknown keys, a non-mapping document
    and values of the wrong type raise ConfigError naming ``source`` and the key.
    """
    return load_config_fields(text, schema, source=source)[0]


def load_config_fields(text: str, schema: type[T], *, source: str = "config") -> tuple[T, set[str]]:
    """:func:`load_config`, also returning the names of the fields the document sets."""
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    document = parse_yaml(text, source=source) if text.strip() else {}
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(document).__name__}")
    keys = config_keys(schema)
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(schema)
    for key, value in document.items():
        name = keys.get(str(key))
        if name is None:
            known = ", ".join(sorted({f.replace("_", "-") for f in keys.values()}))
            raise ConfigError(f"{source}: unknown key {key!r} (known keys: {known})")
        if name in values:
            raise ConfigError(f"{source}: {key}: {name} given twice")
        _check_type(f"{source}: {key}", value, hints[name])
        values[name] = value
    return schema(**values), set(values)


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
