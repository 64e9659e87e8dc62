"""Relaying lifecycle events to the plugins, and merging their replies.

The event half of :class:`~nri.adaptation.Adaptation` (which derives from
:class:`EventRelays`): upstream's ``RunPodSandbox`` ... ``RemoveContainer`` of
``pkg/adaptation/adaptation.go``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from nri.adaptation._config import Config
from nri.adaptation._owners import ConflictError, go_quote
from nri.adaptation._plugin import PluginConnection
from nri.adaptation._result import CreateResult, StopResult, UpdateResult
from nri.adaptation._synclock import EventGate
from nri.adaptation._validator import DefaultValidator, RequiredPluginError, missing_plugins
from nri.api import api_pb2 as pb

if TYPE_CHECKING:
    from nri.metrics._observer import AdaptationObserver

__all__ = ["EventRelays", "ResultHook"]

logger = logging.getLogger("nri.adaptation")

ResultHook = Callable[[str, pb.OwningPlugins], None]
"""Called with the event name and the merged field owners (which plugin set what) after
the replies to CreateContainer, UpdateContainer or StopContainer were merged."""

M = TypeVar("M", bound=Message)

CREATE_CONTAINER = "CreateContainer"
UPDATE_CONTAINER = "UpdateContainer"
STOP_CONTAINER = "StopContainer"


class EventRelays:
    """The lifecycle coroutines a runtime calls; each relays its event to the subscribed
    plugins in invocation order, under the event gate."""

    config: Config
    _gate: EventGate
    _plugins: list[PluginConnection]
    _default_validator: DefaultValidator | None
    _metrics: AdaptationObserver | None
    _on_result: ResultHook | None

    async def _relay(self, event: int, method: str, request: Message, rtype: type[M]) -> None:
        async with self._gate.event(_pod_of(request)):
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
        field, ValidationError if a validator rejects the result and RequiredPluginError if
        a plugin of ``Config.required_plugins`` is missing or was dropped meanwhile.
        """
        async with self._gate.event(request.pod.id):
            plugins = list(self._plugins)
            self._check_required(request, plugins)
            validating = self._default_validator is not None or any(
                p.subscribed(pb.VALIDATE_CONTAINER_ADJUSTMENT) for p in plugins
            )
            # The original container is only needed for a validation request.
            result = CreateResult(request, keep_original=validating)
            unanswered: list[PluginConnection] = []
            for plugin in plugins:
                reply = await plugin.event(
                    pb.CREATE_CONTAINER,
                    CREATE_CONTAINER,
                    request,
                    pb.CreateContainerResponse,
                    unanswered=unanswered,
                )
                if reply is not None:
                    self._apply(CREATE_CONTAINER, result, plugin.name, reply)
            if self.config.required_plugins:
                # Dropped meanwhile, or its answer skipped after a timeout: not there.
                answered = [p for p in plugins if not p.closed and p not in unanswered]
                self._check_required(request, answered, "dropped or did not answer in time")
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
        async with self._gate.event(request.pod.id):
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
        async with self._gate.event(request.pod.id):
            result = StopResult(request)
            for plugin in list(self._plugins):
                reply = await plugin.event(
                    pb.STOP_CONTAINER, STOP_CONTAINER, request, pb.StopContainerResponse
                )
                if reply is not None:
                    self._apply(STOP_CONTAINER, result, plugin.name, reply)
            self._report(STOP_CONTAINER, result)
            return result.response()

    def _check_required(
        self,
        request: pb.CreateContainerRequest,
        plugins: Sequence[PluginConnection],
        why: str = "not registered",
    ) -> None:
        required = self.config.required_plugins
        if not required:
            return
        validator = self.config.default_validator
        missing = missing_plugins(
            required,
            [(p.idx, p.base) for p in plugins],
            request.pod,
            request.container.name,
            tolerate_annotation=validator.tolerate_missing_annotation if validator else "",
        )
        if missing:
            what = "required plugin" if len(missing) == 1 else "required plugins"
            raise RequiredPluginError(
                f"cannot create container {request.container.id} "
                f"(pod {request.pod.namespace}/{request.pod.name}): {what} "
                f"{', '.join(go_quote(m) for m in missing)} {why}",
                missing=missing,
            )

    def _apply(
        self, event: str, result: CreateResult | UpdateResult | StopResult, plugin: str, reply: Any
    ) -> None:
        try:
            result.apply(plugin, reply)
        except ConflictError:
            if self._metrics is not None:
                self._metrics.conflict(plugin, event)
            raise
        if self._metrics is not None and event != STOP_CONTAINER and reply.evict:
            self._metrics.evictions_requested(plugin, len(reply.evict))

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


def _pod_of(request: Message) -> str:
    """The id of the pod an event request is about."""
    req: Any = request
    pod_id: str = req.pod.id
    if not pod_id and "container" in req.DESCRIPTOR.fields_by_name:
        pod_id = req.container.pod_sandbox_id
    return pod_id
