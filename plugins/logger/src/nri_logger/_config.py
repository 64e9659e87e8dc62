"""The logger's configuration: YAML keys as upstream (``logFile``, ``events``, ...)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from nri.api import EventMask, parse_event_list
from nri.decode import DecodeError, load_yaml
from nri.stub import ConfigError, load_config


@dataclass
class LoggerConfig:
    """What the logger logs, where, and what it injects into new containers.

    YAML keys may be written as upstream does (``logFile``, ``addAnnotation``) or in
    snake/kebab case (``log_file``, ``log-file``).
    """

    log_file: str = ""
    """Append the log to this file instead of stderr."""
    events: list[str] | str = field(default_factory=list)
    """Events to subscribe to (names or a comma-separated string); empty means all."""
    add_annotation: str = ""
    """Add this annotation (value ``logger-pid-<pid>``) to new containers; conflicts fail."""
    set_annotation: str = ""
    """Set this annotation on new containers, overriding other plugins' values."""
    add_env: str = ""
    """Add this environment variable (value ``logger-pid-<pid>``) to new containers."""
    set_env: str = ""
    """Set this environment variable on new containers, overriding other plugins."""

    def event_mask(self, source: str = "config") -> EventMask | None:
        """The subscription the ``events`` setting asks for; None for all events."""
        events = self.events
        items = [events] if isinstance(events, str) else list(events)
        items = [item for item in items if item.strip()]
        if not items:
            return None
        try:
            return parse_event_list(*items)
        except ValueError as exc:
            raise ConfigError(f"{source}: events: {exc}") from exc


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def parse_config(text: str, *, source: str = "config") -> tuple[LoggerConfig, set[str]]:
    """Parse YAML ``text`` into a LoggerConfig; also return the fields it set.

    Raises ConfigError naming ``source`` and the offending key.
    """
    try:
        document: Any = load_yaml(text, source=source) if text.strip() else None
    except DecodeError as exc:
        raise ConfigError(str(exc)) from None
    if isinstance(document, dict):
        document = {_CAMEL.sub(r"_\1", str(k)).lower(): v for k, v in document.items()}
        text = yaml.safe_dump(document)
    config = load_config(text, LoggerConfig, source=source)
    given = {k.replace("-", "_") for k in document} if isinstance(document, dict) else set()
    config.event_mask(source)
    return config, given


def merge(base: LoggerConfig, update: LoggerConfig, given: set[str]) -> LoggerConfig:
    """``base`` with the fields named in ``given`` taken from ``update`` (upstream's
    unmarshal-over-existing semantics)."""
    return dataclasses.replace(base, **{name: getattr(update, name) for name in given})
