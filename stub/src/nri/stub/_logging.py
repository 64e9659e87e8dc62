"""Logging of plugin commands: stderr in text, JSON or logfmt, and log-file switching."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from nri.stub._errors import ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(plugin)s: %(message)s"
FILE_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
"""Format of plugin output written to a log file (the file names no plugin)."""

LOG_FORMATS = ("text", "json", "logfmt")
"""What ``--log-format`` accepts: ``text`` for people, ``json`` (one object a line) and
``logfmt`` (``time=... level=info msg=...``, as upstream's logrus plugins print) for
log collectors."""

LOG_LEVELS = ("debug", "info", "warning", "warn", "error")
"""What ``--log-level`` accepts, in any letter case (``warn`` as logrus spells it)."""


def parse_log_level(value: str) -> str:
    """``value`` lower-cased, ``warn`` as ``warning``; ValueError for an unknown level."""
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {value!r} (choose from {', '.join(LOG_LEVELS)})")
    return "warning" if level == "warn" else level


class _PluginNameFilter(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.plugin = name

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "plugin"):
            record.plugin = self.plugin
        return True


def _timestamp(record: logging.LogRecord) -> str:
    """RFC 3339 in UTC with milliseconds, as log collectors parse it."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


_LEVEL_NAMES = {"WARNING": "warning", "CRITICAL": "fatal"}


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, str]:
    fields = {
        "time": _timestamp(record),
        "level": _LEVEL_NAMES.get(record.levelname, record.levelname.lower()),
        "msg": record.getMessage(),
        "plugin": str(getattr(record, "plugin", "")),
    }
    if record.exc_info:
        fields["error"] = formatter.formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``msg``, ``plugin`` (and ``error``
    with the traceback of an unexpected exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        import json  # only processes that log JSON pay for it

        return json.dumps(_fields(self, record), ensure_ascii=False)


def _logfmt_value(value: str) -> str:
    if value and all(c.isalnum() or c in "-._/@^+" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """``time="..." level=info msg="..." plugin=10-name``: logrus's text format without a
    terminal, so that tools reading upstream's plugin logs read these too."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one logfmt line; a traceback stays on that line, escaped."""
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(self, record).items())


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "logfmt":
        return LogfmtFormatter()
    if log_format == "text":
        return logging.Formatter(LOG_FORMAT)
    raise ValueError(f"unknown log format {log_format!r} (choose from {', '.join(LOG_FORMATS)})")


def setup_logging(
    level: str | int, plugin: str, stream: Any = None, *, log_format: str = "text"
) -> None:
    """Log to stderr (or ``stream``) with the plugin's name in every record.

    ``level`` is a level name in any case or a number; ``log_format`` one of
    :data:`LOG_FORMATS`.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter(log_format))
    handler.addFilter(_PluginNameFilter(plugin))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(parse_log_level(level).upper() if isinstance(level, str) else level)


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
