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
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from nri.adaptation._config import AdaptationError, Config
from nri.adaptation._listener import accept_connections, open_listener
from nri.adaptation._output import log_output
from nri.adaptation._owners import ConflictError, go_quote
from nri.adaptation._plugin import PluginConnection, PluginError, PluginInfo
from nri.adaptation._preinstalled import DiscoveredPlugin, discover_plugins, spawn_plugin
from nri.adaptation._result import CreateResult, StopResult, UpdateResult
from nri.adaptation._synclock import SyncLock
from nri.adaptation._validator import DefaultValidator
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

ResultHook = Callable[[str, pb.OwningPlugins], None]
"""Called with the event name and the merged field owners (which plugin set what) after
the replies to CreateContainer, UpdateContainer or StopContainer were merged."""

M = TypeVar("M", bound=Message)

CREATE_CONTAINER = "CreateContainer"
UPDATE_CONTAINER = "UpdateContainer"
STOP_CONTAINER = "StopContainer"


class Adaptation:
    """What a runtime embeds to host NRI plugins.

    :meth:`start` launches the pre-installed plugins and listens for external ones; the
    lifecycle coroutines (:meth:`create_container`, ...) relay each event to the plugins
    subscribed to it, in index order. :meth:`stop` stops listening and kills launched
    plugins but, like upstream, leaves external plugin connections open;
    :meth:`close` (also run by ``async with``) additionally closes every connection.

    Events and unsolicited container updates are serialized, as upstream: a plugin that
    calls UpdateContainers from inside one of its event handlers waits until that event
    is over, so its handler runs into the request timeout.

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
        self._lock = asyncio.Lock()
        self._sync_lock = SyncLock()
        self._plugins: list[PluginConnection] = []
        self._connections: set[PluginConnection] = set()
        # Live connections by the NN-name they registered as (or were launched as).
        self._names: dict[str, PluginConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
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
            async with self._lock:
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
        async with self._lock:
            plugins, self._plugins = self._plugins, []
        # Connections left open are no plugins of ours any more: their names are free.
        self._names.clear()
        launched = [p for p in self._connections if not p.external]
        await asyncio.gather(*(p.stop() for p in launched), return_exceptions=True)
        del plugins
        self._changed.set()
        self._started = False

    async def close(self) -> None:
        """Stop, and close every plugin connection, external ones included."""
        await self.stop()
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

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pre-installed plugins ---------------------------------------------------------------

    def _new_plugin(self, **kwargs: object) -> PluginConnection:
        plugin = PluginConnection(
            registration_timeout=self.config.registration_timeout,
            request_timeout=self.config.request_timeout,
            max_message_size=self.config.max_message_size,
            on_update=self._plugin_update,
            on_close=self._plugin_closed,
            on_register=self._claim_name,
            observer=self._metrics,
            **kwargs,  # type: ignore[arg-type]
        )
        self._connections.add(plugin)
        return plugin

    def _claim_name(self, plugin: PluginConnection, idx: str, base: str) -> None:
        """Reserve ``idx-base`` for ``plugin``; PluginError if another live one has it."""
        name = f"{idx}-{base}"
        holder = self._names.get(name)
        if holder is not None and holder is not plugin and not holder.closed:
            raise PluginError(
                f"plugin {go_quote(name)} is already registered ({holder.qualified_name})"
            )
        self._names[name] = plugin

    async def _launch(self, found: DiscoveredPlugin) -> PluginConnection | None:
        name = found.name
        logger.info("starting pre-installed NRI plugin %s...", name)
        spawned = await spawn_plugin(found)
        if spawned is None:
            return None
        process, local = spawned
        plugin = self._new_plugin(
            idx=found.idx, base=found.base, config=found.config, process=process
        )
        self._claim_name(plugin, found.idx, found.base)
        await plugin.connect(local)
        self._spawn(self._watch_process(plugin, process))
        if process.stdout is not None:
            self._spawn(log_output(name, process.stdout))
        try:
            await plugin.start(self.config.runtime_name, self.config.runtime_version)
        except PluginError as exc:
            logger.warning("failed to start pre-installed NRI plugin %s: %s", name, exc)
            await plugin.stop()
            return None
        return plugin

    async def _watch_process(
        self, plugin: PluginConnection, process: asyncio.subprocess.Process
    ) -> None:
        status = await process.wait()
        if not self._stopping:
            logger.warning(
                "pre-installed NRI plugin %s (pid %d) exited with status %d",
                plugin.name,
                process.pid,
                status,
            )
        plugin.close()

    async def _start_plugins(self) -> None:
        found = discover_plugins(self.config)
        launched = await asyncio.gather(*(self._launch(f) for f in found))
        plugins = [p for p in launched if p is not None]
        if not plugins:
            return
        try:
            pods, containers = await self._sync_fn()
        except Exception as exc:
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
            async with self._lock:
                self._add_plugin(plugin)
            plugin.mark_synchronized()
            logger.info("plugin %s connected and synchronized", plugin.name)
            return plugin.info()

    async def _plugin_update(
        self, plugin: PluginConnection, request: pb.UpdateContainersRequest
    ) -> list[pb.ContainerUpdate]:
        async with self._lock:
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

    # -- lifecycle events --------------------------------------------------------------------

    async def _relay(self, event: int, method: str, request: Message, rtype: type[M]) -> None:
        async with self._lock:
            for plugin in list(self._plugins):
                await plugin.event(event, method, request, rtype)

    async def run_pod_sandbox(self, request: pb.RunPodSandboxRequest) -> None:
        """Relay RunPodSandbox; raises PluginError if a plugin fails it."""
        await self._relay(pb.RUN_POD_SANDBOX, "RunPodSandbox", request, pb.RunPodSandboxResponse)

    async def update_pod_sandbox(
        self, request: pb.UpdatePodSandboxRequest
    ) -> pb.UpdatePodSandboxResponse:
        """Relay UpdatePodSandbox; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.UPDATE_POD_SANDBOX, "UpdatePodSandbox", request, pb.UpdatePodSandboxResponse
        )
        return pb.UpdatePodSandboxResponse()

    async def post_update_pod_sandbox(self, request: pb.PostUpdatePodSandboxRequest) -> None:
        """Relay PostUpdatePodSandbox; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.POST_UPDATE_POD_SANDBOX,
            "PostUpdatePodSandbox",
            request,
            pb.PostUpdatePodSandboxResponse,
        )

    async def stop_pod_sandbox(self, request: pb.StopPodSandboxRequest) -> None:
        """Relay StopPodSandbox; raises PluginError if a plugin fails it."""
        await self._relay(pb.STOP_POD_SANDBOX, "StopPodSandbox", request, pb.StopPodSandboxResponse)

    async def remove_pod_sandbox(self, request: pb.RemovePodSandboxRequest) -> None:
        """Relay RemovePodSandbox; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.REMOVE_POD_SANDBOX, "RemovePodSandbox", request, pb.RemovePodSandboxResponse
        )

    async def create_container(
        self, request: pb.CreateContainerRequest
    ) -> pb.CreateContainerResponse:
        """Relay CreateContainer, merge the adjustments and run the validators.

        Raises PluginError if a plugin fails, ConflictError if two plugins claim the same
        field and ValidationError if a validator rejects the result.
        """
        async with self._lock:
            plugins = list(self._plugins)
            result = CreateResult(request)
            for plugin in plugins:
                reply = await plugin.event(
                    pb.CREATE_CONTAINER, CREATE_CONTAINER, request, pb.CreateContainerResponse
                )
                if reply is not None:
                    self._apply(CREATE_CONTAINER, result, plugin.name, reply)
            response = result.response()
            self._report(CREATE_CONTAINER, result)
            validators = [
                p
                for p in self._plugins
                if p in plugins and p.subscribed(pb.VALIDATE_CONTAINER_ADJUSTMENT)
            ]
            if not validators and self._default_validator is None:
                return response
            instances = [pb.PluginInstance(name=p.base, index=p.idx) for p in plugins]
            if self._default_validator is not None:
                idx, _, base = self._default_validator.name.partition("-")
                instances.insert(0, pb.PluginInstance(name=base, index=idx))
            validate = result.validation_request(instances)
            if self._default_validator is not None:
                self._default_validator.validate(validate)
            errors = await asyncio.gather(*(p.validate(validate) for p in validators))
            for error in errors:
                if error is not None:
                    raise error
            return response

    async def post_create_container(self, request: pb.PostCreateContainerRequest) -> None:
        """Relay PostCreateContainer; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.POST_CREATE_CONTAINER,
            "PostCreateContainer",
            request,
            pb.PostCreateContainerResponse,
        )

    async def start_container(self, request: pb.StartContainerRequest) -> None:
        """Relay StartContainer; raises PluginError if a plugin fails it."""
        await self._relay(pb.START_CONTAINER, "StartContainer", request, pb.StartContainerResponse)

    async def post_start_container(self, request: pb.PostStartContainerRequest) -> None:
        """Relay PostStartContainer; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.POST_START_CONTAINER, "PostStartContainer", request, pb.PostStartContainerResponse
        )

    async def update_container(
        self, request: pb.UpdateContainerRequest
    ) -> pb.UpdateContainerResponse:
        """Relay UpdateContainer and merge the plugins' updates."""
        async with self._lock:
            result = UpdateResult(request)
            for plugin in list(self._plugins):
                reply = await plugin.event(
                    pb.UPDATE_CONTAINER, UPDATE_CONTAINER, request, pb.UpdateContainerResponse
                )
                if reply is not None:
                    self._apply(UPDATE_CONTAINER, result, plugin.name, reply)
            self._report(UPDATE_CONTAINER, result)
            return result.response()

    async def post_update_container(self, request: pb.PostUpdateContainerRequest) -> None:
        """Relay PostUpdateContainer; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.POST_UPDATE_CONTAINER,
            "PostUpdateContainer",
            request,
            pb.PostUpdateContainerResponse,
        )

    async def stop_container(self, request: pb.StopContainerRequest) -> pb.StopContainerResponse:
        """Relay StopContainer and merge the plugins' updates."""
        async with self._lock:
            result = StopResult(request)
            for plugin in list(self._plugins):
                reply = await plugin.event(
                    pb.STOP_CONTAINER, STOP_CONTAINER, request, pb.StopContainerResponse
                )
                if reply is not None:
                    self._apply(STOP_CONTAINER, result, plugin.name, reply)
            self._report(STOP_CONTAINER, result)
            return result.response()

    def _apply(
        self, event: str, result: CreateResult | UpdateResult | StopResult, plugin: str, reply: Any
    ) -> None:
        try:
            result.apply(plugin, reply)
        except ConflictError:
            if self._metrics is not None:
                self._metrics.conflict(plugin, event)
            raise

    def _report(self, event: str, result: CreateResult | UpdateResult | StopResult) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(event, result.owners)
        except Exception:
            logger.exception("result hook %r failed for %s", self._on_result, event)

    async def remove_container(self, request: pb.RemoveContainerRequest) -> None:
        """Relay RemoveContainer; raises PluginError if a plugin fails it."""
        await self._relay(
            pb.REMOVE_CONTAINER, "RemoveContainer", request, pb.RemoveContainerResponse
        )
