"""The plugin base class: one overridable method per request of the NRI Plugin service."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from google.protobuf.message import Message

from nri.api import Adjustment, EventMask, Update
from nri.api import api_pb2 as pb

Change: TypeAlias = (
    Adjustment | Update | pb.ContainerAdjustment | pb.ContainerUpdate | pb.ContainerEviction
)
"""One change a handler asks for: an adjustment of the container being created, an update of
a container, or an eviction."""

Changes: TypeAlias = Change | Iterable[Change] | None
"""What a lifecycle handler returns: nothing (no change), one change, or several."""

Subscription: TypeAlias = EventMask | int | str | None
"""What ``configure`` may return: an event mask, an event list such as ``"createcontainer"``,
or None to keep the subscription derived from the overridden handlers."""


class PluginHost(Protocol):
    """What a plugin sees of the :class:`~nri.stub.Stub` serving it (``Plugin.stub``)."""

    @property
    def full_name(self) -> str:
        """The plugin's indexed name, ``NN-name``."""
        ...

    @property
    def runtime_name(self) -> str:
        """The runtime's name (empty until the runtime configured the plugin)."""
        ...

    @property
    def runtime_version(self) -> str:
        """The runtime's version (empty until the runtime configured the plugin)."""
        ...

    @property
    def runtime_nri_version(self) -> str:
        """The runtime's NRI version, ``"unknown"`` until configured or when not known."""
        ...

    @property
    def plugin_nri_version(self) -> str:
        """The NRI version the stub implements (:data:`nri.api.NRI_VERSION`)."""
        ...

    async def update_containers(
        self,
        updates: Iterable[Update | pb.ContainerUpdate],
        evictions: Iterable[pb.ContainerEviction] = (),
    ) -> list[pb.ContainerUpdate]:
        """Send unsolicited updates and evictions; return the updates that failed."""
        ...


class Plugin:
    """Base class of an NRI plugin.

    Override only the handlers the plugin needs; the stub subscribes to exactly those events
    (unless :attr:`events` or :meth:`configure` says otherwise). Handlers may be plain ``def``
    (run directly on the event loop: keep them quick) or ``async def``. Lifecycle handlers
    return :data:`Changes`: ``None`` for no change, or an :class:`~nri.api.Adjustment`
    (``create_container`` only), :class:`~nri.api.Update` objects for containers, and
    ``ContainerEviction`` messages, alone or in any iterable. Raising an exception fails that
    one request with the exception's text; the plugin keeps serving. Raise
    :class:`~nri.stub.RequestError` or a ValueError for an expected failure (a bad
    annotation): it is logged on one line; anything else is logged with its traceback.
    """

    events: Subscription = None
    """Explicit subscription (e.g. from the plugin's config); None derives it from overrides."""

    stub: PluginHost | None = None
    """The :class:`~nri.stub.Stub` serving this plugin, set when the stub is created."""

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the plugin's full name."""
        name = self.stub.full_name if self.stub is not None else type(self).__name__
        return logging.LoggerAdapter(logging.getLogger("nri.plugin"), {"plugin": name})

    async def update_containers(
        self,
        updates: Iterable[Update | pb.ContainerUpdate],
        evictions: Iterable[pb.ContainerEviction] = (),
    ) -> list[pb.ContainerUpdate]:
        """Ask the runtime for unsolicited container updates; return the updates that failed."""
        if self.stub is None:
            raise RuntimeError("plugin is not attached to a stub; create a Stub for it first")
        return await self.stub.update_containers(updates, evictions)

    def on_close(self) -> None:
        """Called when the connection to the runtime is lost (before any reconnection)."""

    # -- requests without an event bit -------------------------------------------------------

    def configure(
        self, config: str, runtime_name: str, runtime_version: str
    ) -> Subscription | Awaitable[Subscription]:
        """Receive the plugin's configuration (raw text, possibly empty) and the runtime's
        identity; may return a narrower subscription."""
        return None

    def synchronize(
        self, pods: Sequence[pb.PodSandbox], containers: Sequence[pb.Container]
    ) -> Changes | Awaitable[Changes]:
        """Receive every existing pod and container after registration; may return updates."""
        return None

    def shutdown(self) -> Awaitable[None] | None:
        """The runtime asks the plugin to shut down."""
        return None

    # -- pod sandbox events ------------------------------------------------------------------

    def run_pod_sandbox(self, pod: pb.PodSandbox) -> Awaitable[None] | None:
        """A pod sandbox is being started."""
        return None

    def update_pod_sandbox(
        self,
        pod: pb.PodSandbox,
        overhead_resources: pb.LinuxResources,
        resources: pb.LinuxResources,
    ) -> Awaitable[None] | None:
        """A pod sandbox's resources are being updated."""
        return None

    def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> Awaitable[None] | None:
        """A pod sandbox's resources were updated."""
        return None

    def stop_pod_sandbox(self, pod: pb.PodSandbox) -> Awaitable[None] | None:
        """A pod sandbox is being stopped."""
        return None

    def remove_pod_sandbox(self, pod: pb.PodSandbox) -> Awaitable[None] | None:
        """A pod sandbox is being removed."""
        return None

    # -- container events --------------------------------------------------------------------

    def create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Changes | Awaitable[Changes]:
        """A container is being created: may adjust it, update others, evict others."""
        return None

    def post_create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Awaitable[None] | None:
        """A container was created."""
        return None

    def start_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Awaitable[None] | None:
        """A container is being started."""
        return None

    def post_start_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Awaitable[None] | None:
        """A container was started."""
        return None

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> Changes | Awaitable[Changes]:
        """A container's resources are being updated: may return updates and evictions."""
        return None

    def post_update_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Awaitable[None] | None:
        """A container's resources were updated."""
        return None

    def stop_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Changes | Awaitable[Changes]:
        """A container is being stopped: may return updates of other containers."""
        return None

    def remove_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Awaitable[None] | None:
        """A container is being removed."""
        return None

    def validate_container_adjustment(
        self, request: pb.ValidateContainerAdjustmentRequest
    ) -> Awaitable[None] | None:
        """Check the merged adjustment of a container being created; raise to reject it."""
        return None


@dataclass(frozen=True, slots=True)
class EventHandler:
    """How one Plugin-service method maps onto a handler of :class:`Plugin`."""

    method: str
    """ttRPC method name in the Plugin service."""
    handler: str
    """Name of the :class:`Plugin` method."""
    event: int
    """The ``Event`` enum value (its subscription bit is ``1 << (event - 1)``)."""
    request: type[Message]
    response: type[Message]
    arguments: tuple[str, ...]
    """Fields of the request passed to the handler, in order."""
    changes: frozenset[str]
    """Fields of the response the handler may fill: adjust, update, evict."""


def _handler(
    method: str,
    handler: str,
    event: int,
    arguments: tuple[str, ...] = ("pod", "container"),
    changes: Iterable[str] = (),
) -> EventHandler:
    request = getattr(pb, f"{method}Request")
    response = getattr(pb, f"{method}Response")
    return EventHandler(method, handler, event, request, response, arguments, frozenset(changes))


EVENT_HANDLERS: tuple[EventHandler, ...] = (
    _handler("RunPodSandbox", "run_pod_sandbox", pb.RUN_POD_SANDBOX, ("pod",)),
    _handler(
        "UpdatePodSandbox",
        "update_pod_sandbox",
        pb.UPDATE_POD_SANDBOX,
        ("pod", "overhead_linux_resources", "linux_resources"),
    ),
    _handler(
        "PostUpdatePodSandbox", "post_update_pod_sandbox", pb.POST_UPDATE_POD_SANDBOX, ("pod",)
    ),
    _handler("StopPodSandbox", "stop_pod_sandbox", pb.STOP_POD_SANDBOX, ("pod",)),
    _handler("RemovePodSandbox", "remove_pod_sandbox", pb.REMOVE_POD_SANDBOX, ("pod",)),
    _handler(
        "CreateContainer",
        "create_container",
        pb.CREATE_CONTAINER,
        changes=("adjust", "update", "evict"),
    ),
    _handler("PostCreateContainer", "post_create_container", pb.POST_CREATE_CONTAINER),
    _handler("StartContainer", "start_container", pb.START_CONTAINER),
    _handler("PostStartContainer", "post_start_container", pb.POST_START_CONTAINER),
    _handler(
        "UpdateContainer",
        "update_container",
        pb.UPDATE_CONTAINER,
        ("pod", "container", "linux_resources"),
        changes=("update", "evict"),
    ),
    _handler("PostUpdateContainer", "post_update_container", pb.POST_UPDATE_CONTAINER),
    _handler("StopContainer", "stop_container", pb.STOP_CONTAINER, changes=("update",)),
    _handler("RemoveContainer", "remove_container", pb.REMOVE_CONTAINER),
)
"""Every event-carrying method of the Plugin service (ValidateContainerAdjustment aside)."""

HANDLER_BY_EVENT: dict[int, EventHandler] = {h.event: h for h in EVENT_HANDLERS}

STATE_CHANGE_EVENTS: frozenset[int] = frozenset(
    {
        pb.RUN_POD_SANDBOX,
        pb.POST_UPDATE_POD_SANDBOX,
        pb.STOP_POD_SANDBOX,
        pb.REMOVE_POD_SANDBOX,
        pb.POST_CREATE_CONTAINER,
        pb.START_CONTAINER,
        pb.POST_START_CONTAINER,
        pb.POST_UPDATE_CONTAINER,
        pb.REMOVE_CONTAINER,
    }
)
"""Events a StateChange request may deliver to a handler, as upstream's stub dispatches them;
a StateChange for any other event (UpdatePodSandbox, an unknown value) is answered and
ignored."""


def overrides(plugin: Plugin, handler: str) -> bool:
    """Whether ``plugin`` overrides the base class's ``handler``."""
    return getattr(type(plugin), handler, None) is not getattr(Plugin, handler)


def implemented_events(plugin: Plugin) -> EventMask:
    """The subscription mask derived from the handlers ``plugin`` overrides."""
    events = [h.event for h in EVENT_HANDLERS if overrides(plugin, h.handler)]
    if overrides(plugin, "validate_container_adjustment"):
        events.append(pb.VALIDATE_CONTAINER_ADJUSTMENT)
    mask = 0
    for event in events:
        mask |= 1 << (event - 1)
    return EventMask(mask)


def sort_changes(
    handler: str, result: Any, allowed: frozenset[str]
) -> tuple[pb.ContainerAdjustment | None, list[pb.ContainerUpdate], list[pb.ContainerEviction]]:
    """Split what a handler returned into (adjustment, updates, evictions).

    Raises TypeError naming the handler when it returns something it may not return.
    """
    adjust: pb.ContainerAdjustment | None = None
    updates: list[pb.ContainerUpdate] = []
    evictions: list[pb.ContainerEviction] = []
    if result is None:
        return adjust, updates, evictions
    items: Iterable[Any]
    if isinstance(result, Adjustment | Update | Message):
        items = (result,)
    elif isinstance(result, Iterable) and not isinstance(result, str | bytes):
        items = result
    else:
        raise TypeError(f"{handler}() returned {type(result).__name__}; {_expected(allowed)}")
    for entry in items:
        if entry is None:
            continue
        item = entry.message if isinstance(entry, Adjustment | Update) else entry
        if isinstance(item, pb.ContainerAdjustment) and "adjust" in allowed:
            if adjust is None:
                adjust = item
            else:
                adjust.MergeFrom(item)
        elif isinstance(item, pb.ContainerUpdate) and "update" in allowed:
            updates.append(item)
        elif isinstance(item, pb.ContainerEviction) and "evict" in allowed:
            evictions.append(item)
        else:
            raise TypeError(f"{handler}() returned a {type(item).__name__}; {_expected(allowed)}")
    return adjust, updates, evictions


_CHANGE_NAMES = {"adjust": "an Adjustment", "update": "Updates", "evict": "ContainerEvictions"}


def _expected(allowed: frozenset[str]) -> str:
    if not allowed:
        return "it may only return None"
    names = [_CHANGE_NAMES[c] for c in ("adjust", "update", "evict") if c in allowed]
    return "it may return None or " + ", ".join(names)
