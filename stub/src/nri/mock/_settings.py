"""Adaptation settings of the mock runtime, from a scenario's ``runtime`` section or flags.

The settings beyond upstream's (:class:`~nri.adaptation.Config`): what a timeout does
(``timeout-policy``, ``max-consecutive-timeouts``), per-plugin timeouts (``plugins``),
plugins without which containers are not created (``required-plugins``), upgrades in place
(``replace-plugins``), Shutdown on stop (``shutdown-plugins``, ``shutdown-timeout``),
relaunching pre-installed plugins (``restart-plugins``, ``restart-backoff``,
``restart-backoff-max``), the SIGTERM grace of stopped ones (``plugin-stop-grace``) and
``per-pod-concurrency``. Both
sources give a :class:`RuntimeSettings`; the command line's win (:meth:`RuntimeSettings.over`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from nri.adaptation import TIMEOUT_POLICIES, PluginSettings, TimeoutPolicy
from nri.api import parse_plugin_name, validate_plugin_name

__all__ = [
    "RuntimeSettings",
    "add_settings_options",
    "parse_runtime_section",
    "settings_from_args",
]


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Adaptation settings for a :class:`~nri.mock.MockRuntime`; None: not set (the
    :class:`~nri.adaptation.Config` default applies)."""

    timeout_policy: TimeoutPolicy | None = None
    max_consecutive_timeouts: int | None = None
    plugins: Mapping[str, PluginSettings] = dataclasses.field(default_factory=dict)
    """Per-plugin settings by ``NN-name`` or ``name`` (Config.plugin_settings)."""
    required_plugins: tuple[str, ...] = ()
    replace_plugins: bool | None = None
    per_pod_concurrency: bool | None = None
    shutdown_plugins: bool | None = None
    shutdown_timeout: float | None = None
    restart_plugins: bool | None = None
    restart_backoff: float | None = None
    restart_backoff_max: float | None = None
    plugin_stop_grace: float | None = None

    def over(self, base: RuntimeSettings) -> RuntimeSettings:
        """These settings where set, else ``base``'s: a plugin's settings are merged field
        by field, required plugins are added to ``base``'s."""
        plugins = dict(base.plugins)
        for name, settings in self.plugins.items():
            plugins[name] = _merge(plugins.get(name), settings)
        changes: dict[str, Any] = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) is not None
        }
        changes["plugins"] = plugins
        changes["required_plugins"] = tuple(
            dict.fromkeys([*base.required_plugins, *self.required_plugins])
        )
        return dataclasses.replace(base, **changes)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~nri.mock.MockRuntime` for the settings set."""
        options: dict[str, Any] = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in ("plugins", "required_plugins")
            and getattr(self, field.name) is not None
        }
        if self.plugins:
            options["plugin_settings"] = dict(self.plugins)
        if self.required_plugins:
            options["required_plugins"] = self.required_plugins
        return options


def _merge(base: PluginSettings | None, top: PluginSettings) -> PluginSettings:
    if base is None:
        return top
    given = {k: v for k, v in dataclasses.asdict(top).items() if v is not None}
    return dataclasses.replace(base, **given)


# -- checking values (shared by both sources) -----------------------------------------------


def _policy(value: Any) -> TimeoutPolicy:
    for policy in TIMEOUT_POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"expected one of {', '.join(TIMEOUT_POLICIES)}, got {value!r}")


def _count(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number >= 1, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"expected a whole number >= 1, got {value!r}")


def _seconds(value: Any, *, positive: bool) -> float:
    bound = "> 0" if positive else ">= 0"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"expected a number of seconds {bound}, got {value!r}") from None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > 0 if positive else value >= 0):
        return float(value)
    raise ValueError(f"expected a number of seconds {bound}, got {value!r}")


def _plugin_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a plugin name (NN-name or name), got {value!r}")
    try:
        if value[:2].isdigit() and value[2:3] == "-":
            parse_plugin_name(value)
        else:
            validate_plugin_name(value)
    except ValueError as exc:
        raise ValueError(f"invalid plugin name: {exc}") from None
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {value!r}")


# -- the scenario's runtime section ---------------------------------------------------------

_PLUGIN_KEYS: Final[dict[str, Callable[[Any], Any]]] = {
    "request_timeout": lambda v: _seconds(v, positive=True),
    "registration_timeout": lambda v: _seconds(v, positive=True),
    "timeout_policy": _policy,
}
_SECTION_KEYS: Final[tuple[str, ...]] = (
    "timeout_policy",
    "max_consecutive_timeouts",
    "plugins",
    "required_plugins",
    "replace_plugins",
    "per_pod_concurrency",
    "shutdown_plugins",
    "shutdown_timeout",
    "restart_plugins",
    "restart_backoff",
    "restart_backoff_max",
    "plugin_stop_grace",
)
_SECONDS_KEYS: Final[tuple[str, ...]] = (
    "shutdown_timeout",
    "restart_backoff",
    "restart_backoff_max",
    "plugin_stop_grace",
)


def _kebab(names: Sequence[str]) -> str:
    return ", ".join(name.replace("_", "-") for name in names)


def parse_runtime_section(value: Any, at: str = "runtime") -> tuple[RuntimeSettings, list[str]]:
    """Check a scenario's ``runtime`` mapping; return the settings and every problem found,
    each as ``runtime.key: what was expected`` (keys in kebab or snake case)."""
    problems: list[str] = []
    if value is None:
        return RuntimeSettings(), problems
    if not isinstance(value, Mapping):
        return RuntimeSettings(), [f"{at}: expected a mapping, got {value!r}"]
    values: dict[str, Any] = {}
    for key, item in value.items():
        name, where = str(key).replace("-", "_"), f"{at}.{key}"
        if name not in _SECTION_KEYS:
            problems.append(f"{where}: unknown key (known keys: {_kebab(_SECTION_KEYS)})")
            continue
        try:
            if name == "plugins":
                values[name] = _plugins(item, where, problems)
            elif name == "required_plugins":
                if not isinstance(item, list):
                    raise ValueError(f"expected a list of plugin names, got {item!r}")
                values[name] = tuple(_plugin_name(entry) for entry in item)
            elif name == "timeout_policy":
                values[name] = _policy(item)
            elif name == "max_consecutive_timeouts":
                values[name] = _count(item)
            elif name in _SECONDS_KEYS:
                values[name] = _seconds(item, positive=False)
            else:
                values[name] = _flag(item)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return RuntimeSettings(**values), problems


def _plugins(value: Any, at: str, problems: list[str]) -> dict[str, PluginSettings]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of plugin names to settings, got {value!r}")
    plugins: dict[str, PluginSettings] = {}
    for name, settings in value.items():
        where = f"{at}.{name}"
        try:
            _plugin_name(name)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not isinstance(settings, Mapping):
            problems.append(f"{where}: expected a mapping, got {settings!r}")
            continue
        fields: dict[str, Any] = {}
        for key, item in settings.items():
            field = str(key).replace("-", "_")
            check = _PLUGIN_KEYS.get(field)
            if check is None:
                known = _kebab(list(_PLUGIN_KEYS))
                problems.append(f"{where}.{key}: unknown key (known keys: {known})")
                continue
            try:
                fields[field] = check(item)
            except ValueError as exc:
                problems.append(f"{where}.{key}: {exc}")
        plugins[str(name)] = PluginSettings(**fields)
    return plugins


# -- the command line -----------------------------------------------------------------------


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags of the adaptation settings; :func:`settings_from_args` checks them."""
    group = parser.add_argument_group(
        "adaptation settings", "these override the runtime section of a scenario file"
    )
    group.add_argument(
        "--timeout-policy",
        metavar="close|skip|fail",
        help="when a plugin misses an event's deadline: close it (the default, as upstream), "
        "skip its answer, or fail the event",
    )
    group.add_argument(
        "--max-consecutive-timeouts",
        metavar="N",
        help="close a plugin kept by skip or fail after N timeouts in a row (default: 3)",
    )
    group.add_argument(
        "--plugin-timeout",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="request timeout of one plugin (NN-name or name); repeatable",
    )
    group.add_argument(
        "--plugin-timeout-policy",
        action="append",
        default=[],
        metavar="NAME=POLICY",
        help="timeout policy of one plugin; repeatable",
    )
    group.add_argument(
        "--require-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="fail container creation while this plugin is not registered; repeatable",
    )
    switches = (
        (
            "--replace-plugins",
            "let a plugin registering under a live plugin's name take its "
            "place (the old one gets Shutdown) instead of refusing it",
        ),
        ("--per-pod-concurrency", "process events of different pods concurrently"),
        ("--shutdown-plugins", "send Shutdown to every plugin when the runtime stops"),
        ("--restart-plugins", "relaunch pre-installed plugins that exit (see --plugin-dir)"),
    )
    for option, text in switches:
        group.add_argument(option, action=argparse.BooleanOptionalAction, help=text)
    seconds = (
        ("--shutdown-timeout", "how long each plugin has to answer Shutdown (default: 1)"),
        ("--restart-backoff", "first delay before relaunching a plugin (default: 0.5)"),
        ("--restart-backoff-max", "longest delay between relaunches (default: 30)"),
        (
            "--plugin-stop-grace",
            "how long a stopped pre-installed plugin has after SIGTERM before SIGKILL "
            "(default: 2; 0 kills at once, as upstream)",
        ),
    )
    for option, text in seconds:
        group.add_argument(option, metavar="SECONDS", help=text)


def settings_from_args(args: argparse.Namespace) -> RuntimeSettings:
    """The settings the flags of :func:`add_settings_options` give; ValueError naming the
    flag and the bad value."""
    values: dict[str, Any] = {}

    def take(option: str, value: Any, check: Callable[[Any], Any]) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise ValueError(f"{option} {value}: {exc}") from None

    if args.timeout_policy is not None:
        values["timeout_policy"] = take("--timeout-policy", args.timeout_policy, _policy)
    if args.max_consecutive_timeouts is not None:
        values["max_consecutive_timeouts"] = take(
            "--max-consecutive-timeouts", args.max_consecutive_timeouts, _count
        )
    for field in _SECONDS_KEYS:
        given = getattr(args, field)
        if given is not None:
            option = "--" + field.replace("_", "-")
            values[field] = take(option, given, lambda v: _seconds(v, positive=False))
    plugins: dict[str, dict[str, Any]] = {}
    pairs = (
        ("--plugin-timeout", args.plugin_timeout, "request_timeout", "SECONDS"),
        ("--plugin-timeout-policy", args.plugin_timeout_policy, "timeout_policy", "POLICY"),
    )
    for option, given, field, what in pairs:
        for text in given:
            name, sep, value = text.partition("=")
            if not sep or not name:
                raise ValueError(f"{option} {text}: expected NAME={what}")
            try:
                _plugin_name(name)
                plugins.setdefault(name, {})[field] = _PLUGIN_KEYS[field](value)
            except ValueError as exc:
                raise ValueError(f"{option} {text}: {exc}") from None
    values["plugins"] = {name: PluginSettings(**fields) for name, fields in plugins.items()}
    values["required_plugins"] = tuple(
        take("--require-plugin", name, _plugin_name) for name in args.require_plugin
    )
    for field in ("replace_plugins", "per_pod_concurrency", "shutdown_plugins", "restart_plugins"):
        values[field] = getattr(args, field)
    return RuntimeSettings(**values)
