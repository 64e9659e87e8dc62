"""Runtime profiles: what the mock runtime sends to plugins, and how it behaves, as
containerd 2.3 or CRI-O 1.36 does.

Each profile fills in the pod and container data its runtime sends and no more, builds the
container spec its runtime would generate and says how the runtime differs around plugins.
The facts come from requests dumped by a logging plugin on containerd 2.3.4 (NRI 0.12) and
CRI-O 1.36.3 (NRI 0.11) with the same pod; the user documentation lists every difference.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any, Final

from nri.api import api_pb2 as pb

__all__ = [
    "CONTAINERD",
    "CRIO",
    "CRIO_CONTAINER_NAME_LABEL",
    "DEFAULT_PATH_ENV",
    "PROFILES",
    "RuntimeProfile",
    "get_profile",
]

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The environment entry every container starts with, as container runtimes add it."""

CRIO_CONTAINER_NAME_LABEL: Final = "io.kubernetes.container.name"
"""The label kubelet sets to the container's name, where CRI-O takes the name from."""

_CRI: Final = "io.kubernetes.cri."


@dataclasses.dataclass(frozen=True)
class RuntimeProfile:
    """How one container runtime describes pods and containers and treats plugins.

    :class:`~nri.mock.MockRuntime` (``profile=``), ``nri-mock-runtime --profile``, the pytest
    fixtures (``--nri-profile``) and scenario files (``profile:``) take ``containerd`` (the
    default) or ``cri-o``. What differs, as observed on containerd 2.3.4 and CRI-O 1.36.3
    (containerd first):

    - Event delivery: one RPC per event; CRI-O sends the events that return nothing
      (RunPodSandbox, StopPodSandbox, RemovePodSandbox, PostUpdatePodSandbox,
      PostCreateContainer, StartContainer, PostStartContainer, PostUpdateContainer,
      RemoveContainer) as ``StateChange``, and a plugin without it fails them.
    - Container name: the CRI name; CRI-O takes the label ``io.kubernetes.container.name``
      (the mock sets it to the name, as kubelet does; an empty label gives an empty name).
    - Seccomp policy and CDI device names: sent; CRI-O sends neither (the spec keeps its
      seccomp).
    - Container annotations: its own plus ``io.kubernetes.cri.*``; CRI-O: also the pod's
      annotations and the container's labels.
    - Container env: the spec's; CRI-O: ``PATH`` twice (its default, then the image's) and
      ``TERM=xterm``.
    - Extra mounts: none; CRI-O: ``/run/.containerenv``, ``/etc/hosts``, ``/etc/passwd``,
      ``/etc/group``.
    - ``linux.resources.pids.limit``: absent; CRI-O: ``-1``.
    - Container network namespace: ``/proc/<pause pid>/ns/net``; CRI-O: none.
    - Pod pid: the pause process's; CRI-O: none.
    - Pod namespaces: pid, ipc, mount without paths; CRI-O: ipc and uts with pinned paths.
    - Pod annotations and labels: containerd adds ``io.kubernetes.cri.*`` annotations; CRI-O
      adds the label ``io.kubernetes.container.name: POD``.
    - Container pid: once started, gone when stopped; CRI-O: from PostCreateContainer on,
      kept when stopped (seen at RemoveContainer).
    - PostStartContainer: ``CONTAINER_RUNNING`` with ``started_at``; CRI-O: still
      ``CONTAINER_CREATED`` without ``started_at`` (running after it).
    - Updates of other containers that fail at a creation: logged, the creation goes on;
      CRI-O fails the creation (:class:`~nri.mock.UpdateError`).

    On both, a pod given a network namespace (``netns``) lists it, and evictions that plugins
    ask for are recorded but not acted on, as upstream's adaptation drops them (pass
    ``act_on_evictions=True`` to stop and remove the containers). The runtime name in
    Configure stays ``nri-mock-runtime``. Not modelled: runtime restarts (CRI-O still
    delivers StopPodSandbox and RemovePodSandbox for pods from before one, containerd does
    not), OCI hooks (CRI-O runs poststop hooks at RemoveContainer and adds those of its
    ``hooks_dir`` itself), CDI resolution and containers exiting by themselves.
    """

    name: str
    """``containerd`` or ``cri-o``."""
    state_change_delivery: bool
    """Events that return nothing reach plugins through ``StateChange`` (NRI 0.11), not
    one RPC per event (NRI 0.12)."""
    running_at_post_start: bool
    """PostStartContainer says ``CONTAINER_RUNNING`` with ``started_at`` (CRI-O: still
    ``CONTAINER_CREATED``, running only afterwards)."""
    pid_from_creation: bool
    """A container's pid is known from PostCreateContainer on (containerd: once started)."""
    keep_pid_when_stopped: bool
    """A stopped container keeps its pid (seen at RemoveContainer)."""
    fail_creation_on_failed_updates: bool
    """A creation fails when updating the other containers its plugins asked for fails
    (containerd logs it and goes on)."""
    pod_pid: bool
    """Pods carry the pid of their pause process."""
    container_name_label: str | None
    """Where the container's name comes from: this label, or the CRI name (None)."""
    seccomp_and_cdi_names: bool
    """Containers carry the seccomp policy and the requested CDI device names."""
    container_network_namespace: bool
    """Containers list a network namespace (the pause process's)."""

    # -- pods --------------------------------------------------------------------------------

    def finish_pod(self, pod: pb.PodSandbox, *, pid: int, resources: Mapping[str, Any]) -> None:
        """Add what this runtime adds to a pod's description (``pod`` as the user gave it)."""
        if self.name == "cri-o":
            pod.labels[CRIO_CONTAINER_NAME_LABEL] = "POD"
            for kind in ("ipc", "uts"):
                pod.linux.namespaces.add(type=kind, path=_pinned(kind, pod.id))
            return
        if self.pod_pid:
            pod.pid = pid
        for kind in ("pid", "ipc", "mount"):
            pod.linux.namespaces.add(type=kind)
        cpu = resources.get("cpu") or {}
        memory = resources.get("memory") or {}
        extra = {
            "container-type": "sandbox",
            "sandbox-id": pod.id,
            "sandbox-name": pod.name,
            "sandbox-namespace": pod.namespace,
            "sandbox-uid": pod.uid,
            "sandbox-log-directory": f"/var/log/pods/{pod.namespace}_{pod.name}_{pod.uid}",
            "sandbox-cpu-period": str(cpu.get("period", 0)),
            "sandbox-cpu-quota": str(cpu.get("quota", 0)),
            "sandbox-cpu-shares": str(cpu.get("shares", 0)),
            "sandbox-memory": str(memory.get("limit", 0)),
        }
        for key, value in extra.items():
            pod.annotations.setdefault(_CRI + key, value)

    # -- containers --------------------------------------------------------------------------

    def default_spec(
        self, pod: pb.PodSandbox, ctr_id: str, name: str, labels: Mapping[str, str]
    ) -> dict[str, Any]:
        """The OCI spec this runtime generates for a container, before any plugin.

        ``pod`` is the pod's description as plugins see it (:meth:`finish_pod` applied).
        """
        env = [DEFAULT_PATH_ENV, f"HOSTNAME={pod.name}"]
        mounts: list[dict[str, Any]] = [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
        ]
        network: dict[str, str] = {"type": "network"}
        resources: dict[str, Any] = {}
        if self.name == "cri-o":
            # CRI-O's default PATH, then the image's, and TERM; the pod's annotations and the
            # container's labels among the annotations; files it bind-mounts itself.
            env = [DEFAULT_PATH_ENV, "TERM=xterm", f"HOSTNAME={pod.name}", DEFAULT_PATH_ENV]
            userdata = f"/run/containers/storage/overlay-containers/{ctr_id}/userdata"
            for target, source in (
                ("/run/.containerenv", f"{userdata}/.containerenv"),
                ("/etc/hosts", f"{userdata}/hosts"),
                ("/etc/passwd", f"{userdata}/passwd"),
                ("/etc/group", f"{userdata}/group"),
            ):
                mounts.append(
                    {
                        "destination": target,
                        "type": "bind",
                        "source": source,
                        "options": ["rw", "rbind", "rprivate", "bind"],
                    }
                )
            annotations = {**pod.annotations, **labels}
            resources = {"pids": {"limit": -1}}
            for ns in pod.linux.namespaces:
                if ns.type == "network" and ns.path:
                    network["path"] = ns.path
        else:
            annotations = {
                _CRI + "container-type": "container",
                _CRI + "container-name": name,
                _CRI + "sandbox-id": pod.id,
                _CRI + "sandbox-name": pod.name,
                _CRI + "sandbox-namespace": pod.namespace,
                _CRI + "sandbox-uid": pod.uid,
            }
            if pod.pid:
                network["path"] = f"/proc/{pod.pid}/ns/net"
        return {
            "ociVersion": "1.3.0",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sh"],
                "env": env,
                "cwd": "/",
            },
            "root": {"path": "rootfs"},
            "hostname": pod.name,
            "mounts": mounts,
            "annotations": annotations,
            "linux": {
                "resources": resources,
                "cgroupsPath": f"kubepods-pod{pod.uid}.slice:cri:{ctr_id}",
                "namespaces": [
                    {"type": "pid"},
                    {"type": "ipc"},
                    {"type": "uts"},
                    {"type": "mount"},
                    network,
                ],
            },
        }

    def container_resources(self, resources: Mapping[str, Any]) -> dict[str, Any]:
        """``linux.resources`` of a container created with these resources."""
        if self.name == "cri-o":
            return {"pids": {"limit": -1}, **resources}
        return dict(resources)

    def container_name(self, name: str, labels: Mapping[str, str]) -> str:
        """The name plugins see for a container with this CRI name and these labels."""
        if self.container_name_label is None:
            return name
        return labels.get(self.container_name_label, "")

    def finish_container(self, ctr: pb.Container) -> None:
        """Leave out of a container's description what this runtime does not send."""
        if not self.seccomp_and_cdi_names:
            ctr.linux.ClearField("seccomp_policy")
            ctr.linux.ClearField("seccomp_profile")
            del ctr.CDI_devices[:]
        if not self.container_network_namespace:
            kept = [ns for ns in ctr.linux.namespaces if ns.type != "network"]
            del ctr.linux.namespaces[:]
            ctr.linux.namespaces.extend(kept)


def _pinned(kind: str, pod_id: str) -> str:
    # CRI-O pins a pod's namespaces to files named by a random UUID; derive one from the ID.
    return f"/var/run/{kind}ns/{uuid.uuid5(uuid.NAMESPACE_URL, f'{kind}/{pod_id}')}"


CONTAINERD: Final = RuntimeProfile(
    name="containerd",
    state_change_delivery=False,
    running_at_post_start=True,
    pid_from_creation=False,
    keep_pid_when_stopped=False,
    fail_creation_on_failed_updates=False,
    pod_pid=True,
    container_name_label=None,
    seccomp_and_cdi_names=True,
    container_network_namespace=True,
)
"""containerd 2.3 (NRI 0.12): the default."""

CRIO: Final = RuntimeProfile(
    name="cri-o",
    state_change_delivery=True,
    running_at_post_start=False,
    pid_from_creation=True,
    keep_pid_when_stopped=True,
    fail_creation_on_failed_updates=True,
    pod_pid=False,
    container_name_label=CRIO_CONTAINER_NAME_LABEL,
    seccomp_and_cdi_names=False,
    container_network_namespace=False,
)
"""CRI-O 1.36 (NRI 0.11)."""

PROFILES: Final = {profile.name: profile for profile in (CONTAINERD, CRIO)}
"""The runtime profiles by name."""


def get_profile(profile: str | RuntimeProfile) -> RuntimeProfile:
    """The profile of this name (``containerd``, ``cri-o``); ValueError naming the known ones."""
    if isinstance(profile, RuntimeProfile):
        return profile
    found = PROFILES.get(profile.lower().replace("crio", "cri-o"))
    if found is None:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown runtime profile {profile!r} (known: {known})")
    return found
