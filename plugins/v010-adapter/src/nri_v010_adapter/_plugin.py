"""The v010-adapter plugin: NRI v0.1.0 plugins run at pod and container start and stop.

At RunPodSandbox and StartContainer the configured v0.1.0 plugins get a ``create``
request, at StopPodSandbox and StopContainer a ``delete`` one, rebuilt from the event as
upstream does. A failing plugin fails RunPodSandbox, StopPodSandbox and StartContainer;
at StopContainer the failure is only logged (upstream's choice).
"""

from __future__ import annotations

import logging
import os

from nri.api import pb
from nri.stub import Plugin
from nri_v010_adapter._invoke import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, InvokeError, Invoker
from nri_v010_adapter._v010 import (
    CREATE,
    DEFAULT_BINARY_PATH,
    DEFAULT_CONF_PATH,
    DELETE,
    MAX_CONFIG_BYTES,
    V010Config,
    V010ConfigError,
    V010Spec,
    parse_config,
    spec_from_container,
    spec_from_pod,
)

__all__ = ["V010Adapter", "load_config"]

log = logging.getLogger("nri.v010_adapter")


def load_config(path: str) -> V010Config:
    """Read the v0.1.0 configuration; a missing file means no plugins (version ``0.1``)."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return V010Config()
    except OSError as exc:
        raise V010ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_config(data, source=path)


class V010Adapter(Plugin):
    """Run NRI v0.1.0 plugins for the start and stop of pods and containers."""

    def __init__(
        self,
        conf_path: str = DEFAULT_CONF_PATH,
        binary_path: str = DEFAULT_BINARY_PATH,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        """``conf_path``: the v0.1.0 ``conf.json``, read at every event as upstream;
        ``binary_path``: where plugin binaries are found after ``$PATH``."""
        self.conf_path = os.fspath(conf_path)
        self.invoker = Invoker(binary_path, timeout=timeout, max_output=max_output)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Log the runtime's identity."""
        log.info("connected to %s/%s", runtime_name, runtime_version)

    def shutdown(self) -> None:
        """Log the runtime's shutdown."""
        log.info("runtime shutting down")

    async def _invoke(
        self, state: str, pod: pb.PodSandbox, id: str, pid: int, spec: V010Spec
    ) -> None:
        # V010ConfigError and InvokeError fail the request; the stub logs them once
        config = load_config(self.conf_path)
        await self.invoker.invoke_all(
            config,
            state=state,
            id=id,
            pid=pid,
            spec=spec,
            sandbox_id=pod.id,
            labels=pod.labels,
        )

    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """``create`` for the pod sandbox."""
        log.info("started pod %s/%s", pod.namespace, pod.name)
        await self._invoke(CREATE, pod, pod.id, pod.pid, spec_from_pod(pod))

    async def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        """``delete`` for the pod sandbox."""
        log.info("stopped pod %s/%s", pod.namespace, pod.name)
        await self._invoke(DELETE, pod, pod.id, pod.pid, spec_from_pod(pod))

    async def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """``create`` for the container."""
        log.info("starting container %s/%s/%s", pod.namespace, pod.name, container.name)
        await self._invoke(CREATE, pod, container.id, container.pid, spec_from_container(container))

    async def stop_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        """``delete`` for the container; a failure is logged, not returned (as upstream)."""
        log.info("stopped container %s/%s/%s", pod.namespace, pod.name, container.name)
        try:
            await self._invoke(
                DELETE, pod, container.id, container.pid, spec_from_container(container)
            )
        except (V010ConfigError, InvokeError) as exc:
            log.error("stop container %s: %s", container.id, exc)
