"""The runtime adaptation: host NRI plugins and relay lifecycle events to them.

Python counterpart of upstream ``pkg/adaptation/adaptation.go``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from nri.adaptation._config import AdaptationError, Config
from nri.adaptation._listener import accept_connections, open_listener
from nri.adaptation._output import log_output
from nri.adaptation._owners import go_quote
from nri.adaptation._plugin import PluginConnection, PluginError, PluginInfo
from nri.adaptation._preinstalled import (
    DiscoveredPlugin,
    discover_plugins,
    find_plugin,
    spawn_plugin,
)
from nri.adaptation._relays import EventRelays, ResultHook
from nri.adaptation._supervisor import Supervisor, describe_exit
from nri.adaptation._synclock import EventGate, SyncLock
from nri.adaptation._validator import DefaultValidator
from nri.adaptation._wasm import WasmPlugin
from nri.api import api_pb2 as pb
from nri.ttrpc import Code, StatusError

if TYPE_CHECKING:
    from nri.metrics._observer import AdaptationObserver

__all__ = [
    "Adaptation",
    "EvictFn",
    "PluginHook",
    "ResultHook",
    "SyncFn",
    "UpdateFn",
]

logger = logging.getLogger("nri.adaptation")

SyncFn = Callable[[], Awaitable[tuple[Sequence[pb.PodSandbox], Sequence[pb.Container]]]]
"""Returns the runtime's current pods and containers, to synchronize a new plugin."""

UpdateFn = Callable[[list[pb.ContainerUpdate]], Awaitable[Sequence[pb.ContainerUpdate]]]
"""Applies container updates (from sync or unsolicited); returns the ones that failed."""

EvictFn = Callable[[list[pb.ContainerEviction]], Awaitable[None]]
"""Evicts containers at a plugin's request; raises if it cannot."""

PluginHook = Callable[[PluginInfo], None]
"""Called with a plugin's info when it is registered or closed."""


class Adaptation(EventRelays):
    """What a runtime embeds to host NRI plugins.

    :meth:`start` launches the pre-installed plugins and listens for external ones; the
    lifecycle coroutines (:meth:`create_container`, ...) relay each event to the plugins
    subscribed to it, in index order. :meth:`stop` stops listening and kills launched
    plugins but, like upstream, leaves external plugin connections open;
    :meth:`close` (also run by ``async with``) additionally closes every connection.

    Events and unsolicited container updates are serialized, as upstream: a plugin that
    calls UpdateContainers from inside one of its event handlers waits until that event
    is over, so its handler runs into the request timeout. With
    ``Config.per_pod_concurrency`` events of different pods are relayed concurrently (each
    pod's in order); unsolicited updates and changes of the plugin list still wait for a
    moment when no event is relayed.

    The settings of ``Config`` beyond upstream's (timeout policies, required plugins,
    Shutdown, replacement of a plugin, supervision) are described there and in the README.

    ``metrics`` (:class:`nri.metrics.AdaptationMetrics`) is told of every request to a
    plugin, registrations, closes, conflicts, validation refusals and unsolicited updates.
    """

    def __init__(
        self,
        config: Config,
        *,
        sync: SyncFn,
        update: UpdateFn,
        evict: EvictFn | None = None,
        on_plugin_registered: PluginHook | None = None,
        on_plugin_closed: PluginHook | None = None,
        on_result: ResultHook | None = None,
        metrics: AdaptationObserver | None = None,
    ) -> None:
        if sync is None:
            raise AdaptationError("failed to create NRI adaptation: no sync function")
        if update is None:
            raise AdaptationError("failed to create NRI adaptation: no update function")
        config.check()
        self.config = config
        self._sync_fn = sync
        self._update_fn = update
        self._evict_fn = evict
        self._on_registered = on_plugin_registered
        self._on_closed = on_plugin_closed
        self._on_result = on_result
        # Told of plugin requests, registrations and conflicts (nri.metrics), if given.
        self._metrics = metrics
        validator = config.default_validator
        # Upstream only starts its builtin default validator plugin when it is enabled.
        self._default_validator = (
            DefaultValidator(validator) if validator is not None and validator.enable else None
        )
        # Events, plugin-list changes and unsolicited updates: one at a time, or per pod.
        self._gate = EventGate(per_pod=config.per_pod_concurrency)
        self._sync_lock = SyncLock()
        self._plugins: list[PluginConnection] = []
        self._connections: set[PluginConnection] = set()
        # Live connections by the NN-name they registered as (or were launched as).
        self._names: dict[str, PluginConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Relaunches of pre-installed plugins waiting for their delay (restart_plugins).
        self._supervisor = Supervisor()
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._started = False
        self._stopping = False

    # -- introspection -----------------------------------------------------------------------

    @property
    def plugins(self) -> list[PluginInfo]:
        """The registered plugins in invocation order."""
        return [p.info() for p in self._plugins if not p.closed]

    async def wait_for_plugins(
        self,
        count: int | None = None,
        names: Iterable[str] = (),
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[PluginInfo]:
        """Wait until at least ``count`` plugins, and all ``names`` (``NN-name`` or ``name``),
        are registered; return :attr:`plugins`. Raises TimeoutError naming what is missing."""
        wanted = set(names)

        def missing() -> str | None:
            infos = self.plugins
            have = {i.full_name for i in infos} | {i.name for i in infos}
            absent = sorted(wanted - have)
            if absent:
                return f"plugins {absent} not registered"
            if count is not None and len(infos) < count:
                return f"{len(infos)} of {count} plugins registered"
            return None

        try:
            async with asyncio.timeout(timeout):
                while missing() is not None:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            have = [i.full_name for i in self.plugins]
            raise TimeoutError(f"after {timeout:g}s {missing()} (registered: {have})") from None
        return self.plugins

    @contextlib.asynccontextmanager
    async def block_plugin_sync(self) -> AsyncIterator[None]:
        """Hold off plugin synchronization (registration) while the runtime changes state."""
        async with self._sync_lock.read():
            yield

    # -- start / stop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start pre-installed plugins, then listen for external ones.

        Raises AdaptationError if the socket cannot be set up (e.g. another process serves
        on it) or the runtime's SyncFn fails; plugins launched so far are then killed.
        """
        if self._started:
            raise AdaptationError("NRI adaptation already started")
        logger.info("runtime interface starting up...")
        self._started = True
        self._stopping = False
        try:
            async with self._gate.exclusive():
                await self._start_plugins()
            await self._start_listener()
        except BaseException:
            await self.close()
            raise

    async def stop(self) -> None:
        """Stop listening and kill launched plugins (upstream Stop).

        External plugins are dropped from the invocation list but their connections are left
        open, as upstream does; :meth:`close` closes them.
        """
        logger.info("runtime interface shutting down...")
        self._stopping = True
        self._stop_listener()
        await self._supervisor.cancel()
        async with self._gate.exclusive():
            plugins, self._plugins = self._plugins, []
        # Connections left open are no plugins of ours any more: their names are free.
        self._names.clear()
        launched = [p for p in self._connections if not p.external]
        await self._shutdown(launched)
        await asyncio.gather(*(p.stop() for p in launched), return_exceptions=True)
        del plugins
        self._changed.set()
        self._started = False

    async def close(self) -> None:
        """Stop, and close every plugin connection, external ones included."""
        await self.stop()
        await self._shutdown(list(self._connections))
        for p in list(self._connections):
            p.close()
        await asyncio.gather(*(p.wait_closed() for p in list(self._connections)))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Adaptation:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _shutdown(self, plugins: Sequence[PluginConnection]) -> None:
        """Send Shutdown to ``plugins`` at once, if configured to (``shutdown_plugins``)."""
        if self.config.shutdown_plugins and plugins:
            timeout = self.config.shutdown_timeout
            await asyncio.gather(*(p.shutdown(timeout) for p in plugins))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pre-installed plugins ---------------------------------------------------------------

    def _new_plugin(
        self, factory: type[PluginConnection] = PluginConnection, **kwargs: object
    ) -> PluginConnection:
        plugin = factory(
            registration_timeout=self.config.registration_timeout,
            request_timeout=self.config.request_timeout,
            max_message_size=self.config.max_message_size,
            on_update=self._plugin_update,
            on_close=self._plugin_closed,
            on_register=self._claim_name,
            observer=self._metrics,
            timeout_policy=self.config.timeout_policy,
            max_consecutive_timeouts=self.config.max_consecutive_timeouts,
            client_interceptors=self.config.client_interceptors,
            server_interceptors=self.config.server_interceptors,
            **kwargs,  # type: ignore[arg-type]
        )
        self._connections.add(plugin)
        return plugin

    def _claim_name(self, plugin: PluginConnection, idx: str, base: str) -> None:
        """Reserve ``idx-base`` for ``plugin`` and give it its settings; PluginError if
        another live one has the name (unless ``replace_plugins``: then it is to replace it)."""
        name = f"{idx}-{base}"
        holder = self._names.get(name)
        if holder is not None and holder is not plugin and not holder.closed:
            if not self.config.replace_plugins:
                raise PluginError(
                    f"plugin {go_quote(name)} is already registered ({holder.qualified_name})"
                )
            plugin.replaces = holder
            logger.info("plugin %s connected to replace %s", name, holder.qualified_name)
        self._names[name] = plugin
        try:
            settings = self.config.settings_for(idx, base)
        except AdaptationError as exc:
            logger.error("plugin %s keeps the default settings: %s", name, exc)
        else:
            plugin.apply_settings(settings)

    async def _launch(self, found: DiscoveredPlugin) -> PluginConnection | None:
        logger.info("starting pre-installed NRI plugin %s...", found.name)
        if found.wasm:
            plugin: PluginConnection | None = self._new_wasm_plugin(found)
        elif (spawned := await spawn_plugin(found)) is not None:
            plugin = await self._connect_launched(found, *spawned)
        else:
            return None
        if plugin is None:
            return None
        try:
            await plugin.start(self.config.runtime_name, self.config.runtime_version)
        except PluginError as exc:
            logger.warning("failed to start pre-installed NRI plugin %s: %s", found.name, exc)
            await plugin.stop()
            return None
        return plugin

    def _new_wasm_plugin(self, found: DiscoveredPlugin) -> PluginConnection | None:
        """The plugin for the WASM module ``found`` (not started yet); None, logged, if
        another live plugin has its name."""
        plugin = self._new_plugin(
            WasmPlugin, idx=found.idx, base=found.base, config=found.config, path=found.path
        )
        try:
            self._claim_name(plugin, found.idx, found.base)
        except PluginError as exc:
            logger.warning("failed to start pre-installed NRI plugin %s: %s", found.name, exc)
            plugin.close()
            return None
        return plugin

    async def _connect_launched(
        self, found: DiscoveredPlugin, process: asyncio.subprocess.Process, local: socket.socket
    ) -> PluginConnection | None:
        """Watch the process just started for ``found``, log its output, connect to it;
        None (logged, the process stopped) if that fails."""
        started = asyncio.get_running_loop().time()
        plugin = self._new_plugin(
            idx=found.idx,
            base=found.base,
            config=found.config,
            process=process,
            stop_grace=self.config.plugin_stop_grace,
        )
        self._spawn(self._watch_process(plugin, process, started))
        if process.stdout is not None:  # stdout and stderr of the plugin
            self._spawn(log_output(found.name, process.stdout))
        try:
            self._claim_name(plugin, found.idx, found.base)
            await plugin.connect(local)
        except Exception as exc:
            local.close()
            logger.warning("failed to start pre-installed NRI plugin %s: %s", found.name, exc)
            await plugin.stop()
            return None
        return plugin

    async def _watch_process(
        self, plugin: PluginConnection, process: asyncio.subprocess.Process, started: float
    ) -> None:
        """Wait for a launched plugin's process to exit; close the plugin, and have it
        relaunched if ``restart_plugins`` says so and the adaptation is not stopping."""
        status = await process.wait()
        uptime = asyncio.get_running_loop().time() - started
        restart = self.config.restart_plugins and not self._stopping
        if not self._stopping and not restart:
            logger.warning(
                "pre-installed NRI plugin %s (pid %d) exited with status %d",
                plugin.name,
                process.pid,
                status,
            )
        plugin.close()
        if restart:
            self._schedule_restart(
                plugin.name, f"pid {process.pid} {describe_exit(status)}", uptime
            )
        await plugin.wait_closed()
        # Gone for good (a relaunch is a new connection): nothing left to stop or close.
        self._connections.discard(plugin)

    def _schedule_restart(self, name: str, why: str, uptime: float) -> None:
        """Relaunch ``name`` after its next backoff delay; one log line says why and when."""
        if self._stopping:
            return
        config = self.config
        delay = self._supervisor.next_delay(
            name, uptime, config.restart_backoff, config.restart_backoff_max
        )
        logger.warning(
            "restarting pre-installed NRI plugin %s in %gs (restart %d): %s",
            name,
            delay,
            self._supervisor.restarts(name),
            why,
        )
        self._supervisor.schedule(self._relaunch(name, delay))

    async def _relaunch(self, name: str, delay: float) -> None:
        """After ``delay``, launch ``name`` again if it is still a trusted plugin file, and
        register and synchronize it as a plugin joining late. Cancelled by :meth:`stop`."""
        await asyncio.sleep(delay)
        if self._stopping:
            return
        found = find_plugin(self.config, name)
        if found is None:
            logger.warning("pre-installed NRI plugin %s is not restarted any more", name)
            self._supervisor.forget(name)
            return
        spawned = await spawn_plugin(found)
        if spawned is None:
            self._schedule_restart(name, "it could not be started", 0.0)
            return
        # From here on the process's watcher schedules the next relaunch if this one fails.
        plugin = await self._connect_launched(found, *spawned)
        if plugin is None:
            return
        try:
            await plugin.start(self.config.runtime_name, self.config.runtime_version)
            await self._synchronize_late(plugin)
        except (PluginError, AdaptationError) as exc:
            logger.warning("failed to restart pre-installed NRI plugin %s: %s", name, exc)
            await plugin.stop()
        except BaseException:
            await plugin.stop()
            raise

    async def _start_plugins(self) -> None:
        found = discover_plugins(self.config)
        launched = await asyncio.gather(*(self._launch(f) for f in found))
        plugins = [p for p in launched if p is not None]
        if not plugins:
            return
        try:
            pods, containers = await self._sync_fn()
        except Exception as exc:
            # start() fails: nothing of this is to be relaunched.
            self._stopping = True
            for p in plugins:
                await p.stop()
            raise AdaptationError(
                f"failed to synchronize pre-installed NRI plugins: {exc}"
            ) from exc
        updates: list[pb.ContainerUpdate] = []
        for p in plugins:
            try:
                updates.extend(await p.synchronize(pods, containers))
            except PluginError as exc:
                logger.warning("failed to synchronize pre-installed NRI plugin %s: %s", p.name, exc)
                await p.stop()
        await self._apply_sync_updates(updates, "pre-installed plugins")
        for p in plugins:
            if not p.closed:
                self._add_plugin(p)
                p.mark_synchronized()

    async def _apply_sync_updates(self, updates: list[pb.ContainerUpdate], who: str) -> None:
        if not updates:
            return
        try:
            failed = await self._update_fn(updates)
        except Exception as exc:
            logger.error("failed to apply synchronization updates of %s: %s", who, exc)
            return
        for u in failed:
            logger.warning(
                "synchronization update of %s for container %s failed", who, u.container_id
            )

    def _add_plugin(self, plugin: PluginConnection) -> None:
        self._plugins.append(plugin)
        self._plugins.sort(key=lambda p: (p.idx, p.base))
        logger.info("plugin invocation order")
        for i, p in enumerate(self._plugins, 1):
            logger.info("  #%d: %s (%s)", i, p.name, p.qualified_name)
        self._changed.set()
        if self._metrics is not None:
            self._metrics.plugin_registered(plugin.name)
        if self._on_registered is not None:
            self._hook(self._on_registered, plugin)

    def _hook(self, hook: PluginHook, plugin: PluginConnection) -> None:
        try:
            hook(plugin.info())
        except Exception:
            logger.exception("plugin hook %r failed for %s", hook, plugin.name)

    def _plugin_closed(self, plugin: PluginConnection) -> None:
        if self._names.get(plugin.name) is plugin:
            old = plugin.replaces
            if old is not None and not old.closed:
                # A replacement that failed: the name stays with the plugin still serving.
                self._names[plugin.name] = old
            else:
                del self._names[plugin.name]
        was_registered = plugin in self._plugins
        if was_registered:
            self._plugins = [p for p in self._plugins if p is not plugin]
            logger.info("removed plugin %s", plugin.name)
            self._changed.set()
            if self._metrics is not None:
                self._metrics.plugin_closed(plugin.name)
            if self._on_closed is not None:
                self._hook(self._on_closed, plugin)
        if not plugin.external and not self._stopping:
            self._spawn(plugin.stop())
        if plugin.external:
            self._connections.discard(plugin)

    # -- external plugins --------------------------------------------------------------------

    async def _start_listener(self) -> None:
        if self.config.disable_connections:
            logger.info("connection from external plugins disabled")
            return
        sock = await open_listener(self.config.socket_path)
        self._listener = sock
        self._accept_task = asyncio.create_task(
            accept_connections(
                sock,
                self._handle_connection,
                max_pending=self.config.max_unregistered_connections,
                spawn=self._spawn,
            )
        )

    def _stop_listener(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            self._accept_task = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _handle_connection(self, conn: socket.socket) -> None:
        try:
            await self.connect_plugin(conn)
        except AdaptationError as exc:
            logger.error("%s", exc)

    async def connect_plugin(self, conn: socket.socket, *, pid: int | None = None) -> PluginInfo:
        """Serve an external plugin on an already connected socket until it is registered.

        This is what happens to each connection accepted on ``socket_path``; a runtime that
        starts a plugin itself (for example over :func:`nri.net.socketpair`) hands its end
        over here, with the plugin's ``pid`` (the peer of a socket pair is the process that
        made it, not the plugin). Returns the registered plugin's info; raises
        AdaptationError saying which step failed (the connection is then closed).
        """
        plugin = self._new_plugin()
        try:
            await plugin.connect(conn)
        except Exception as exc:
            conn.close()
            self._connections.discard(plugin)
            raise AdaptationError(f"failed to create external plugin: {exc}") from exc
        if pid is not None:
            plugin.pid = pid
        try:
            await plugin.start(self.config.runtime_name, self.config.runtime_version)
        except PluginError as exc:
            raise AdaptationError(f"failed to start external plugin: {exc}") from exc
        return await self._synchronize_late(plugin)

    async def _synchronize_late(self, plugin: PluginConnection) -> PluginInfo:
        """Synchronize a registered plugin joining the running adaptation and add it (an
        external plugin, or a relaunched pre-installed one); AdaptationError says what
        failed."""
        async with self._sync_lock.write():
            try:
                pods, containers = await self._sync_fn()
            except Exception as exc:
                plugin.close()
                raise AdaptationError(
                    f"failed to synchronize plugin {plugin.name}: runtime sync failed: {exc}"
                ) from exc
            try:
                updates = await plugin.synchronize(pods, containers)
            except PluginError as exc:
                raise AdaptationError(f"failed to synchronize plugin {plugin.name}: {exc}") from exc
            await self._apply_sync_updates(updates, f"plugin {plugin.name}")
            if plugin.closed or self._stopping:
                raise AdaptationError(
                    f"plugin {plugin.name} closed during synchronization"
                    if plugin.closed
                    else f"plugin {plugin.name} connected while the adaptation is stopping"
                )
            async with self._gate.exclusive():
                replaced = self._take_over(plugin)
            plugin.mark_synchronized()
            logger.info("plugin %s connected and synchronized", plugin.name)
        if replaced is not None:
            await self._retire(replaced)
        return plugin.info()

    def _take_over(self, plugin: PluginConnection) -> PluginConnection | None:
        """Add ``plugin``; if it replaces a live plugin, drop that one in the same step and
        return it. (Called with the gate held: no event sees both or neither.)"""
        old, plugin.replaces = plugin.replaces, None
        if old is not None and old in self._plugins:
            self._plugins = [p for p in self._plugins if p is not old]
            logger.info(
                "plugin %s (%s) replaced by %s", old.name, old.qualified_name, plugin.qualified_name
            )
            if self._metrics is not None:
                self._metrics.plugin_closed(old.name)
            if self._on_closed is not None:
                self._hook(self._on_closed, old)
        self._add_plugin(plugin)
        return old

    async def _retire(self, old: PluginConnection) -> None:
        """Shut a replaced plugin down: Shutdown, then close (and stop its process)."""
        await old.shutdown(self.config.shutdown_timeout)
        if old.external:
            old.close()
        else:
            await old.stop()

    async def _plugin_update(
        self, plugin: PluginConnection, request: pb.UpdateContainersRequest
    ) -> list[pb.ContainerUpdate]:
        async with self._gate.exclusive():
            if plugin not in self._plugins:
                raise plugin.refuse(
                    Code.PERMISSION_DENIED,
                    f"plugin {plugin.name} may not call UpdateContainers: "
                    "it is no longer an active plugin",
                )
            failed: list[pb.ContainerUpdate] = []
            if request.update:
                failed = list(await self._update_fn(list(request.update)))
            if request.evict:
                if self._evict_fn is None:
                    raise StatusError(
                        Code.UNIMPLEMENTED,
                        f"runtime cannot evict containers (asked by plugin {plugin.name})",
                    )
                await self._evict_fn(list(request.evict))
            return failed
