"""Pods and containers of the mock runtime: what each holds, how plugins see it, lookups.

:class:`RuntimeState` keeps them by ID and builds new ones with the OCI spec the runtime
of its profile (:mod:`nri.mock._profiles`) generates before any plugin ran; the lifecycle
calls that relay events are in :mod:`nri.mock._lifecycle`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from nri.api import api_pb2 as pb
from nri.mock._profiles import CONTAINERD, RuntimeProfile, get_profile
from nri.oci import container_from_spec, linux_resources_from_oci

__all__ = [
    "LifecycleError",
    "MockContainer",
    "MockPod",
    "RuntimeState",
    "UpdateError",
    "require_state",
]


class LifecycleError(ValueError):
    """A lifecycle call the pod's or container's state does not allow (CRI refuses it too)."""


class UpdateError(RuntimeError):
    """Updating other containers failed, where the runtime fails the event for it (CRI-O)."""


def require_state(ctr: MockContainer, action: str, *allowed: int) -> None:
    """Raise LifecycleError unless the container is in one of the ``allowed`` states."""
    if ctr.state not in allowed:
        state = pb.ContainerState.Name(ctr.state).removeprefix("CONTAINER_").lower()
        raise LifecycleError(f"cannot {action} container {ctr.name} ({ctr.id}): it is {state}")


@dataclasses.dataclass
class MockPod:
    """A pod sandbox of the mock runtime."""

    id: str
    name: str
    namespace: str = "default"
    uid: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    runtime_handler: str = ""
    state: str = "ready"
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The pod's OCI ``linux.resources`` (set by UpdatePodSandbox)."""
    ips: list[str] = dataclasses.field(default_factory=list)
    """The pod's IP addresses, as CNI assigned them."""
    netns: str = ""
    """Path of the pod's network namespace; empty: the pod uses the host network."""
    pid: int = 0
    """The pid of the pod's pause process (made up), sent where the runtime sends it."""
    profile: RuntimeProfile = dataclasses.field(default=CONTAINERD, repr=False, compare=False)
    """The runtime whose way of describing pods :meth:`to_proto` follows."""

    def to_proto(self) -> pb.PodSandbox:
        """Describe the pod to plugins, as the runtime of :attr:`profile` does."""
        pod = pb.PodSandbox(
            id=self.id,
            name=self.name,
            uid=self.uid,
            namespace=self.namespace,
            labels=self.labels,
            annotations=self.annotations,
            runtime_handler=self.runtime_handler,
        )
        pod.linux.cgroup_parent = f"/kubepods/pod{self.uid}"
        pod.ips.extend(self.ips)
        if self.netns:
            pod.linux.namespaces.add(type="network", path=self.netns)
        if self.resources:
            pod.linux.resources.CopyFrom(linux_resources_from_oci(self.resources))
        self.profile.finish_pod(pod, pid=self.pid, resources=self.resources)
        return pod


@dataclasses.dataclass
class MockContainer:
    """A container of the mock runtime, with the OCI spec plugins adjusted."""

    id: str
    name: str
    pod_id: str
    spec: dict[str, Any]
    state: int = pb.CONTAINER_CREATED
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    adjustment: pb.ContainerAdjustment | None = None
    """The merged adjustment the plugins made at creation."""
    owners: dict[str, str] = dataclasses.field(default_factory=dict)
    """``Field`` or ``Field:key`` -> the plugin that set it (from merging)."""
    cdi_devices: list[str] = dataclasses.field(default_factory=list)
    """The CDI devices asked for (``vendor.com/class=name``), sent where the runtime does."""
    pid: int = 0
    """The container's pid (made up) once the runtime reports one; 0 before."""
    started_at: int = 0
    """When it started (ns since the epoch), once the runtime reports it."""
    profile: RuntimeProfile = dataclasses.field(default=CONTAINERD, repr=False, compare=False)
    """The runtime whose way of describing containers :meth:`to_proto` follows."""

    def to_proto(self) -> pb.Container:
        """Describe the container to plugins: runtime fields plus everything in its spec,
        as the runtime of :attr:`profile` sends them."""
        ctr = container_from_spec(
            self.spec,
            id=self.id,
            pod_sandbox_id=self.pod_id,
            name=self.profile.container_name(self.name, self.labels),
            state=self.state,  # type: ignore[arg-type]
            labels=self.labels,
            pid=self.pid,
            started_at=self.started_at,
            cdi_devices=self.cdi_devices,
        )
        self.profile.finish_container(ctr)
        return ctr


class RuntimeState:
    """The pods and containers of a runtime, by ID, with lookups by ID or name."""

    def __init__(self, profile: str | RuntimeProfile = CONTAINERD) -> None:
        self.profile = get_profile(profile)
        """The runtime this one behaves as (``containerd`` or ``cri-o``)."""
        self.pods: dict[str, MockPod] = {}
        self.containers: dict[str, MockContainer] = {}
        self._counter = 0
        self._pids = 4000

    def pod(self, ref: MockPod | str) -> MockPod:
        """Find a pod by object, ID or name; KeyError if unknown or ambiguous."""
        if isinstance(ref, MockPod):
            ref = ref.id
        pod: MockPod = _lookup(self.pods, ref, "pod")
        return pod

    def container(self, ref: MockContainer | str) -> MockContainer:
        """Find a container by object, ID or name; KeyError if unknown or ambiguous."""
        if isinstance(ref, MockContainer):
            ref = ref.id
        ctr: MockContainer = _lookup(self.containers, ref, "container")
        return ctr

    def pod_named(self, name: str, namespace: str = "default") -> MockPod | None:
        """The pod with this name in this namespace, if there is one."""
        for pod in self.pods.values():
            if pod.name == name and pod.namespace == namespace:
                return pod
        return None

    def _new_id(self, kind: str, name: str) -> str:
        self._counter += 1
        return f"{kind}{self._counter:03d}-{name}"

    def _new_pid(self) -> int:
        self._pids += 1
        return self._pids

    def _containers_of(self, pod: MockPod) -> list[MockContainer]:
        return [c for c in self.containers.values() if c.pod_id == pod.id]

    # -- state present before plugins connect -------------------------------------------------

    def add_existing_pod(self, name: str, **fields: Any) -> MockPod:
        """Add a ready pod without relaying events (plugins see it in Synchronize)."""
        pod = self._new_pod(name, **fields)
        self.pods[pod.id] = pod
        return pod

    def add_existing_container(self, pod: MockPod | str, name: str, **fields: Any) -> MockContainer:
        """Add a running container without relaying events (seen in Synchronize)."""
        ctr = self._new_container(self.pod(pod), name, **fields)
        ctr.state = pb.CONTAINER_RUNNING
        ctr.pid = self._new_pid()
        ctr.started_at = time.time_ns()
        self.containers[ctr.id] = ctr
        return ctr

    def _new_pod(
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
        taken = self.pod_named(name, namespace)
        if taken is not None:
            # As in containerd, whose RunPodSandbox reserves the name until removal.
            raise LifecycleError(
                f"pod name {name!r} in namespace {namespace!r} is taken by pod {taken.id} "
                f"({taken.state}): remove that pod first, or choose another name"
            )
        pod_id = id or self._new_id("pod", name)
        if pod_id in self.pods:
            raise ValueError(f"pod ID {pod_id!r} is already in use")
        return MockPod(
            id=pod_id,
            name=name,
            namespace=namespace,
            uid=uid or f"uid-{pod_id}",
            labels=dict(labels or {}),
            annotations=dict(annotations or {}),
            runtime_handler=runtime_handler,
            ips=list(ips),
            netns=netns,
            pid=self._new_pid() if self.profile.pod_pid else 0,
            profile=self.profile,
        )

    def _new_container(
        self,
        pod: MockPod,
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
        ctr_id = id or self._new_id("ctr", name)
        if ctr_id in self.containers:
            raise ValueError(f"container ID {ctr_id!r} is already in use")
        labels = dict(labels or {})
        name_label = self.profile.container_name_label
        if name_label is not None:
            labels.setdefault(name_label, name)  # as kubelet sets it
        base = copy.deepcopy(dict(spec)) if spec is not None else {}
        oci = self.profile.default_spec(pod.to_proto(), ctr_id, name, labels) | base
        process = oci.setdefault("process", {})
        if args:
            process["args"] = list(args)
        if env:
            process["env"] = [*process.get("env", []), *_env_list(env)]
        if mounts:
            oci["mounts"] = [*oci.get("mounts", []), *(dict(m) for m in mounts)]
        if annotations:
            oci["annotations"] = {**oci.get("annotations", {}), **annotations}
        if resources is not None:
            oci.setdefault("linux", {})["resources"] = self.profile.container_resources(
                copy.deepcopy(dict(resources))
            )
        return MockContainer(
            id=ctr_id,
            name=name,
            pod_id=pod.id,
            spec=oci,
            labels=labels,
            cdi_devices=list(cdi_devices),
            profile=self.profile,
        )


def _lookup(table: Mapping[str, Any], ref: str, kind: str) -> Any:
    found = table.get(ref)
    if found is not None:
        return found
    named = [obj for obj in table.values() if obj.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        raise KeyError(f"{kind} name {ref!r} is ambiguous: IDs {[o.id for o in named]}")
    raise KeyError(f"no {kind} {ref!r} (known: {[o.name for o in table.values()]})")


def _env_list(env: Mapping[str, str] | Sequence[str]) -> list[str]:
    if isinstance(env, Mapping):
        return [f"{k}={v}" for k, v in env.items()]
    return [str(e) for e in env]
