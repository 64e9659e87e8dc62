"""Shared helpers of the adaptation tests: a fake runtime state, plugin processes, raw plugins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from nri.adaptation import Adaptation, Config
from nri.api import api_pb2 as pb
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Mux
from nri.stub import Plugin, Stub
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"
RECORDER = Path(__file__).parent / "adaptation_plugins" / "recorder.py"

# method -> (request type, response type)
PLUGIN_METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "Configure": (pb.ConfigureRequest, pb.ConfigureResponse),
    "Synchronize": (pb.SynchronizeRequest, pb.SynchronizeResponse),
    "Shutdown": (pb.Empty, pb.Empty),
    "RunPodSandbox": (pb.RunPodSandboxRequest, pb.RunPodSandboxResponse),
    "UpdatePodSandbox": (pb.UpdatePodSandboxRequest, pb.UpdatePodSandboxResponse),
    "PostUpdatePodSandbox": (pb.PostUpdatePodSandboxRequest, pb.PostUpdatePodSandboxResponse),
    "StopPodSandbox": (pb.StopPodSandboxRequest, pb.StopPodSandboxResponse),
    "RemovePodSandbox": (pb.RemovePodSandboxRequest, pb.RemovePodSandboxResponse),
    "CreateContainer": (pb.CreateContainerRequest, pb.CreateContainerResponse),
    "PostCreateContainer": (pb.PostCreateContainerRequest, pb.PostCreateContainerResponse),
    "StartContainer": (pb.StartContainerRequest, pb.StartContainerResponse),
    "PostStartContainer": (pb.PostStartContainerRequest, pb.PostStartContainerResponse),
    "UpdateContainer": (pb.UpdateContainerRequest, pb.UpdateContainerResponse),
    "PostUpdateContainer": (pb.PostUpdateContainerRequest, pb.PostUpdateContainerResponse),
    "StopContainer": (pb.StopContainerRequest, pb.StopContainerResponse),
    "RemoveContainer": (pb.RemoveContainerRequest, pb.RemoveContainerResponse),
    "StateChange": (pb.StateChangeEvent, pb.Empty),
    "ValidateContainerAdjustment": (
        pb.ValidateContainerAdjustmentRequest,
        pb.ValidateContainerAdjustmentResponse,
    ),
}


class FakeRuntime:
    """The runtime's side: state for SyncFn, and UpdateFn/EvictFn recording what they get."""

    def __init__(self, pods: int = 1, containers: int = 1) -> None:
        self.pods = [pb.PodSandbox(id=f"pod{i}", name=f"pod-{i}") for i in range(pods)]
        self.containers = [
            pb.Container(id=f"ctr{i}", pod_sandbox_id="pod0", name=f"ctr-{i}")
            for i in range(containers)
        ]
        self.updates: list[pb.ContainerUpdate] = []
        self.evictions: list[pb.ContainerEviction] = []
        self.fail_ids: set[str] = set()
        self.update_error: Exception | None = None
        self.syncs = 0

    async def sync(self) -> tuple[list[pb.PodSandbox], list[pb.Container]]:
        self.syncs += 1
        return self.pods, self.containers

    async def update(self, updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        if self.update_error is not None:
            raise self.update_error
        self.updates.extend(updates)
        return [u for u in updates if u.container_id in self.fail_ids]

    async def evict(self, evictions: list[pb.ContainerEviction]) -> None:
        self.evictions.extend(evictions)

    def adaptation(self, config: Config, **kwargs: Any) -> Adaptation:
        return Adaptation(config, sync=self.sync, update=self.update, evict=self.evict, **kwargs)


def config_for(tmp_path: Path, **overrides: Any) -> Config:
    """A Config with every path under ``tmp_path``."""
    settings: dict[str, Any] = {
        "runtime_name": "fake-runtime",
        "runtime_version": "1.2.3",
        "socket_path": str(tmp_path / "nri" / "nri.sock"),
        "plugin_path": str(tmp_path / "plugins"),
        "plugin_config_path": str(tmp_path / "conf.d"),
    }
    settings.update(overrides)
    return Config(**settings)


def create_request(ctr: str = "c1") -> pb.CreateContainerRequest:
    return pb.CreateContainerRequest(
        pod=pb.PodSandbox(id="pod0", name="pod"),
        container=pb.Container(id=ctr, pod_sandbox_id="pod0", name=ctr),
    )


def env_of(response: pb.CreateContainerResponse) -> dict[str, str]:
    return {kv.key: kv.value for kv in response.adjust.env}


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@contextlib.asynccontextmanager
async def plugin_process(
    socket_path: str, idx: str, name: str, config: str, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run the recorder plugin as an external plugin process."""
    cfg = tmp_path / f"{idx}-{name}.yaml"
    cfg.write_text(config)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RECORDER),
        "--idx",
        idx,
        "--name",
        name,
        "--socket-path",
        socket_path,
        "--config",
        str(cfg),
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
        await proc.wait()


def install_plugin(plugin_dir: Path, filename: str, body: str | None = None) -> Path:
    """Install an executable ``filename`` running the recorder (or a shell ``body``)."""
    plugin_dir.mkdir(parents=True, exist_ok=True)
    # Explicit modes: the runtime launches nothing group- or world-writable, whatever the umask.
    plugin_dir.chmod(0o755)
    path = plugin_dir / filename
    if body is None:
        body = f'exec {sys.executable} {RECORDER} "$@"'
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@contextlib.asynccontextmanager
async def stub_plugin(
    plugin: Plugin, socket_path: str, idx: str, name: str, **options: Any
) -> AsyncIterator[Stub]:
    """Run an in-process stub plugin over the real socket (``options``: more Stub arguments)."""
    stub = Stub(plugin, idx=idx, name=name, socket_path=socket_path, environ={}, **options)
    task = asyncio.create_task(stub.run())
    try:
        yield stub
    finally:
        await stub.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class RawPlugin:
    """A hand-built plugin on nri.ttrpc + nri.net, serving only ``methods``."""

    def __init__(
        self,
        socket_path: str,
        *,
        idx: str = "50",
        name: str = "raw",
        events: int = 0,
        methods: set[str] | None = None,
        handlers: dict[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.idx = idx
        self.name = name
        self.events = events
        self.methods = (
            set(PLUGIN_METHODS)
            if methods is None
            else methods
            | {
                "Configure",
                "Synchronize",
            }
        )
        self.handlers = handlers or {}
        self.calls: list[tuple[str, Any]] = []
        self.mux: Mux | None = None
        self.client: Client | None = None

    def _method(self, name: str) -> Method[Any]:
        req_type, resp_type = PLUGIN_METHODS[name]

        async def handle(request: Any) -> Message:
            self.calls.append((name, request))
            custom = self.handlers.get(name)
            if custom is not None:
                result = custom(request)
                if asyncio.iscoroutine(result):
                    result = await result
                return result  # type: ignore[no-any-return]
            if name == "Configure":
                return pb.ConfigureResponse(events=self.events)
            if name == "Synchronize":
                return pb.SynchronizeResponse(more=request.more)
            return resp_type()

        return Method(req_type, handle)

    async def connect(self) -> None:
        """Connect and serve, without registering."""
        self.mux = await Mux.dial(self.socket_path)
        server = Server()
        server.register(PLUGIN, {m: self._method(m) for m in self.methods})
        self.client = Client()
        self.mux.open(PLUGIN_SERVICE_CONN, server.connection())
        self.mux.open(RUNTIME_SERVICE_CONN, self.client)

    async def register(self) -> None:
        """Send RegisterPlugin (raises the runtime's error)."""
        if self.mux is None:
            await self.connect()
        assert self.client is not None
        await self.client.call(
            RUNTIME,
            "RegisterPlugin",
            pb.RegisterPluginRequest(plugin_name=self.name, plugin_idx=self.idx),
            pb.Empty,
            timeout=5,
        )

    def called(self) -> list[str]:
        return [name for name, _ in self.calls]

    async def close(self) -> None:
        if self.mux is not None:
            self.mux.close()
            await self.mux.wait_closed()

    async def __aenter__(self) -> RawPlugin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
