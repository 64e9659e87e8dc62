"""Pre-installed plugins: finding them in the plugin directory, their drop-in
configuration, and starting their processes with a pre-connected socket."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import stat

from nri.adaptation._config import AdaptationError, Config
from nri.adaptation._trust import UntrustedPathError, check_directory, check_executable
from nri.adaptation._wasm import is_wasm
from nri.api import InvalidPluginIndexError, InvalidPluginNameError, parse_plugin_name
from nri.decode import TextFileError, read_text_file
from nri.net import plugin_environment, socketpair, spawn_with_socket

__all__ = ["DiscoveredPlugin", "discover_plugins", "find_plugin", "spawn_plugin"]

logger = logging.getLogger("nri.adaptation")


@dataclasses.dataclass
class DiscoveredPlugin:
    """An executable ``NN-name`` in the plugin directory, with its drop-in config."""

    idx: str
    base: str
    path: str
    config: str
    #: A WebAssembly module (``\0asm``): run in-process with wasmtime, not executed.
    wasm: bool = False

    @property
    def name(self) -> str:
        """``NN-name``."""
        return f"{self.idx}-{self.base}"


def discover_plugins(config: Config) -> list[DiscoveredPlugin]:
    """The plugins to launch from ``config.plugin_path``, in name order.

    A missing directory holds none; an untrusted one is refused as a whole. Entries that
    are not executable regular files, not named ``NN-name``, untrusted, or whose drop-in
    configuration cannot be used are skipped with a log line. Raises AdaptationError when
    the directory cannot be listed.
    """
    path = config.plugin_path
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AdaptationError(f"failed to discover plugins in {path}: {exc}") from exc
    try:
        check_directory(path)
    except (OSError, UntrustedPathError) as exc:
        logger.error("refusing to launch any plugin from %s: %s", path, exc)
        return []
    found = []
    for entry in entries:
        plugin = _check_entry(config, entry.path, entry.name, listed=True)
        if plugin is not None:
            logger.info("discovered plugin %s", entry.name)
            found.append(plugin)
    return found


def find_plugin(config: Config, name: str) -> DiscoveredPlugin | None:
    """``NN-name`` from ``config.plugin_path`` checked again as :func:`discover_plugins`
    does (trust, drop-in configuration read anew); None, logged, when it can no longer be
    launched (removed, no longer executable, untrusted, ...)."""
    path = os.path.join(config.plugin_path, name)
    try:
        check_directory(config.plugin_path)
    except (OSError, UntrustedPathError) as exc:
        logger.error("refusing to launch any plugin from %s: %s", config.plugin_path, exc)
        return None
    return _check_entry(config, path, name, listed=False)


def _check_entry(config: Config, path: str, name: str, *, listed: bool) -> DiscoveredPlugin | None:
    """The plugin at ``path`` if it may be launched; None otherwise, logged unless it is no
    plugin at all in a directory listing (a README, a subdirectory)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if not listed:
            logger.warning("plugin %s is gone from %s: %s", name, config.plugin_path, exc)
        return None
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        if not listed:
            logger.warning("plugin %s is no longer an executable file", path)
        return None
    try:
        idx, base = parse_plugin_name(name)
    except (InvalidPluginNameError, InvalidPluginIndexError) as exc:
        logger.warning(
            "skipping %s in plugin directory %s: not named NN-name (%s)",
            name,
            config.plugin_path,
            exc,
        )
        return None
    try:
        check_executable(path)
    except (OSError, UntrustedPathError) as exc:
        logger.warning("refusing to launch plugin %s: %s", path, exc)
        return None
    try:
        drop_in = plugin_config(config, idx, base)
    except TextFileError as exc:
        logger.warning("skipping plugin %s: %s", name, exc)
        return None
    return DiscoveredPlugin(idx, base, path, drop_in, is_wasm(path))


def plugin_config(config: Config, idx: str, base: str) -> str:
    """The drop-in configuration of a plugin (``NN-name.conf``, else ``name.conf``), ``""``
    if none; TextFileError if the file cannot be used (it then only keeps that plugin
    from starting)."""
    for name in (f"{idx}-{base}.conf", f"{base}.conf"):
        path = os.path.join(config.plugin_config_path, name)
        try:
            return read_text_file(
                path, max_bytes=config.max_message_size, what="configuration file"
            )
        except TextFileError as exc:
            if exc.missing:
                continue
            raise
    return ""


async def spawn_plugin(
    found: DiscoveredPlugin,
) -> tuple[asyncio.subprocess.Process, socket.socket] | None:
    """Start ``found`` with its end of a socket pair on fd 3; the process and our end, or
    None (logged) when it cannot be started.

    The process's stderr goes to the same pipe as its stdout (``process.stdout``), so that
    :func:`nri.adaptation._output.log_output` logs both, interleaved as written."""
    local, peer = socketpair()
    try:
        try:
            # Nothing of the runtime's own stdio: output goes to our log, line by line.
            process = await spawn_with_socket(
                [found.path],
                peer,
                plugin_environment(found.base, found.idx),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            peer.close()
    except OSError as exc:
        local.close()
        logger.warning("failed to launch pre-installed NRI plugin %s: %s", found.name, exc)
        return None
    return process, local
