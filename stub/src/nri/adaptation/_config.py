"""Settings of the runtime adaptation."""

from __future__ import annotations

import dataclasses
import os

from nri.adaptation._validator import DefaultValidatorConfig
from nri.api import (
    DEFAULT_PLUGIN_CONFIG_PATH,
    DEFAULT_PLUGIN_PATH,
    DEFAULT_REGISTRATION_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SOCKET_PATH,
)
from nri.ttrpc import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["AdaptationError", "Config"]

_MAX_UNIX_PATH = 107


class AdaptationError(Exception):
    """The adaptation cannot start or was misused (bad configuration, socket in use, ...)."""


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
