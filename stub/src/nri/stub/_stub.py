"""The stub: connects a :class:`Plugin` to the runtime and serves the NRI Plugin service."""

from __future__ import annotations

import asyncio
import inspect
import logging
import operator
import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from nri.api import (
    DEFAULT_REGISTRATION_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SOCKET_PATH,
    DEVEL_VERSION,
    NRI_VERSION,
    UNKNOWN_VERSION,
    EventMask,
    Update,
    format_event_mask,
    infer_version_from_runtime,
    parse_event_list,
    parse_plugin_name,
    validate_plugin_index,
    validate_plugin_name,
)
from nri.api import api_pb2 as pb
from nri.net import (
    PLUGIN_IDX_ENV,
    PLUGIN_NAME_ENV,
    PLUGIN_SERVICE_CONN,
    RUNTIME_SERVICE_CONN,
    Mux,
    socket_from_env,
)
from nri.stub._errors import (
    EXPECTED_ERRORS,
    RegistrationRefusedError,
    RuntimeGoneError,
    StubError,
)
from nri.stub._plugin import (
    EVENT_HANDLERS,
    HANDLER_BY_EVENT,
    STATE_CHANGE_EVENTS,
    EventHandler,
    Plugin,
    Subscription,
    implemented_events,
    overrides,
    sort_changes,
)
from nri.ttrpc import Client, ClosedError, Code, Interceptor, Method, Server, StatusError

if TYPE_CHECKING:
    from nri.metrics._observer import StubObserver

__all__ = ["RegistrationRefusedError", "RuntimeGoneError", "Stub", "StubError", "resolve_identity"]

PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"
VALID_EVENTS = 0x3FFF
RUNTIME_VERSION_NOT_KNOWN = "unknown"
""":attr:`Stub.runtime_nri_version` before the runtime configured the plugin, or when its
NRI version is neither sent nor inferable (as upstream's stub says)."""


# The stub logs every failed handler itself (once, see Stub._failed); the ttRPC server's
# own line for the same failure would repeat it.
_TTRPC_LOG = logging.getLogger("nri.stub.ttrpc")
if _TTRPC_LOG.level == logging.NOTSET:
    _TTRPC_LOG.setLevel(logging.WARNING)


def resolve_identity(
    name: str | None,
    idx: str | None,
    environ: dict[str, str] | None = None,
    *,
    default_name: str | None = None,
) -> tuple[str, str]:
    """Work out the plugin's (name, idx) as upstream's stub does.

    Order: the arguments, then ``NRI_PLUGIN_NAME``/``NRI_PLUGIN_IDX``, then the program name
    parsed as ``NN-name``. With only an index known the name is ``default_name`` (a plugin
    command passes the plugin's own name), else the program name as upstream does.

    Stricter than upstream where upstream silently does something surprising: an empty
    ``name`` or ``idx`` argument, and a ``name`` argument that itself starts with an index
    (``10-foo``, which would register as ``10-10-foo``), are errors. Raises StubError naming
    what is wrong.
    """
    env = os.environ if environ is None else environ
    try:
        if name is not None:
            validate_plugin_name(name)
            _refuse_indexed_name(name, idx or env.get(PLUGIN_IDX_ENV) or None)
        if idx is not None:
            validate_plugin_index(idx)
    except ValueError as exc:
        raise StubError(f"invalid plugin identity: {exc}") from exc
    name = name or env.get(PLUGIN_NAME_ENV) or None
    idx = idx or env.get(PLUGIN_IDX_ENV) or None
    program = _program_name()
    try:
        if idx is None and name is None and default_name is not None:
            try:
                idx, name = parse_plugin_name(program)
            except ValueError:
                raise StubError(
                    f"plugin {default_name!r} has no index: pass --idx NN or set {PLUGIN_IDX_ENV}"
                ) from None
        if idx is None:
            if name is not None:
                raise StubError(
                    f"plugin {name!r} has no index: pass --idx NN or set {PLUGIN_IDX_ENV}"
                )
            try:
                idx, name = parse_plugin_name(program)
            except ValueError as exc:
                raise StubError(
                    f"no plugin name and index given and the program name {program!r} is "
                    f"not of the form NN-name ({exc}); pass --name and --idx or set "
                    f"{PLUGIN_NAME_ENV} and {PLUGIN_IDX_ENV}"
                ) from exc
        elif name is None:
            name = default_name or program
        validate_plugin_index(idx)
        validate_plugin_name(name)
    except ValueError as exc:
        raise StubError(f"invalid plugin identity: {exc}") from exc
    return name, idx


def _refuse_indexed_name(name: str, idx: str | None) -> None:
    try:
        prefix, rest = parse_plugin_name(name)
    except ValueError:
        return
    if idx is None:
        hint = f"give the name {rest!r} and the index {prefix!r} separately"
    else:
        hint = f"it would register as {idx}-{name}; give the name {rest!r} alone"
    raise ValueError(f"plugin name {name!r} starts with an index ({hint})")


def _program_name() -> str:
    """The file name of the running program (what ``Path(sys.argv[0]).name`` gives)."""
    if not sys.argv or not sys.argv[0]:
        return ""
    return os.path.basename(sys.argv[0].rstrip("/"))


class Stub:
    """Connect a plugin to an NRI runtime, register it and dispatch its events.

    The connection is the pre-connected socket the runtime hands over through
    ``NRI_PLUGIN_SOCKET`` when it launched the plugin, otherwise ``socket_path``. With
    ``reconnect`` the stub re-dials with backoff after the runtime goes away, registering and
    synchronizing again (and at start waits for a socket that is missing or refuses
    connections, and retries a registration the runtime refused, e.g. while another
    connection still holds the plugin's name); without it :meth:`run` raises
    :class:`RuntimeGoneError` (:class:`RegistrationRefusedError`). A Shutdown request from
    the runtime ends :meth:`run` normally, ``reconnect`` or not. The identity is
    worked out by :func:`resolve_identity` (``default_name``: the plugin's own name).
    ``server_interceptors`` and ``client_interceptors`` (:data:`nri.ttrpc.Interceptor`) run
    around the runtime's requests and the stub's own calls, e.g. to continue the runtime's
    trace with :func:`nri.ttrpc.server_trace_interceptor`. ``observer``
    (:class:`nri.metrics.PluginMetrics`) is told of handler latencies and failures, connects
    and reconnects.

    After the runtime configured the plugin, :attr:`runtime_name`, :attr:`runtime_version`
    and :attr:`runtime_nri_version` say what it is; :attr:`plugin_nri_version` is the NRI
    version this stub speaks. A plugin's handlers reach them as ``self.stub.<name>``.
    """

    def __init__(
        self,
        plugin: Plugin,
        *,
        name: str | None = None,
        idx: str | None = None,
        socket_path: str | os.PathLike[str] | None = None,
        config: str | None = None,
        reconnect: bool = False,
        reconnect_delay: float = 0.5,
        reconnect_max_delay: float = 10.0,
        on_close: Callable[[], None] | None = None,
        environ: dict[str, str] | None = None,
        default_name: str | None = None,
        server_interceptors: Sequence[Interceptor] = (),
        client_interceptors: Sequence[Interceptor] = (),
        observer: StubObserver | None = None,
    ) -> None:
        # Told of handler latencies, connects and reconnects (nri.metrics), if given.
        self._observer = observer
        self._server_interceptors = tuple(server_interceptors)
        self._client_interceptors = tuple(client_interceptors)
        self.name, self.idx = resolve_identity(name, idx, environ, default_name=default_name)
        self.plugin = plugin
        self.socket_path = str(socket_path or DEFAULT_SOCKET_PATH)
        self.config = config
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.on_close = on_close
        self._environ = environ
        self.registration_timeout = DEFAULT_REGISTRATION_TIMEOUT
        self.request_timeout = DEFAULT_REQUEST_TIMEOUT
        self.runtime_name = ""
        """The runtime's name from its ConfigureRequest (empty until configured)."""
        self.runtime_version = ""
        """The runtime's version from its ConfigureRequest (empty until configured)."""
        self._runtime_nri_version = RUNTIME_VERSION_NOT_KNOWN
        self.implemented = implemented_events(plugin)
        self.events = self._subscription(plugin.events)
        if not self.implemented:
            raise StubError(f"plugin {type(plugin).__name__} overrides no event handler")
        self.log = logging.LoggerAdapter(logging.getLogger("nri.stub"), {"plugin": self.full_name})
        self._mux: Mux | None = None
        self._client: Client | None = None
        self._server: Server | None = None
        self._configured: asyncio.Future[None] | None = None
        self._sync_pods: list[pb.PodSandbox] = []
        self._sync_containers: list[pb.Container] = []
        self._stopping = False
        self._started = False
        self._refused = False  # the last registration was refused: retries log less
        self._connection_count = 0
        plugin.stub = self

    @property
    def full_name(self) -> str:
        """The indexed name, ``NN-name``."""
        return f"{self.idx}-{self.name}"

    @property
    def runtime_nri_version(self) -> str:
        """The NRI version of the runtime, as its ConfigureRequest says (``NRI_version``).

        ``"unknown"`` until the runtime configured the plugin. For a runtime that sends none
        (or :data:`~nri.api.UNKNOWN_VERSION`, ``(devel)``) it is inferred from the runtime's
        name and version where those are known (containerd and CRI-O releases), else it is
        what was sent, or ``"unknown"`` for nothing; as upstream's ``RuntimeNRIVersion``.
        """
        return self._runtime_nri_version

    @property
    def plugin_nri_version(self) -> str:
        """The NRI version this stub implements (:data:`nri.api.NRI_VERSION`), which it
        announces when registering."""
        return NRI_VERSION

    @property
    def connected(self) -> bool:
        """Whether a connection to the runtime is up."""
        return self._mux is not None and not self._mux.is_closed

    # -- subscription ------------------------------------------------------------------------

    def _subscription(self, wanted: Subscription) -> EventMask:
        if wanted is None:
            return self.implemented
        mask = parse_event_list(wanted) if isinstance(wanted, str) else EventMask(int(wanted))
        if int(mask) == 0:
            return self.implemented
        if int(mask) & ~VALID_EVENTS:
            raise StubError(f"invalid event mask 0x{int(mask):x}")
        extra = int(mask) & ~int(self.implemented)
        if extra:
            raise StubError(
                f"plugin subscribes to events it has no handler for: "
                f"{format_event_mask(EventMask(extra))} (0x{extra:x})"
            )
        return mask

    # -- connection --------------------------------------------------------------------------

    async def _connect(self) -> Mux:
        environ = os.environ if self._environ is None else self._environ
        sock = socket_from_env(environ) if self._connection_count == 0 else None
        if sock is not None:
            self.log.info("using the runtime connection handed over in the environment")
            self.reconnect = False
            return await Mux.from_socket(sock)
        _check_socket(self.socket_path)
        return await Mux.dial(self.socket_path)

    async def start(self) -> None:
        """Connect, register and wait until the runtime has configured the plugin."""
        loop = asyncio.get_running_loop()
        mux = await self._connect()
        self._connection_count += 1
        self._configured = loop.create_future()
        server = Server(
            logger=logging.getLogger("nri.stub.ttrpc"), interceptors=self._server_interceptors
        )
        server.register(PLUGIN_SERVICE, self._methods())
        client = Client(interceptors=self._client_interceptors)
        mux.open(PLUGIN_SERVICE_CONN, server.connection())
        mux.open(RUNTIME_SERVICE_CONN, client)
        mux.add_close_callback(self._connection_lost)
        self._mux, self._client, self._server = mux, client, server
        self._started = False
        level = logging.DEBUG if self._refused else logging.INFO
        self.log.log(level, "registering plugin %s", self.full_name)
        try:
            request = pb.RegisterPluginRequest(
                plugin_name=self.name, plugin_idx=self.idx, NRI_version=NRI_VERSION
            )
            await client.call(
                RUNTIME_SERVICE,
                "RegisterPlugin",
                request,
                pb.Empty,
                timeout=self.registration_timeout,
            )
            async with asyncio.timeout(self.registration_timeout):
                await self._configured
        except TimeoutError as exc:
            await self._close()
            raise StubError(
                f"runtime did not register and configure plugin {self.full_name} "
                f"within {self.registration_timeout:g}s"
            ) from exc
        except StatusError as exc:
            await self._close()
            raise RegistrationRefusedError(
                f"runtime refused plugin {self.full_name}: {exc.message}"
            ) from exc
        except Exception as exc:
            await self._close()
            raise StubError(f"failed to register plugin {self.full_name}: {exc}") from exc
        self._started = True
        self.log.info("plugin %s started", self.full_name)
        if self._observer is not None:
            self._observer.connected(self.full_name, True)

    async def run(self) -> None:
        """Serve the runtime until :meth:`stop`, a Shutdown request or connection loss.

        Raises RuntimeGoneError when the runtime goes away and ``reconnect`` is off.
        """
        delay = self.reconnect_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.start()
            except (StubError, OSError) as exc:
                self._refused = isinstance(exc, RegistrationRefusedError)
                # Before the first connection only a missing or refusing socket is waited
                # for: the runtime may not be up yet (a DaemonSet pod starting first).
                waiting = isinstance(exc, FileNotFoundError | ConnectionRefusedError)
                if not self.reconnect or self._stopping:
                    raise
                if self._connection_count == 0 and not waiting:
                    raise
                if isinstance(exc, RegistrationRefusedError):
                    self.log.warning("%s; retrying in %.1fs (attempt %d)", exc, delay, attempt)
                else:
                    self.log.warning(
                        "connecting to %s failed (%s); retrying in %.1fs (attempt %d)",
                        self.socket_path,
                        exc,
                        delay,
                        attempt,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
                continue
            delay, attempt, self._refused = self.reconnect_delay, 0, False
            assert self._mux is not None
            await self._mux.wait_closed()
            await self._close()
            if self._stopping:
                return
            if not self.reconnect:
                raise RuntimeGoneError(
                    f"connection to the runtime closed ({self._mux_reason()}): the runtime "
                    "went away"
                )
            self.log.warning("runtime went away; reconnecting to %s", self.socket_path)
            if self._observer is not None:
                self._observer.reconnect(self.full_name)

    def _mux_reason(self) -> str:
        reason = self._mux.close_reason if self._mux is not None else None
        return str(reason) if reason else "closed by peer"

    async def stop(self) -> None:
        """Close the connection to the runtime; :meth:`run` then returns."""
        self._stopping = True
        if self._mux is not None:
            self._mux.close()
            await self._mux.wait_closed()
        await self._close()

    async def _close(self) -> None:
        server, client = self._server, self._client
        if client is not None:
            client.close()
        if server is not None:
            await server.close(grace=0)
        if self._mux is not None:
            self._mux.close()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._configured is not None and not self._configured.done():
            self._configured.set_exception(ClosedError(f"connection closed: {exc}"))
            self._configured.exception()  # reported by start(); avoid "never retrieved"
        if not self._started:
            return  # registration did not complete: start() reports why, on one line
        self._started = False
        if self._observer is not None:
            self._observer.connected(self.full_name, False)
        if self._stopping:
            return
        self.log.info("connection to the runtime lost: %s", exc or "closed by peer")
        self._sync_pods, self._sync_containers = [], []
        for callback in (self.plugin.on_close, self.on_close):
            if callback is None:
                continue
            try:
                callback()
            except Exception:
                self.log.exception("on_close callback failed")

    # -- requests to the runtime -------------------------------------------------------------

    async def update_containers(
        self,
        updates: Iterable[Update | pb.ContainerUpdate],
        evictions: Iterable[pb.ContainerEviction] = (),
    ) -> list[pb.ContainerUpdate]:
        """Send unsolicited updates/evictions to the runtime; return the failed updates."""
        if self._client is None or not self.connected:
            raise RuntimeGoneError("not connected to the runtime")
        request = pb.UpdateContainersRequest(
            update=[u.message if isinstance(u, Update) else u for u in updates],
            evict=list(evictions),
        )
        reply = await self._client.call(
            RUNTIME_SERVICE, "UpdateContainers", request, pb.UpdateContainersResponse
        )
        return list(reply.failed)

    # -- the Plugin service ------------------------------------------------------------------

    def _methods(self) -> dict[str, Method[Any]]:
        methods: dict[str, Method[Any]] = {
            "Configure": Method(pb.ConfigureRequest, self._configure),
            "Synchronize": Method(pb.SynchronizeRequest, self._synchronize),
            "Shutdown": Method(pb.Empty, self._shutdown),
            "StateChange": Method(pb.StateChangeEvent, self._state_change),
            "ValidateContainerAdjustment": Method(
                pb.ValidateContainerAdjustmentRequest, self._validate
            ),
        }
        for spec in EVENT_HANDLERS:
            methods[spec.method] = Method(spec.request, self._event_method(spec))
        return methods

    async def _call(self, handler: str, what: str | Message, *args: Any) -> Any:
        """Run one plugin handler (sync or async), logging it when slower than the runtime
        waits. ``what`` names what it is about, or is the request to describe (only when
        something is logged)."""
        outcome = self._start(handler, what, args, _unchanged)
        if inspect.iscoroutine(outcome):
            return await outcome
        return outcome

    def _start(
        self,
        handler: str,
        what: str | Message,
        args: Sequence[Any],
        finish: Callable[[Any], Any],
    ) -> Any:
        """Call a plugin handler; return ``finish(result)`` right away for a plain result, or
        for an awaitable one a coroutine that returns it (see :meth:`_call`)."""
        started = time.monotonic()
        try:
            result = getattr(self.plugin, handler)(*args)
        except Exception as exc:
            if self._observer is not None:
                elapsed = time.monotonic() - started
                self._observer.handler_done(self.full_name, handler, elapsed, True)
            raise self._failed(handler, what, exc) from exc
        if inspect.isawaitable(result):
            return self._finish(handler, what, started, result, finish)
        self._check_duration(handler, what, started)
        return finish(result)

    async def _finish(
        self,
        handler: str,
        what: str | Message,
        started: float,
        result: Awaitable[Any],
        finish: Callable[[Any], Any],
    ) -> Any:
        try:
            value = await result
        except asyncio.CancelledError:
            self.log.warning(
                "%s for %s was cancelled after %.3fs (runtime request timeout %gs)",
                handler,
                _describe(what),
                time.monotonic() - started,
                self.request_timeout,
            )
            raise
        except Exception as exc:
            if self._observer is not None:
                elapsed = time.monotonic() - started
                self._observer.handler_done(self.full_name, handler, elapsed, True)
            raise self._failed(handler, what, exc) from exc
        self._check_duration(handler, what, started)
        return finish(value)

    def _failed(self, handler: str, what: str | Message, exc: Exception) -> StatusError:
        """Log a failed handler once; return the error that answers the request.

        Expected failures (:data:`EXPECTED_ERRORS`) get one line without traceback, any other
        exception its traceback. The answer carries the exception's text, as upstream's.
        """
        reason = _reason(exc)
        if isinstance(exc, EXPECTED_ERRORS):
            if handler != "configure":  # start() reports a refused configuration
                self.log.error("%s for %s failed: %s", handler, _describe(what), reason)
        else:
            self.log.error(
                "%s for %s raised %s: %s",
                handler,
                _describe(what),
                type(exc).__name__,
                reason,
                exc_info=exc,
            )
        if isinstance(exc, StatusError):
            return exc
        return StatusError(Code.UNKNOWN, reason)

    def _check_duration(self, handler: str, what: str | Message, started: float) -> None:
        elapsed = time.monotonic() - started
        if self._observer is not None:
            self._observer.handler_done(self.full_name, handler, elapsed, False)
        if elapsed > self.request_timeout:
            self.log.warning(
                "%s for %s took %.3fs, longer than the runtime's request timeout of %gs",
                handler,
                _describe(what),
                elapsed,
                self.request_timeout,
            )

    async def _configure(self, request: Message) -> Message:
        assert isinstance(request, pb.ConfigureRequest)
        self.runtime_name, self.runtime_version = request.runtime_name, request.runtime_version
        self._runtime_nri_version = self._nri_version_of(request)
        if request.registration_timeout > 0:
            self.registration_timeout = request.registration_timeout / 1000
        if request.request_timeout > 0:
            self.request_timeout = request.request_timeout / 1000
        self.log.info(
            "configuring for runtime %s %s (NRI %s, request timeout %gs)",
            request.runtime_name,
            request.runtime_version,
            self._runtime_nri_version,
            self.request_timeout,
        )
        config = request.config or self.config or ""
        try:
            if overrides(self.plugin, "configure"):
                wanted = await self._call(
                    "configure",
                    "the runtime",
                    config,
                    request.runtime_name,
                    request.runtime_version,
                )
                self.events = self._subscription(wanted if wanted is not None else self.events)
        except Exception as exc:
            if self._configured is not None and not self._configured.done():
                self._configured.set_exception(StubError(f"configuration failed: {_reason(exc)}"))
            raise
        self.log.info("subscribing to %s", format_event_mask(self.events))
        if self._configured is not None and not self._configured.done():
            self._configured.set_result(None)
        return pb.ConfigureResponse(events=int(self.events))

    def _nri_version_of(self, request: pb.ConfigureRequest) -> str:
        """The runtime's NRI version: as sent, else inferred as upstream's stub does."""
        sent = request.NRI_version
        if sent not in ("", DEVEL_VERSION, UNKNOWN_VERSION):
            return sent
        try:
            return infer_version_from_runtime(request.runtime_name, request.runtime_version)
        except ValueError as exc:
            self.log.debug("runtime NRI version not known: %s", exc)
            return sent or RUNTIME_VERSION_NOT_KNOWN

    async def _synchronize(self, request: Message) -> Message:
        assert isinstance(request, pb.SynchronizeRequest)
        if not overrides(self.plugin, "synchronize"):
            return pb.SynchronizeResponse(more=request.more)
        self._sync_pods.extend(request.pods)
        self._sync_containers.extend(request.containers)
        if request.more:
            return pb.SynchronizeResponse(more=True)
        pods, containers = self._sync_pods, self._sync_containers
        self._sync_pods, self._sync_containers = [], []
        result = await self._call(
            "synchronize", f"{len(pods)} pods, {len(containers)} containers", pods, containers
        )
        _, updates, _ = sort_changes("synchronize", result, frozenset({"update"}))
        return pb.SynchronizeResponse(update=updates)

    async def _shutdown(self, request: Message) -> Message:
        self.log.info("runtime asked plugin %s to shut down", self.full_name)
        # The runtime goes away on purpose: end, without reconnecting, even when the handler
        # fails or the runtime closes the connection before it is done.
        self._stopping = True
        try:
            if overrides(self.plugin, "shutdown"):
                await self._call("shutdown", "the runtime")
        finally:
            asyncio.get_running_loop().call_soon(self._close_soon)
        return pb.Empty()

    def _close_soon(self) -> None:
        if self._mux is not None:
            self._mux.close()

    def _event_method(self, spec: EventHandler) -> Callable[[Message], Any]:
        def respond(result: Any) -> Message:
            adjust, updates, evictions = sort_changes(spec.handler, result, spec.changes)
            response = spec.response()
            if adjust is not None:
                response.adjust.CopyFrom(adjust)  # type: ignore[attr-defined]
            if updates:
                response.update.extend(updates)  # type: ignore[attr-defined]
            if evictions:
                response.evict.extend(evictions)  # type: ignore[attr-defined]
            return response

        fields = operator.attrgetter(*spec.arguments)
        single = len(spec.arguments) == 1

        # The response of a plain (not async) plugin handler, which the ttRPC server then
        # sends right away without a task; for an async one a coroutine returning it.
        def handle(request: Message) -> Any:
            if not overrides(self.plugin, spec.handler):
                return spec.response()
            args = fields(request)
            return self._start(spec.handler, request, (args,) if single else args, respond)

        return handle

    async def _state_change(self, request: Message) -> Message:
        assert isinstance(request, pb.StateChangeEvent)
        if request.event not in STATE_CHANGE_EVENTS:
            return pb.Empty()
        spec = HANDLER_BY_EVENT[request.event]
        if not overrides(self.plugin, spec.handler):
            return pb.Empty()
        args = [getattr(request, field) for field in spec.arguments]
        result = await self._call(spec.handler, request, *args)
        sort_changes(spec.handler, result, frozenset())
        return pb.Empty()

    async def _validate(self, request: Message) -> Message:
        assert isinstance(request, pb.ValidateContainerAdjustmentRequest)
        if not overrides(self.plugin, "validate_container_adjustment"):
            return pb.ValidateContainerAdjustmentResponse()
        try:
            await self._call("validate_container_adjustment", request, request)
        except Exception as exc:
            return pb.ValidateContainerAdjustmentResponse(reject=True, reason=_reason(exc))
        return pb.ValidateContainerAdjustmentResponse()


def _unchanged(result: Any) -> Any:
    return result


def _reason(exc: BaseException) -> str:
    """The text a failed request is answered with."""
    if isinstance(exc, StatusError):
        return exc.message
    return str(exc) or type(exc).__name__


def _check_socket(path: str) -> None:
    """Raise StubError when something other than a socket is at ``path``; a missing path is
    left for the connect to report."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISSOCK(mode):
        return
    kind = "a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode) else None
    raise StubError(f"{path} is not a socket" + (f" (it is {kind})" if kind else ""))


def _describe(request: str | Message) -> str:
    """Name the pod/container a request is about, for log messages."""
    if isinstance(request, str):
        return request
    pod = getattr(request, "pod", None)
    container = getattr(request, "container", None)
    if container is not None and container.id:
        where = f"{pod.namespace}/{pod.name}/" if pod is not None and pod.id else ""
        return f"container {where}{container.name or container.id} ({container.id[:12]})"
    if pod is not None and pod.id:
        return f"pod {pod.namespace}/{pod.name}"
    return "the runtime"
