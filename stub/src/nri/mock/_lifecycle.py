"""Pod and container lifecycle of the mock runtime: each call relays its events through the
adaptation, applies what the plugins returned to the stored specs and records it."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any

from nri.adaptation import Adaptation
from nri.api import api_pb2 as pb
from nri.mock._history import EventRecord, FieldChange, changes_of, owner_table
from nri.mock._profiles import CONTAINERD, RuntimeProfile
from nri.mock._state import (
    LifecycleError,
    MockContainer,
    MockPod,
    RuntimeState,
    UpdateError,
    require_state,
)
from nri.oci import SpecGenerator, linux_resources_from_oci

__all__ = ["Lifecycle"]

logger = logging.getLogger("nri.mock")


class Lifecycle(RuntimeState):
    """The lifecycle calls of :class:`~nri.mock.MockRuntime`, which sets :attr:`adaptation`."""

    adaptation: Adaptation

    def __init__(self, profile: str | RuntimeProfile = CONTAINERD) -> None:
        super().__init__(profile)
        self.history: list[EventRecord] = []
        """Every event so far, with who changed what."""
        self.act_on_evictions = False
        """Stop and remove the containers plugins evict; by default evictions are only
        recorded, as containerd and CRI-O ignore them (upstream's adaptation drops them)."""
        self._owners: pb.OwningPlugins | None = None

    def last(self, event: str) -> EventRecord:
        """The most recent record of ``event`` (``"CreateContainer"``, ...) in :attr:`history`."""
        for record in reversed(self.history):
            if record.event == event:
                return record
        raise LookupError(f"no {event} event recorded (events: {[r.event for r in self.history]})")

    # -- applying results --------------------------------------------------------------------

    def _on_result(self, event: str, owners: pb.OwningPlugins) -> None:
        self._owners = owners

    def _take_changes(self) -> list[FieldChange]:
        owners, self._owners = self._owners, None
        return [] if owners is None else changes_of(owners)

    def _apply_updates(
        self, updates: Iterable[pb.ContainerUpdate], record: EventRecord
    ) -> list[pb.ContainerUpdate]:
        failed: list[pb.ContainerUpdate] = []
        for update in updates:
            if not update.container_id:
                continue  # the placeholder UpdateContainer ends with when no plugin changed it
            ctr = self.containers.get(update.container_id)
            if ctr is None:
                record.failed_updates.append(update.container_id)
                if not update.ignore_failure:
                    failed.append(update)
                continue
            before = copy.deepcopy(ctr.spec)
            try:
                SpecGenerator(ctr.spec).update(update)
            except Exception as exc:
                ctr.spec = before
                record.failed_updates.append(update.container_id)
                logger.warning("update of container %s failed: %s", ctr.id, exc)
                if not update.ignore_failure:
                    failed.append(update)
                continue
            record.note_spec(ctr.id, before, ctr.spec)
        return failed

    async def _evict_one(self, cid: str, reason: str) -> None:
        record = EventRecord("EvictContainer", container_id=cid, evicted=[(cid, reason)])
        ctr = self.containers.get(cid)
        if ctr is None:
            record.error = f"no container {cid!r} to evict"
            self.history.append(record)
            return
        record.pod_id = ctr.pod_id
        self.history.append(record)
        try:
            if ctr.state != pb.CONTAINER_STOPPED:
                await self.stop_container(ctr)
            await self.remove_container(ctr)
        except Exception as exc:
            logger.warning("evicting container %s failed: %s", cid, exc)

    async def _recorded(self, record: EventRecord, call: Awaitable[Any]) -> Any:
        self.history.append(record)
        try:
            return await call
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            raise

    # -- pods --------------------------------------------------------------------------------

    async def run_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        uid: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        runtime_handler: str = "",
        id: str | None = None,
        ips: Sequence[str] = (),
        netns: str = "",
    ) -> MockPod:
        """Create a pod and relay RunPodSandbox; the pod is kept only if that succeeds.

        ``ips`` and ``netns`` (the network namespace's path) describe the pod's network as a
        runtime reports it after CNI set it up; without ``netns`` the pod is host-network.
        """
        pod = self._new_pod(
            name,
            namespace=namespace,
            uid=uid,
            labels=labels,
            annotations=annotations,
            runtime_handler=runtime_handler,
            id=id,
            ips=ips,
            netns=netns,
        )
        record = EventRecord("RunPodSandbox", pod_id=pod.id)
        async with self.adaptation.block_plugin_sync():
            await self._recorded(
                record, self.adaptation.run_pod_sandbox(pb.RunPodSandboxRequest(pod=pod.to_proto()))
            )
            self.pods[pod.id] = pod
        return pod

    async def update_pod(self, pod: MockPod | str, resources: Mapping[str, Any]) -> MockPod:
        """Relay UpdatePodSandbox and PostUpdatePodSandbox with new OCI resources."""
        pod = self.pod(pod)
        request = pb.UpdatePodSandboxRequest(
            pod=pod.to_proto(), linux_resources=linux_resources_from_oci(resources)
        )
        await self._recorded(
            EventRecord("UpdatePodSandbox", pod_id=pod.id),
            self.adaptation.update_pod_sandbox(request),
        )
        pod.resources = copy.deepcopy(dict(resources))
        await self._recorded(
            EventRecord("PostUpdatePodSandbox", pod_id=pod.id),
            self.adaptation.post_update_pod_sandbox(
                pb.PostUpdatePodSandboxRequest(pod=pod.to_proto())
            ),
        )
        return pod

    async def stop_pod(self, pod: MockPod | str) -> MockPod:
        """Stop the pod's running containers, then relay StopPodSandbox."""
        pod = self.pod(pod)
        for ctr in self._containers_of(pod):
            if ctr.state != pb.CONTAINER_STOPPED:
                await self.stop_container(ctr)
        await self._recorded(
            EventRecord("StopPodSandbox", pod_id=pod.id),
            self.adaptation.stop_pod_sandbox(pb.StopPodSandboxRequest(pod=pod.to_proto())),
        )
        pod.state = "notready"
        return pod

    async def remove_pod(self, pod: MockPod | str) -> None:
        """Remove the pod's containers (stopping them first), then relay RemovePodSandbox."""
        pod = self.pod(pod)
        if pod.state == "ready":
            await self.stop_pod(pod)
        for ctr in self._containers_of(pod):
            await self.remove_container(ctr)
        await self._recorded(
            EventRecord("RemovePodSandbox", pod_id=pod.id),
            self.adaptation.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod=pod.to_proto())),
        )
        self.pods.pop(pod.id, None)

    # -- containers --------------------------------------------------------------------------

    async def create_container(
        self,
        pod: MockPod | str,
        name: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | Sequence[str] = (),
        mounts: Sequence[Mapping[str, Any]] = (),
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        resources: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        id: str | None = None,
        cdi_devices: Sequence[str] = (),
    ) -> MockContainer:
        """Create a container: relay CreateContainer, apply the result, PostCreateContainer
        (not for a container the plugins evicted at once).

        Plugin errors, conflicts and validation failures propagate (PluginError,
        ConflictError, ValidationError, SpecError); the container is then not kept and the
        failed event is in :attr:`history` with its error. The pod must be ready
        (LifecycleError otherwise). With the ``cri-o`` profile, updates of other containers
        that the plugins asked for and that fail also fail the creation (UpdateError).
        ``cdi_devices`` are the CDI device names asked for (only containerd passes them on).
        """
        the_pod = self.pod(pod)
        if the_pod.state != "ready":
            raise LifecycleError(
                f"cannot create container {name} in pod {the_pod.name} ({the_pod.id}): "
                f"the pod is {the_pod.state}"
            )
        ctr = self._new_container(
            the_pod,
            name,
            args=args,
            env=env,
            mounts=mounts,
            annotations=annotations,
            labels=labels,
            resources=resources,
            spec=spec,
            id=id,
            cdi_devices=cdi_devices,
        )
        record = EventRecord("CreateContainer", pod_id=the_pod.id, container_id=ctr.id)
        self.history.append(record)
        before = copy.deepcopy(ctr.spec)
        request = pb.CreateContainerRequest(pod=the_pod.to_proto(), container=ctr.to_proto())
        try:
            async with self.adaptation.block_plugin_sync():
                response = await self.adaptation.create_container(request)
                record.changes = self._take_changes()
                if response.HasField("adjust"):
                    SpecGenerator(ctr.spec).adjust(response.adjust)
                    ctr.adjustment = response.adjust
                ctr.owners = owner_table(c for c in record.changes if c.container_id == ctr.id)
                self.containers[ctr.id] = ctr
                record.note_spec(ctr.id, before, ctr.spec)
                failed = self._apply_updates(response.update, record)
                if failed and self.profile.fail_creation_on_failed_updates:
                    ids = ", ".join(u.container_id for u in failed)
                    raise UpdateError(
                        f"failed to update containers {ids} as the plugins asked at the "
                        f"creation of {ctr.name} ({ctr.id})"
                    )
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            self.containers.pop(ctr.id, None)
            await self._undo_create(the_pod, ctr)
            raise
        await self._evict_from(record, response.evict)
        if ctr.id not in self.containers:
            return ctr  # evicted at once: there is nothing left to relay PostCreate for
        if self.profile.pid_from_creation:
            ctr.pid = self._new_pid()
        await self._recorded(
            EventRecord("PostCreateContainer", pod_id=the_pod.id, container_id=ctr.id),
            self.adaptation.post_create_container(
                pb.PostCreateContainerRequest(pod=the_pod.to_proto(), container=ctr.to_proto())
            ),
        )
        return ctr

    async def _undo_create(self, pod: MockPod, ctr: MockContainer) -> None:
        # Like containerd: a failed creation is followed by StopContainer and RemoveContainer,
        # so plugins can release what they set aside for the container.
        # The relays below need it known; remove_container forgets it again.
        self.containers[ctr.id] = ctr
        try:
            await self.stop_container(ctr)
        except Exception as exc:
            logger.warning("undoing the creation of %s: StopContainer failed: %s", ctr.id, exc)
        try:
            await self.remove_container(ctr)
        except Exception as exc:
            logger.warning("undoing the creation of %s: RemoveContainer failed: %s", ctr.id, exc)
        finally:
            self.containers.pop(ctr.id, None)

    async def _evict_from(
        self, record: EventRecord, evictions: Iterable[pb.ContainerEviction]
    ) -> None:
        for eviction in evictions:
            if not self.act_on_evictions:
                record.ignored_evictions.append((eviction.container_id, eviction.reason))
                continue
            record.evicted.append((eviction.container_id, eviction.reason))
            await self._evict_one(eviction.container_id, eviction.reason)

    async def start_container(self, ctr: MockContainer | str) -> MockContainer:
        """Relay StartContainer and PostStartContainer; the container is then running."""
        ctr = self.container(ctr)
        require_state(ctr, "start", pb.CONTAINER_CREATED)
        pod = self.pod(ctr.pod_id)
        await self._recorded(
            EventRecord("StartContainer", pod_id=pod.id, container_id=ctr.id),
            self.adaptation.start_container(
                pb.StartContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            ),
        )
        if not ctr.pid:
            ctr.pid = self._new_pid()
        if self.profile.running_at_post_start:
            self._running(ctr)
        try:
            await self._recorded(
                EventRecord("PostStartContainer", pod_id=pod.id, container_id=ctr.id),
                self.adaptation.post_start_container(
                    pb.PostStartContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
                ),
            )
        finally:
            self._running(ctr)  # CRI-O reports it running only after PostStartContainer
        return ctr

    @staticmethod
    def _running(ctr: MockContainer) -> None:
        if ctr.state != pb.CONTAINER_RUNNING:
            ctr.state = pb.CONTAINER_RUNNING
            ctr.started_at = time.time_ns()

    async def update_container(
        self, ctr: MockContainer | str, resources: Mapping[str, Any]
    ) -> MockContainer:
        """Relay UpdateContainer with new OCI resources, apply the merged result, PostUpdate."""
        ctr = self.container(ctr)
        require_state(ctr, "update", pb.CONTAINER_CREATED, pb.CONTAINER_RUNNING)
        pod = self.pod(ctr.pod_id)
        record = EventRecord("UpdateContainer", pod_id=pod.id, container_id=ctr.id)
        self.history.append(record)
        request = pb.UpdateContainerRequest(
            pod=pod.to_proto(),
            container=ctr.to_proto(),
            linux_resources=linux_resources_from_oci(resources),
        )
        before = copy.deepcopy(ctr.spec)
        try:
            response = await self.adaptation.update_container(request)
            record.changes = self._take_changes()
            own = [u for u in response.update if u.container_id == ctr.id]
            if not own:
                SpecGenerator(ctr.spec).apply_update(request.linux_resources)
            record.note_spec(ctr.id, before, ctr.spec)
            self._apply_updates(response.update, record)
        except Exception as exc:
            ctr.spec = before
            record.error = str(exc) or type(exc).__name__
            raise
        await self._evict_from(record, response.evict)
        if ctr.id not in self.containers:
            return ctr  # evicted by the update's plugins
        await self._recorded(
            EventRecord("PostUpdateContainer", pod_id=pod.id, container_id=ctr.id),
            self.adaptation.post_update_container(
                pb.PostUpdateContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            ),
        )
        return ctr

    async def stop_container(self, ctr: MockContainer | str) -> MockContainer:
        """Relay StopContainer and apply the updates plugins return for other containers.

        Stopping a stopped container does nothing (as in CRI, it is not an error).
        """
        ctr = self.container(ctr)
        if ctr.state == pb.CONTAINER_STOPPED:
            return ctr
        pod = self.pod(ctr.pod_id)
        ctr.state = pb.CONTAINER_STOPPED
        if not self.profile.keep_pid_when_stopped:
            ctr.pid = 0
        record = EventRecord("StopContainer", pod_id=pod.id, container_id=ctr.id)
        self.history.append(record)
        try:
            response = await self.adaptation.stop_container(
                pb.StopContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            )
            record.changes = self._take_changes()
            self._apply_updates(response.update, record)
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            raise
        return ctr

    async def remove_container(self, ctr: MockContainer | str) -> None:
        """Relay RemoveContainer and forget the container."""
        ctr = self.container(ctr)
        pod = self.pod(ctr.pod_id)
        try:
            await self._recorded(
                EventRecord("RemoveContainer", pod_id=pod.id, container_id=ctr.id),
                self.adaptation.remove_container(
                    pb.RemoveContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
                ),
            )
        finally:
            self.containers.pop(ctr.id, None)
