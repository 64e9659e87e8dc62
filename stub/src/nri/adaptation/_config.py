"""Settings of the runtime adaptation."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from nri.adaptation._validator import DefaultValidatorConfig
from nri.api import (
    DEFAULT_PLUGIN_CONFIG_PATH,
    DEFAULT_PLUGIN_PATH,
    DEFAULT_REGISTRATION_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SOCKET_PATH,
)
from nri.decode import DecodeError, TextFileError, describe, load_yaml, read_text_file
from nri.ttrpc import DEFAULT_MAX_MESSAGE_SIZE, Interceptor

__all__ = [
    "SETTINGS_SUFFIX",
    "TIMEOUT_POLICIES",
    "AdaptationError",
    "Config",
    "PluginSettings",
    "TimeoutPolicy",
    "load_plugin_settings",
]

TimeoutPolicy = Literal["close", "skip", "fail"]
"""What happens when a plugin does not answer an event in time: ``close`` drops the plugin
and the event goes on without it (upstream), ``skip`` goes on without this answer but keeps
the plugin, ``fail`` fails the event."""

TIMEOUT_POLICIES: tuple[TimeoutPolicy, ...] = ("close", "skip", "fail")

#: A plugin's own settings file in the drop-in directory: ``NN-name`` + this suffix.
SETTINGS_SUFFIX = ".nri.yaml"
_MAX_SETTINGS_BYTES = 64 * 1024
_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SETTINGS_KEYS = {
    "request_timeout": ("requestTimeout", "request_timeout"),
    "registration_timeout": ("registrationTimeout", "registration_timeout"),
    "timeout_policy": ("timeoutPolicy", "timeout_policy"),
}

_MAX_UNIX_PATH = 107


class AdaptationError(Exception):
    """The adaptation cannot start or was misused (bad configuration, socket in use, ...)."""


@dataclasses.dataclass(frozen=True)
class PluginSettings:
    """Settings of one plugin that override the :class:`Config` defaults (None: the default)."""

    request_timeout: float | None = None
    registration_timeout: float | None = None
    timeout_policy: TimeoutPolicy | None = None

    def check(self, where: str) -> None:
        """Raise AdaptationError naming ``where`` and the first invalid setting."""
        for field in ("registration_timeout", "request_timeout"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                raise AdaptationError(f"{where}: {field} must be positive, got {value!r}")
        policy = self.timeout_policy
        if policy is not None and str(policy) not in TIMEOUT_POLICIES:
            raise AdaptationError(
                f"{where}: timeout_policy must be one of {', '.join(TIMEOUT_POLICIES)}, "
                f"got {self.timeout_policy!r}"
            )


def _seconds(value: object, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _DURATION.fullmatch(value):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    raise AdaptationError(
        f"{where} must be seconds or a duration such as 500ms or 2s, got {describe(value)}"
    )


def load_plugin_settings(path: str) -> PluginSettings | None:
    """Read a plugin's settings file (YAML, keys ``requestTimeout``, ``registrationTimeout``,
    ``timeoutPolicy`` or their snake_case forms; timeouts in seconds or as ``2s``).

    None if there is no such file; AdaptationError naming the file and key if it is invalid.
    """
    try:
        text = read_text_file(path, max_bytes=_MAX_SETTINGS_BYTES, what="plugin settings file")
    except TextFileError as exc:
        if exc.missing:
            return None
        raise AdaptationError(str(exc)) from None
    try:
        data = load_yaml(text, source=path)
    except DecodeError as exc:
        raise AdaptationError(str(exc)) from None
    if data is None:
        return PluginSettings()
    if not isinstance(data, dict):
        raise AdaptationError(f"{path}: expected a mapping, got {describe(data)}")
    known = {key: field for field, keys in _SETTINGS_KEYS.items() for key in keys}
    values: dict[str, object] = {}
    for key, value in data.items():
        field = known.get(key)
        if field is None:
            expected = ", ".join(keys[0] for keys in _SETTINGS_KEYS.values())
            raise AdaptationError(f"{path}: unknown key {key!r} (expected {expected})")
        if value is None:
            continue
        where = f"{path}: {key}"
        if field == "timeout_policy":
            if value not in TIMEOUT_POLICIES:
                raise AdaptationError(
                    f"{where} must be one of {', '.join(TIMEOUT_POLICIES)}, got {describe(value)}"
                )
            values[field] = value
        else:
            values[field] = _seconds(value, where)
    settings = PluginSettings(**values)  # type: ignore[arg-type]
    settings.check(path)
    return settings


@dataclasses.dataclass
class Config:
    """Settings of an :class:`Adaptation`, with upstream's defaults."""

    runtime_name: str = ""
    runtime_version: str = ""
    socket_path: str = DEFAULT_SOCKET_PATH
    plugin_path: str = DEFAULT_PLUGIN_PATH
    plugin_config_path: str = DEFAULT_PLUGIN_CONFIG_PATH
    disable_connections: bool = False
    registration_timeout: float = DEFAULT_REGISTRATION_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    default_validator: DefaultValidatorConfig | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    """Largest ttRPC message sent to plugins; Synchronize is split to fit (4 MiB as upstream)."""
    max_unregistered_connections: int = 16
    """Connections on ``socket_path`` being registered at once; further ones wait in the
    listen backlog until one of them is registered or closed. (Upstream handles one at a
    time.)"""

    # -- beyond upstream (each off or upstream's behaviour by default) --------------------
    plugin_settings: Mapping[str, PluginSettings] = dataclasses.field(default_factory=dict)
    """Per-plugin overrides, by ``NN-name`` or by ``name`` (``NN-name`` wins). A
    pre-installed plugin's drop-in ``<plugin_config_path>/NN-name.nri.yaml`` adds more."""
    timeout_policy: TimeoutPolicy = "close"
    """Default :data:`TimeoutPolicy` for an event request that times out."""
    max_consecutive_timeouts: int = 3
    """A plugin kept by the ``skip`` or ``fail`` policy is closed after this many timeouts
    in a row."""
    required_plugins: Sequence[str] = ()
    """Plugins (``NN-name`` or ``name``) without which CreateContainer fails. A pod or
    container tolerates their absence with the annotation named by
    ``default_validator.tolerate_missing_annotation``, set to true."""
    replace_plugins: bool = False
    """Zero-downtime upgrade: a new connection registering with the name of a live plugin is
    synchronized while the old one serves, then takes its place (the old one gets Shutdown).
    Without it such a registration is refused."""
    shutdown_plugins: bool = False
    """Send Shutdown to every plugin before its connection is closed: to launched plugins by
    :meth:`Adaptation.stop`, to the others by :meth:`Adaptation.close` (upstream sends none;
    a plugin command then exits 0 instead of reconnecting)."""
    shutdown_timeout: float = 1.0
    """How long each plugin is given to answer Shutdown before its connection is closed."""
    per_pod_concurrency: bool = False
    """Process events of different pods concurrently; each pod's events stay in order."""
    client_interceptors: Sequence[Interceptor] = ()
    """ttRPC interceptors (:mod:`nri.ttrpc`) around every request to a plugin."""
    server_interceptors: Sequence[Interceptor] = ()
    """ttRPC interceptors around every request from a plugin (RegisterPlugin, ...)."""
    restart_plugins: bool = False
    """Relaunch a pre-installed plugin whose process exits, or whose connection closes,
    while the adaptation runs (upstream just drops it), after a delay growing from
    ``restart_backoff``; it is then registered and synchronized as a plugin connecting late.
    A plugin file that is gone or no longer trusted is not relaunched."""
    restart_backoff: float = 0.5
    """Seconds before the first relaunch of a plugin; doubled for each further one, up to
    ``restart_backoff_max``, and back to this once an instance stayed up for twice
    ``restart_backoff_max``."""
    restart_backoff_max: float = 30.0
    """Longest delay between two relaunches of a plugin, in seconds."""
    plugin_stop_grace: float = 2.0
    """Seconds a launched plugin's process has to exit after SIGTERM when it is stopped,
    before it is SIGKILLed (0: SIGKILL at once, as upstream)."""

    def check(self) -> None:
        """Raise AdaptationError naming the first invalid setting."""
        for field in ("registration_timeout", "request_timeout"):
            value = getattr(self, field)
            if not value > 0:
                raise AdaptationError(f"Config.{field} must be positive, got {value!r}")
        if self.max_unregistered_connections < 1:
            raise AdaptationError(
                "Config.max_unregistered_connections must be at least 1, "
                f"got {self.max_unregistered_connections}"
            )
        for field in (
            "shutdown_timeout",
            "restart_backoff",
            "restart_backoff_max",
            "plugin_stop_grace",
        ):
            value = getattr(self, field)
            if not value >= 0:
                raise AdaptationError(f"Config.{field} must not be negative, got {value!r}")
        if self.max_consecutive_timeouts < 1:
            raise AdaptationError(
                "Config.max_consecutive_timeouts must be at least 1, "
                f"got {self.max_consecutive_timeouts}"
            )
        if str(self.timeout_policy) not in TIMEOUT_POLICIES:
            raise AdaptationError(
                f"Config.timeout_policy must be one of {', '.join(TIMEOUT_POLICIES)}, "
                f"got {self.timeout_policy!r}"
            )
        for name, settings in self.plugin_settings.items():
            settings.check(f"Config.plugin_settings[{name!r}]")
        if self.max_message_size < 1024:
            raise AdaptationError(
                f"Config.max_message_size must be at least 1024, got {self.max_message_size}"
            )
        if not self.disable_connections:
            if not self.socket_path:
                raise AdaptationError("Config.socket_path is empty")
            if len(os.fsencode(self.socket_path)) > _MAX_UNIX_PATH:
                raise AdaptationError(
                    f"Config.socket_path {self.socket_path!r} is too long for a unix socket "
                    f"(at most {_MAX_UNIX_PATH} bytes)"
                )

    def settings_for(self, idx: str, base: str) -> PluginSettings:
        """The settings of plugin ``idx-base``: by ``name``, then ``NN-name``, then its
        drop-in settings file, each overriding what the one before set.

        Raises AdaptationError if the drop-in file is invalid."""
        merged: dict[str, object] = {}
        layers = [self.plugin_settings.get(base), self.plugin_settings.get(f"{idx}-{base}")]
        if self.plugin_config_path:
            path = os.path.join(self.plugin_config_path, f"{idx}-{base}{SETTINGS_SUFFIX}")
            layers.append(load_plugin_settings(path))
        for layer in layers:
            if layer is not None:
                merged.update({k: v for k, v in dataclasses.asdict(layer).items() if v is not None})
        return PluginSettings(**merged)  # type: ignore[arg-type]
