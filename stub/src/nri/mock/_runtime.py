"""The mock runtime: pods and containers in memory, plugins hosted by the real adaptation.

:class:`MockRuntime` puts together the parts, each in its own module: the pods and
containers (:mod:`~nri.mock._state`), the lifecycle calls relaying their events
(:mod:`~nri.mock._lifecycle`), the record of every event (:mod:`~nri.mock._history`) and
the plugins it starts itself (:mod:`~nri.mock._hosting`), and the runtime it behaves as
(:mod:`~nri.mock._profiles`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nri.adaptation import (
    Adaptation,
    AdaptationError,
    Config,
    DefaultValidatorConfig,
    PluginInfo,
    PluginSettings,
    TimeoutPolicy,
)
from nri.adaptation._plugin import STATE_CHANGE_EVENTS
from nri.api import (
    DEFAULT_REGISTRATION_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    NRI_VERSION,
)
from nri.api import api_pb2 as pb
from nri.mock._history import EventRecord
from nri.mock._hosting import PluginHost, PluginProcess, PreinstalledPlugin
from nri.mock._lifecycle import Lifecycle
from nri.mock._profiles import CONTAINERD, RuntimeProfile
from nri.stub import Plugin, Stub

if TYPE_CHECKING:
    from nri.metrics import AdaptationObserver
    from nri.ttrpc import Interceptor

__all__ = ["MockRuntime"]


class MockRuntime(Lifecycle):
    """An NRI runtime in memory, for running and testing plugins without a cluster.

    Pods and containers live in dicts; each container has an OCI runtime spec. Lifecycle
    calls relay the events through a real :class:`~nri.adaptation.Adaptation`, so plugins
    get exactly what the runtime of ``profile`` sends them (``containerd``, the default, or
    ``cri-o``; see :class:`~nri.mock.RuntimeProfile`), and apply the merged adjustments and
    updates to the stored specs with :class:`~nri.oci.SpecGenerator`. Unsolicited updates
    from plugins are applied too; evictions are recorded, and acted on (the containers
    stopped and removed) only with ``act_on_evictions``, as real runtimes ignore them.
    ``metrics`` (e.g. :class:`nri.metrics.AdaptationMetrics`) observes the adaptation.
    The adaptation's settings beyond upstream's (``timeout_policy``, ``plugin_settings``,
    ``required_plugins``, ``replace_plugins``, ``shutdown_plugins``, ...) are the
    :class:`~nri.adaptation.Config` fields of the same names; left out (None), Config's
    defaults apply. Invalid values raise AdaptationError naming the setting.
    Every event is recorded in :attr:`history` with who changed what and the specs before
    and after::

        import asyncio

        from nri.mock import MockRuntime

        ULIMITS = {"ulimits.noderesource.dev/container.app": "[{type: nofile, hard: 64}]"}


        async def main():
            async with MockRuntime() as runtime:
                await runtime.launch_plugin("nri-ulimit-adjuster --idx 10")
                pod = await runtime.run_pod("web", annotations=ULIMITS)
                ctr = await runtime.create_container(pod, "app", args=["sleep", "inf"])
                print(ctr.spec["process"]["rlimits"])


        asyncio.run(main())
    """

    def __init__(
        self,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        plugin_path: str | os.PathLike[str] | None = None,
        plugin_config_path: str | os.PathLike[str] | None = None,
        runtime_name: str = "nri-mock-runtime",
        runtime_version: str = NRI_VERSION,
        registration_timeout: float = DEFAULT_REGISTRATION_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        default_validator: DefaultValidatorConfig | None = None,
        disable_connections: bool = False,
        profile: str | RuntimeProfile = CONTAINERD,
        act_on_evictions: bool = False,
        metrics: AdaptationObserver | None = None,
        timeout_policy: TimeoutPolicy | None = None,
        max_consecutive_timeouts: int | None = None,
        plugin_settings: Mapping[str, PluginSettings] | None = None,
        required_plugins: Sequence[str] = (),
        replace_plugins: bool | None = None,
        per_pod_concurrency: bool | None = None,
        shutdown_plugins: bool | None = None,
        shutdown_timeout: float | None = None,
        restart_plugins: bool | None = None,
        restart_backoff: float | None = None,
        restart_backoff_max: float | None = None,
        plugin_stop_grace: float | None = None,
        client_interceptors: Sequence[Interceptor] = (),
        server_interceptors: Sequence[Interceptor] = (),
    ) -> None:
        super().__init__(profile)
        self.act_on_evictions = act_on_evictions
        self._tmpdir = tempfile.mkdtemp(prefix="nri-mock-")
        # Also removed when a runtime that was never closed is collected or at exit.
        self._remove_tmpdir = weakref.finalize(
            self, shutil.rmtree, self._tmpdir, ignore_errors=True
        )
        self.socket_path = (
            os.fspath(socket_path)
            if socket_path is not None
            else os.path.join(self._tmpdir, "nri.sock")
        )
        empty = os.path.join(self._tmpdir, "none")
        os.mkdir(empty, 0o700)
        self.plugin_path = os.fspath(plugin_path) if plugin_path is not None else None
        """The directory of pre-installed plugins, if any."""
        # The adaptation starts wrappers of the pre-installed plugins, which send the
        # plugins' output to this runtime (see PluginHost.mirror_plugin_dir).
        self._wrappers = os.path.join(self._tmpdir, "plugins")
        os.mkdir(self._wrappers, 0o700)
        given: dict[str, Any] = {
            "timeout_policy": timeout_policy,
            "max_consecutive_timeouts": max_consecutive_timeouts,
            "plugin_settings": dict(plugin_settings) if plugin_settings is not None else None,
            "required_plugins": tuple(required_plugins),
            "replace_plugins": replace_plugins,
            "per_pod_concurrency": per_pod_concurrency,
            "shutdown_plugins": shutdown_plugins,
            "shutdown_timeout": shutdown_timeout,
            "restart_plugins": restart_plugins,
            "restart_backoff": restart_backoff,
            "restart_backoff_max": restart_backoff_max,
            "plugin_stop_grace": plugin_stop_grace,
            "client_interceptors": tuple(client_interceptors),
            "server_interceptors": tuple(server_interceptors),
        }
        config = Config(
            runtime_name=runtime_name,
            runtime_version=runtime_version,
            socket_path=self.socket_path,
            plugin_path=self._wrappers,
            plugin_config_path=(
                os.fspath(plugin_config_path) if plugin_config_path is not None else empty
            ),
            disable_connections=disable_connections,
            registration_timeout=registration_timeout,
            request_timeout=request_timeout,
            default_validator=default_validator,
            **{name: value for name, value in given.items() if value is not None},
        )
        self.adaptation = Adaptation(
            config,
            sync=self._sync,
            update=self._update,
            evict=self._evict,
            on_result=self._on_result,
            on_plugin_registered=self._plugin_registered,
            on_plugin_closed=self._plugin_closed,
            metrics=metrics,
        )
        self._host = PluginHost(self.adaptation)
        self.processes: list[PluginProcess] = self._host.processes
        """The plugin commands started by :meth:`launch_plugin`."""
        self.stubs: list[Stub] = self._host.stubs
        """The in-process plugins started by :meth:`add_plugin`."""
        self.preinstalled: list[PreinstalledPlugin] = self._host.preinstalled
        """The plugins of :attr:`plugin_path` (started or not), with what they wrote."""
        self.on_preinstalled_output: Callable[[str, str], None] | None = None
        """Called with (``NN-name``, line) for each line a pre-installed plugin writes to its
        stdout or stderr; set it before :meth:`start`."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- start / stop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the adaptation: launch pre-installed plugins, listen on the socket.

        If that fails, the runtime is closed (its temporary files removed) and the error raised.
        A ``socket_path`` that exists and is not a socket, or whose directory does not exist,
        is refused with AdaptationError: the mock runtime replaces nothing but a stale socket
        and creates no directories. So is a ``plugin_path`` that is not a directory. A
        pre-installed plugin that fails to start or register is logged and left out, as
        runtimes do: compare :attr:`plugins` with :attr:`preinstalled`.
        """
        try:
            if not self.adaptation.config.disable_connections:
                _check_socket_path(self.socket_path)
            if self.plugin_path is not None and not self.preinstalled:
                try:
                    await self._host.mirror_plugin_dir(
                        self.plugin_path, self._wrappers, self.on_preinstalled_output
                    )
                except OSError as exc:
                    raise AdaptationError(str(exc)) from None
            await self.adaptation.start()
        except BaseException:
            await self.close()
            raise
        self._closing = False

    async def close(self) -> None:
        """Stop plugins started here, close every connection and remove temporary files."""
        self._closing = True
        await self._host.stop_stubs()
        await self.adaptation.close()
        await self._host.stop_processes()
        await self.idle()
        self._remove_tmpdir()

    async def __aenter__(self) -> MockRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def idle(self) -> None:
        """Wait until evictions and other work started in the background are done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- plugins -----------------------------------------------------------------------------

    @property
    def plugins(self) -> list[PluginInfo]:
        """The registered plugins in invocation order."""
        return self.adaptation.plugins

    async def wait_for_plugins(
        self,
        count: int | None = None,
        names: Iterable[str] = (),
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[PluginInfo]:
        """Wait until ``count`` plugins and all ``names`` are registered."""
        return await self.adaptation.wait_for_plugins(count, names, timeout=timeout)

    async def launch_plugin(
        self,
        command: str | Sequence[str],
        *,
        name: str | None = None,
        idx: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        on_output: Callable[[str], None] | None = None,
    ) -> PluginProcess:
        """Start a plugin command connected to this runtime and wait until it registered.

        A bare command name is looked up on PATH, then beside the running Python
        (``sys.executable``): the plugin commands of a virtual environment are found when
        its python runs the tests without the environment being activated.

        The command gets its end of a socket pair on fd 3 with ``NRI_PLUGIN_SOCKET=3``, as
        pre-installed plugins do, on top of this process's environment and ``env``; ``name``
        and ``idx`` are passed as ``NRI_PLUGIN_NAME``/``NRI_PLUGIN_IDX``. Raises
        :class:`PluginLaunchError` if it cannot start or exits first, TimeoutError if it does
        not register within ``timeout`` seconds (default: the registration timeout).
        ``on_output`` is called in the event loop with each line the plugin writes to its
        stderr, as it arrives (without the newline).
        """
        return await self._host.launch(
            command, name=name, idx=idx, env=env, timeout=timeout, on_output=on_output
        )

    async def add_plugin(
        self,
        plugin: Plugin,
        *,
        name: str,
        idx: str,
        config: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Stub:
        """Run an in-process plugin object in this event loop, registered with this runtime.

        ``config`` is used when the runtime gives the plugin no configuration of its own;
        ``timeout`` defaults to the runtime's registration timeout.
        """
        return await self._host.add(plugin, name=name, idx=idx, config=config, timeout=timeout)

    # -- adaptation callbacks ----------------------------------------------------------------

    async def _sync(self) -> tuple[list[pb.PodSandbox], list[pb.Container]]:
        return (
            [p.to_proto() for p in self.pods.values()],
            [c.to_proto() for c in self.containers.values()],
        )

    async def _update(self, updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        record = EventRecord("UpdateContainers")
        failed = self._apply_updates(updates, record)
        self.history.append(record)
        return failed

    async def _evict(self, evictions: list[pb.ContainerEviction]) -> None:
        # Called while the adaptation serializes events: relay Stop/Remove afterwards.
        for eviction in evictions:
            cid, reason = eviction.container_id, eviction.reason
            if self.act_on_evictions:
                self._spawn(self._evict_one(cid, reason))
            else:
                ctr = self.containers.get(cid)
                record = EventRecord(
                    "EvictContainer",
                    pod_id=ctr.pod_id if ctr is not None else None,
                    container_id=cid,
                    ignored_evictions=[(cid, reason)],
                )
                self.history.append(record)

    def _plugin_registered(self, info: PluginInfo) -> None:
        if self.profile.state_change_delivery:
            _deliver_through_state_change(self.adaptation)

    def _plugin_closed(self, info: PluginInfo) -> None:
        # A plugin that crashed, disconnected or missed a deadline: events go on without it.
        if not self._closing:
            self.history.append(EventRecord("PluginClosed", plugin=info.full_name))


def _check_socket_path(path: str) -> None:
    """Refuse a socket path where binding would replace a file or create directories."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise AdaptationError(
                f"socket {path!r}: a dangling symbolic link is in the way (not replaced)"
            ) from None
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise AdaptationError(
                f"socket {path!r}: directory {parent!r} does not exist (create it first)"
            ) from None
        return
    except OSError as exc:
        raise AdaptationError(f"socket {path!r}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a file that is not a socket"
        raise AdaptationError(f"socket {path!r}: {kind} is in the way (not replaced)")


def _deliver_through_state_change(adaptation: Adaptation) -> None:
    """Make the registered plugins get the events that return nothing through StateChange,
    as NRI 0.11 runtimes send them, without warning about it (it is no fallback here)."""
    # The adaptation switches a plugin over by itself only when it answers Unimplemented;
    # it has no setting for doing so from the start, so the connections are set here.
    for plugin in adaptation._plugins:
        if not plugin.state_change_only:
            plugin.state_change_only = True
            plugin._warned_state_change.update(STATE_CHANGE_EVENTS)
