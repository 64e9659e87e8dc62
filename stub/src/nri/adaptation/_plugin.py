"""The runtime's side of one plugin connection (upstream ``pkg/adaptation/plugin.go``).

A :class:`PluginConnection` owns the plugin's mux, the ttRPC client calling the plugin's
``Plugin`` service on conn 1 and the ttRPC server answering its ``Runtime`` service on
conn 2; for a pre-installed plugin it also owns the launched process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from nri.adaptation._config import PluginSettings, TimeoutPolicy
from nri.adaptation._owners import go_quote
from nri.adaptation._supervisor import signal_process
from nri.adaptation._validator import ValidationError, validation_result
from nri.api import (
    NRI_VERSION,
    VALID_EVENTS,
    EventMask,
    InvalidPluginIndexError,
    InvalidPluginNameError,
    validate_plugin_index,
    validate_plugin_name,
)
from nri.api import api_pb2 as pb
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Mux, MuxClosedError
from nri.ttrpc import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Client,
    ClosedError,
    Code,
    DeadlineExceededError,
    Interceptor,
    Method,
    OversizedMessageError,
    ProtocolError,
    Server,
    StatusError,
)

if TYPE_CHECKING:
    from nri.metrics._observer import PluginObserver

__all__ = [
    "PLUGIN_SERVICE",
    "RUNTIME_SERVICE",
    "PluginConnection",
    "PluginError",
    "PluginInfo",
    "is_fatal_error",
]

logger = logging.getLogger("nri.adaptation")

PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"

#: Events an old plugin may get as StateChange instead (upstream ``deprecations.go``).
STATE_CHANGE_EVENTS: dict[str, int] = {
    "RunPodSandbox": pb.RUN_POD_SANDBOX,
    "StopPodSandbox": pb.STOP_POD_SANDBOX,
    "RemovePodSandbox": pb.REMOVE_POD_SANDBOX,
    "PostUpdatePodSandbox": pb.POST_UPDATE_POD_SANDBOX,
    "PostCreateContainer": pb.POST_CREATE_CONTAINER,
    "StartContainer": pb.START_CONTAINER,
    "PostStartContainer": pb.POST_START_CONTAINER,
    "PostUpdateContainer": pb.POST_UPDATE_CONTAINER,
    "RemoveContainer": pb.REMOVE_CONTAINER,
}

_MIN_OBJS_PER_SYNC_MSG = 8

M = TypeVar("M", bound=Message)
UpdateHandler = Callable[
    ["PluginConnection", pb.UpdateContainersRequest], Awaitable[list[pb.ContainerUpdate]]
]


class PluginError(Exception):
    """A plugin failed a request in a way that fails the runtime's event (not fatal)."""


class PluginTimeoutError(PluginError):
    """A plugin did not answer an event in time and its timeout policy fails the event."""


def request_subject(request: Message) -> str:
    """What an event request is about, for logs: ``container ID (pod NS/NAME)`` or ``pod``."""
    req: Any = request
    fields = req.DESCRIPTOR.fields_by_name
    pod = f"pod {req.pod.namespace}/{req.pod.name}" if "pod" in fields else ""
    if "container" in fields and req.container.id:
        return f"container {req.container.id} ({pod})" if pod else f"container {req.container.id}"
    return pod or req.DESCRIPTOR.name


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """A snapshot of a registered plugin, for introspection."""

    name: str
    idx: str
    events: EventMask
    pid: int | None
    external: bool

    @property
    def full_name(self) -> str:
        """The indexed name, ``NN-name``."""
        return f"{self.idx}-{self.name}"


def is_fatal_error(exc: BaseException) -> bool:
    """Whether a call error means the plugin is gone (upstream ``isFatalError``).

    Closed connections, protocol errors and deadlines are fatal: the plugin is closed and
    the event goes on without it. Anything else fails the event.
    """
    return isinstance(
        exc, (ClosedError, ProtocolError, DeadlineExceededError, MuxClosedError, TimeoutError)
    )


def recalc_objs_per_sync_msg(pods: int, ctrs: int, exc: Exception) -> tuple[int, int]:
    """Shrink a Synchronize batch after an oversized message (upstream recalcObjsPerSyncMsg).

    Raises PluginError when the message cannot be split any further.
    """
    if not isinstance(exc, OversizedMessageError):
        raise exc
    failed = PluginError("failed to synchronize plugin with split messages")
    if pods + ctrs <= _MIN_OBJS_PER_SYNC_MSG:
        raise failed from exc
    if exc.length == 0 or exc.limit == 0 or exc.length <= exc.limit:
        raise failed from exc
    factor = min(exc.limit / exc.length, 0.9)
    pods = int(pods * factor)
    ctrs = int(ctrs * factor)
    if pods + ctrs < _MIN_OBJS_PER_SYNC_MSG:
        pods = ctrs = _MIN_OBJS_PER_SYNC_MSG // 2
    return pods, ctrs


class PluginConnection:
    """One plugin as the runtime sees it: its connection, identity and subscription."""

    def __init__(
        self,
        *,
        idx: str = "",
        base: str = "",
        config: str = "",
        process: asyncio.subprocess.Process | None = None,
        stop_grace: float = 2.0,
        registration_timeout: float,
        request_timeout: float,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_update: UpdateHandler,
        on_close: Callable[[PluginConnection], None],
        on_register: Callable[[PluginConnection, str, str], None] | None = None,
        client_interceptors: Sequence[Interceptor] = (),
        server_interceptors: Sequence[Interceptor] = (),
        observer: PluginObserver | None = None,
        timeout_policy: TimeoutPolicy = "close",
        max_consecutive_timeouts: int = 3,
    ) -> None:
        # Told of every request's latency and outcome (nri.metrics), if given.
        self._observer = observer
        # Seconds the launched process has between SIGTERM and SIGKILL in stop().
        self.stop_grace = stop_grace
        self._stop_task: asyncio.Task[None] | None = None
        # Interceptors (nri.ttrpc) around calls to the plugin and the plugin's requests.
        self._client_interceptors = tuple(client_interceptors)
        self._server_interceptors = tuple(server_interceptors)
        self.idx = idx
        self.base = base
        self.config = config
        self.process = process
        self.registration_timeout = registration_timeout
        self.request_timeout = request_timeout
        self.max_message_size = max_message_size
        self.timeout_policy: TimeoutPolicy = timeout_policy
        self.max_consecutive_timeouts = max_consecutive_timeouts
        self._timeouts_in_a_row = 0
        # The live plugin of the same name this one is to take over from (replace_plugins).
        self.replaces: PluginConnection | None = None
        self.events = EventMask(0)
        self.state_change_only = False
        self.pid: int | None = process.pid if process is not None else None
        self._on_update = on_update
        self._on_close = on_close
        self._on_register = on_register
        self._mux: Mux | None = None
        self._client: Client | None = None
        self._server: Server | None = None
        loop = asyncio.get_running_loop()
        self._registered: asyncio.Future[None] = loop.create_future()
        # True once the adaptation added the plugin to its invocation list; False if the
        # connection closed before that.
        self._synchronized: asyncio.Future[bool] = loop.create_future()
        self._register_seen = False
        self._closed = False
        self._close_reported = False
        self._warned_state_change: set[str] = set()

    # -- identity ----------------------------------------------------------------------------

    @property
    def external(self) -> bool:
        """Whether the plugin connected by itself (not launched by the runtime)."""
        return self.process is None

    @property
    def name(self) -> str:
        """The indexed name, ``NN-name`` (``??-plugin`` before registration)."""
        return f"{self.idx or '??'}-{self.base or 'plugin'}"

    @property
    def qualified_name(self) -> str:
        """Kind, name and pid, for logs (upstream qualifiedName)."""
        kind = "external" if self.external else "pre-connected"
        return f"{kind}:{self.name}[{self.pid if self.pid is not None else '?'}]"

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._closed

    def info(self) -> PluginInfo:
        """Return a snapshot of the plugin's identity and subscription."""
        return PluginInfo(self.base, self.idx, self.events, self.pid, self.external)

    def subscribed(self, event: int) -> bool:
        """Whether the plugin subscribed to ``event``."""
        if type(event) is int and event > 0:
            # The bit test of EventMask.__contains__, without its type dispatch.
            return (self.events >> (event - 1)) & 1 == 1
        return event in self.events

    def apply_settings(self, settings: PluginSettings) -> None:
        """Take the per-plugin timeouts and timeout policy that are set in ``settings``."""
        if settings.request_timeout is not None:
            self.request_timeout = settings.request_timeout
        if settings.registration_timeout is not None:
            self.registration_timeout = settings.registration_timeout
        if settings.timeout_policy is not None:
            self.timeout_policy = settings.timeout_policy

    # -- connection --------------------------------------------------------------------------

    async def connect(self, sock: socket.socket) -> None:
        """Multiplex ``sock`` and set up both ttRPC conns (reading stays blocked)."""
        mux = await Mux.from_socket(sock, blocked_read=True)
        if self.external:
            self.pid = mux.peer_pid
        client = Client(
            max_message_size=self.max_message_size, interceptors=self._client_interceptors
        )
        server = Server(
            logger=logging.getLogger("nri.adaptation.ttrpc"),
            interceptors=self._server_interceptors,
        )
        server.register(
            RUNTIME_SERVICE,
            {
                "RegisterPlugin": Method(pb.RegisterPluginRequest, self._register_plugin),
                "UpdateContainers": Method(pb.UpdateContainersRequest, self._update_containers),
            },
        )
        mux.open(PLUGIN_SERVICE_CONN, client)
        mux.open(RUNTIME_SERVICE_CONN, server.connection())
        mux.add_close_callback(self._mux_closed)
        self._mux, self._client, self._server = mux, client, server

    async def start(self, runtime_name: str, runtime_version: str) -> None:
        """Wait for RegisterPlugin, then Configure the plugin.

        Raises PluginError (the plugin is closed) if registration times out, is invalid, the
        connection closes, or Configure fails or answers an invalid event mask.
        """
        assert self._mux is not None
        self._mux.unblock()
        closed = asyncio.ensure_future(self._mux.wait_closed())
        try:
            done, _ = await asyncio.wait(
                {self._registered, closed},
                timeout=self.registration_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            closed.cancel()
        if self._registered in done:
            exc = self._registered.exception()
            if exc is not None:
                self.close()
                raise PluginError(f"failed to register plugin: {exc}") from exc
        elif done:
            raise PluginError(f"failed to register plugin {self.qualified_name}: connection closed")
        else:
            self.close()
            raise PluginError(
                f"plugin {self.qualified_name} registration timed out "
                f"after {self.registration_timeout:g}s"
            )
        try:
            await self._configure(runtime_name, runtime_version)
        except BaseException:
            self.close()
            raise

    async def _register_plugin(self, request: pb.RegisterPluginRequest) -> pb.Empty:
        if self._register_seen:
            # Upstream would overwrite the identity of a live plugin; one per connection.
            # Refused like upstream refuses registrations: a plain error (code Unknown).
            raise self.refuse(
                Code.UNKNOWN,
                f"connection already registered as {go_quote(self.name)}, refusing to "
                f"register it again as {go_quote(request.plugin_idx + '-' + request.plugin_name)}",
            )
        self._register_seen = True
        if self.external:
            try:
                validate_plugin_name(request.plugin_name)
            except InvalidPluginNameError as exc:
                self._set_registered(PluginError(f"plugin registered with an invalid name: {exc}"))
                raise StatusError(Code.UNKNOWN, f"invalid plugin name: {exc}") from exc
            try:
                validate_plugin_index(request.plugin_idx)
            except InvalidPluginIndexError as exc:
                self._set_registered(
                    PluginError(
                        f"plugin {request.plugin_name!r} registered with an invalid index: {exc}"
                    )
                )
                raise StatusError(Code.UNKNOWN, f"invalid plugin index: {exc}") from exc
            if self._on_register is not None:
                try:
                    self._on_register(self, request.plugin_idx, request.plugin_name)
                except PluginError as exc:
                    self._set_registered(exc)
                    raise StatusError(Code.UNKNOWN, str(exc)) from exc
            self.base, self.idx = request.plugin_name, request.plugin_idx
        logger.info(
            "plugin %s registered as %s (NRI %s)",
            self.qualified_name,
            self.name,
            request.NRI_version or "unknown",
        )
        self._set_registered(None)
        return pb.Empty()

    def _set_registered(self, exc: Exception | None) -> None:
        if self._registered.done():
            return
        if exc is None:
            self._registered.set_result(None)
        else:
            self._registered.set_exception(exc)
            self._registered.exception()  # retrieved by start(), or by nobody if never started

    async def _update_containers(
        self, request: pb.UpdateContainersRequest
    ) -> pb.UpdateContainersResponse:
        await self.check_synchronized("UpdateContainers")
        logger.info("plugin %s requested container updates", self.name)
        if self._observer is not None:
            self._observer.unsolicited_update(self.name, len(request.evict))
        failed = await self._on_update(self, request)
        return pb.UpdateContainersResponse(failed=failed)

    async def check_synchronized(self, method: str) -> None:
        """Let ``method`` through only for a registered, configured and synchronized plugin.

        A call that arrives after RegisterPlugin but before the handshake is over waits for
        it (a plugin may send it right behind its Synchronize reply); anything else is
        refused with PERMISSION_DENIED and the connection is closed.
        """
        registered = self._registered
        if not registered.done() or registered.exception() is not None:
            raise self.refuse(
                Code.PERMISSION_DENIED,
                f"plugin {self.name} may not call {method}: it is not registered",
            )
        if not await asyncio.shield(self._synchronized):
            raise self.refuse(
                Code.PERMISSION_DENIED,
                f"plugin {self.name} may not call {method}: it is not synchronized",
            )

    def refuse(self, code: Code, message: str) -> StatusError:
        """Log ``message``, close the connection once the error reply is out; return the
        StatusError to raise from the request's handler."""
        logger.error("closing connection of plugin %s: %s", self.qualified_name, message)
        # The handler raises right away and its reply is written in the same step, before
        # this runs; closing the trunk flushes what is written.
        asyncio.get_running_loop().call_soon(self.close)
        return StatusError(code, message)

    def mark_synchronized(self) -> None:
        """The plugin is in the invocation list: it may now call UpdateContainers."""
        if not self._synchronized.done():
            self._synchronized.set_result(not self._closed)

    async def _configure(self, runtime_name: str, runtime_version: str) -> None:
        request = pb.ConfigureRequest(
            config=self.config,
            runtime_name=runtime_name,
            runtime_version=runtime_version,
            registration_timeout=int(self.registration_timeout * 1000),
            request_timeout=int(self.request_timeout * 1000),
            NRI_version=NRI_VERSION,
        )
        try:
            reply = await self._call("Configure", request, pb.ConfigureResponse)
        except Exception as exc:
            raise PluginError(f"failed to configure plugin {self.name}: {exc}") from exc
        events = reply.events
        if events == 0:
            events = VALID_EVENTS
        elif extra := events & ~VALID_EVENTS:
            raise PluginError(f"plugin {self.name} subscribed to invalid events: 0x{extra:x}")
        self.events = EventMask(events)

    async def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> list[pb.ContainerUpdate]:
        """Send the runtime's state, split when too large; return the plugin's updates.

        The whole exchange gets one request timeout. On failure the plugin is closed and
        PluginError raised.
        """
        logger.info("synchronizing plugin %s", self.name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        pods_left, ctrs_left = list(pods), list(containers)
        pods_per_msg, ctrs_per_msg = len(pods_left), len(ctrs_left)
        try:
            while True:
                more = len(pods_left) > pods_per_msg or len(ctrs_left) > ctrs_per_msg
                request = pb.SynchronizeRequest(
                    pods=pods_left[:pods_per_msg], containers=ctrs_left[:ctrs_per_msg], more=more
                )
                try:
                    reply = await self._call(
                        "Synchronize",
                        request,
                        pb.SynchronizeResponse,
                        timeout=deadline - loop.time(),
                    )
                except OversizedMessageError as exc:
                    pods_per_msg, ctrs_per_msg = recalc_objs_per_sync_msg(
                        pods_per_msg, ctrs_per_msg, exc
                    )
                    logger.debug(
                        "sync message for %s too large (%d bytes); retrying with %d pods, "
                        "%d containers per message",
                        self.name,
                        exc.length,
                        pods_per_msg,
                        ctrs_per_msg,
                    )
                    continue
                if not more:
                    return list(reply.update)
                if reply.update or reply.more != more:
                    raise PluginError(f"plugin {self.name} does not handle split sync requests")
                pods_left = pods_left[pods_per_msg:]
                ctrs_left = ctrs_left[ctrs_per_msg:]
                pods_per_msg = min(pods_per_msg, len(pods_left))
                ctrs_per_msg = min(ctrs_per_msg, len(ctrs_left))
        except PluginError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise PluginError(f"failed to synchronize plugin {self.name}: {exc}") from exc

    # -- requests ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-call deadline sent on the wire)
    ) -> M:
        if self._client is None or self._closed:
            raise ClosedError(f"connection to plugin {self.name} is closed")
        call = self._client.call(
            PLUGIN_SERVICE,
            method,
            request,
            response_type,
            timeout=self.request_timeout if timeout is None else timeout,
        )
        if self._observer is None:
            return await call
        started, error = time.monotonic(), None
        try:
            return await call
        except (DeadlineExceededError, TimeoutError):
            error = "timeout"
            raise
        except BaseException:
            error = "error"
            raise
        finally:
            self._observer.request_done(self.name, method, time.monotonic() - started, error)

    async def event(
        self,
        event: int,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        unanswered: list[PluginConnection] | None = None,
    ) -> M | None:
        """Relay one lifecycle event if subscribed; None if not subscribed or now closed.

        Fatal errors close the plugin and return None; other errors raise PluginError. A
        timeout is handled by the plugin's :data:`~nri.adaptation.TimeoutPolicy`; the plugin
        is then added to ``unanswered``, if given.
        """
        if not self.subscribed(event) or self._closed:
            return None
        try:
            reply = await self._event(event, method, request, response_type)
        except (DeadlineExceededError, TimeoutError) as exc:
            if unanswered is not None:
                unanswered.append(self)
            self._timed_out(method, request, exc)
            return None
        self._timeouts_in_a_row = 0
        return reply

    def _timed_out(self, method: str, request: Message, exc: Exception) -> None:
        self._timeouts_in_a_row += 1
        policy, count = self.timeout_policy, self._timeouts_in_a_row
        what = f"{method} of {request_subject(request)}"
        if policy == "close" or count >= self.max_consecutive_timeouts:
            if policy != "close":
                logger.error(
                    "closing plugin %s: %d timeouts in a row, the last handling %s (%s)",
                    self.name,
                    count,
                    what,
                    exc,
                )
            else:
                logger.error("closing plugin %s, timed out handling %s: %s", self.name, what, exc)
            self.close()
            if policy != "fail":
                return
        elif policy == "skip":
            logger.warning(
                "plugin %s timed out handling %s (%d in a row, closed at %d): "
                "going on without its answer",
                self.name,
                what,
                count,
                self.max_consecutive_timeouts,
            )
            return
        else:
            logger.error(
                "plugin %s timed out handling %s (%d in a row, closed at %d): failing the event",
                self.name,
                what,
                count,
                self.max_consecutive_timeouts,
            )
        raise PluginTimeoutError(
            f"plugin {self.name} timed out handling {what} after {self.request_timeout:g}s"
        ) from exc

    async def _event(
        self, event: int, method: str, request: Message, response_type: type[M]
    ) -> M | None:
        try:
            if self.state_change_only and method in STATE_CHANGE_EVENTS:
                await self._state_change(event, method, request)
                return response_type()
            try:
                return await self._call(method, request, response_type)
            except StatusError as exc:
                if exc.code != Code.UNIMPLEMENTED or method not in STATE_CHANGE_EVENTS:
                    raise
                logger.warning(
                    "plugin %s does not implement %s; using StateChange for its events from now on",
                    self.name,
                    method,
                )
                self.state_change_only = True
                await self._state_change(event, method, request)
                return response_type()
        except (DeadlineExceededError, TimeoutError):
            raise
        except Exception as exc:
            if is_fatal_error(exc):
                logger.error(
                    "closing plugin %s, failed to handle %s request: %s", self.name, method, exc
                )
                self.close()
                return None
            raise PluginError(f"plugin {self.name} failed to handle {method}: {exc}") from exc

    async def _state_change(self, event: int, method: str, request: Message) -> None:
        if method not in self._warned_state_change:
            self._warned_state_change.add(method)
            logger.warning(
                "plugin %s uses the deprecated StateChange for %s events", self.name, method
            )
        change = pb.StateChangeEvent(event=event)  # type: ignore[arg-type]
        req: Any = request
        if req.HasField("pod"):
            change.pod.CopyFrom(req.pod)
        if "container" in req.DESCRIPTOR.fields_by_name and req.HasField("container"):
            change.container.CopyFrom(req.container)
        await self._call("StateChange", change, pb.Empty)

    async def validate(
        self, request: pb.ValidateContainerAdjustmentRequest
    ) -> ValidationError | None:
        """Ask the plugin to validate; return the error if it rejects or fails.

        A validator that times out always fails the validation (it is never skipped); with
        the ``skip`` or ``fail`` timeout policy it stays, up to the timeouts in a row."""
        if not self.subscribed(pb.VALIDATE_CONTAINER_ADJUSTMENT) or self._closed:
            return None
        try:
            reply = await self._call(
                "ValidateContainerAdjustment", request, pb.ValidateContainerAdjustmentResponse
            )
        except Exception as exc:
            timed_out = isinstance(exc, DeadlineExceededError | TimeoutError)
            if timed_out:
                self._timeouts_in_a_row += 1
            kept = (
                timed_out
                and self.timeout_policy != "close"
                and self._timeouts_in_a_row < self.max_consecutive_timeouts
            )
            if kept:
                logger.error(
                    "validator plugin %s timed out validating %s (%d in a row, closed at %d)",
                    self.name,
                    request_subject(request),
                    self._timeouts_in_a_row,
                    self.max_consecutive_timeouts,
                )
            elif is_fatal_error(exc):
                logger.error("closing plugin %s, failed to validate request: %s", self.name, exc)
                self.close()
            if self._observer is not None:
                self._observer.validation_refused(self.name)
            return ValidationError(f"validator plugin {self.name} failed: {exc}", plugin=self.name)
        self._timeouts_in_a_row = 0
        refusal = validation_result(self.name, reply)
        if refusal is not None and self._observer is not None:
            self._observer.validation_refused(self.name)
        return refusal

    # -- shutdown ----------------------------------------------------------------------------

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 (sent on the wire)
        """Tell a configured plugin that the runtime is going away (NRI Shutdown).

        Best effort: waits at most ``timeout`` seconds for the answer and never raises; the
        connection stays open (the plugin usually closes it).
        """
        registered = self._registered
        if self._closed or timeout <= 0 or not self.events:
            return
        if not registered.done() or registered.exception() is not None:
            return
        try:
            await self._call("Shutdown", pb.Empty(), pb.Empty, timeout=timeout)
        except Exception as exc:
            logger.info("plugin %s did not answer Shutdown: %s", self.name, exc)

    def _mux_closed(self, reason: Exception | None) -> None:
        if not self._closed:
            logger.info("connection to plugin %s closed (%s)", self.name, reason or "by peer")
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent); the adaptation is told once."""
        self._closed = True
        self._set_registered(PluginError("connection closed"))
        if not self._synchronized.done():
            self._synchronized.set_result(False)
        if self._client is not None:
            self._client.close()
        if self._mux is not None:
            self._mux.close()
        if not self._close_reported:
            self._close_reported = True
            self._on_close(self)

    async def stop(self) -> None:
        """Close, and stop and reap the process of a launched plugin: SIGTERM, then SIGKILL
        if it has not exited ``stop_grace`` seconds later (at once if that is 0).

        Concurrent calls share one stop; it goes on if the caller is cancelled."""
        self.close()
        if self.process is None:
            return
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop_process(self.process))
        await asyncio.shield(self._stop_task)

    async def _stop_process(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None and self.stop_grace > 0:
            signal_process(process, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_grace)
            except TimeoutError:
                logger.warning(
                    "plugin %s did not exit within %gs of SIGTERM; killing it",
                    self.qualified_name,
                    self.stop_grace,
                )
        signal_process(process, signal.SIGKILL)
        await process.wait()

    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed."""
        if self._mux is not None:
            await self._mux.wait_closed()
