"""A scripted runtime peer for stub tests: the runtime end of the NRI socket, by hand.

It listens on a real unix socket, serves the Runtime service on conn 2 (recording
RegisterPlugin and UpdateContainers) and calls the plugin's Plugin service on conn 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from nri.api import api_pb2 as pb
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Mux
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"
M = TypeVar("M", bound=Message)


@dataclass
class PluginConnection:
    """One connected plugin as the scripted runtime sees it."""

    mux: Mux
    client: Client
    registered: asyncio.Future[pb.RegisterPluginRequest]
    updates: list[pb.UpdateContainersRequest] = field(default_factory=list)

    async def call(
        self, method: str, request: Message, response: type[M], timeout: float = 2.0
    ) -> M:
        return await self.client.call(PLUGIN, method, request, response, timeout=timeout)

    async def configure(self, config: str = "", request_timeout_ms: int = 2000) -> int:
        reply = await self.call(
            "Configure",
            pb.ConfigureRequest(
                config=config,
                runtime_name="scripted",
                runtime_version="1.0",
                registration_timeout=5000,
                request_timeout=request_timeout_ms,
            ),
            pb.ConfigureResponse,
        )
        return reply.events

    async def handshake(self, config: str = "") -> int:
        await self.registered
        events = await self.configure(config)
        await self.call("Synchronize", pb.SynchronizeRequest(), pb.SynchronizeResponse)
        return events


class ScriptedRuntime:
    """Accepts plugin connections on ``path``; each arrives on :attr:`connections`."""

    def __init__(
        self, path: Path, fail_updates: Callable[[pb.ContainerUpdate], bool] | None = None
    ):
        self.path = path
        self.connections: asyncio.Queue[PluginConnection] = asyncio.Queue()
        self.fail_updates = fail_updates or (lambda update: False)
        self._server: asyncio.Server | None = None
        self._muxes: list[Mux] = []

    async def __aenter__(self) -> ScriptedRuntime:
        await self.listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def listen(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        sock.listen()
        sock.setblocking(False)
        self._listener = sock
        self._accepting = asyncio.create_task(self._accept_loop())

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self._listener)
            self.connections.put_nowait(await self.attach(conn))

    async def attach(self, conn: socket.socket) -> PluginConnection:
        """Serve one already-connected plugin socket."""
        loop = asyncio.get_running_loop()
        mux = await Mux.from_socket(conn)
        self._muxes.append(mux)
        registered: asyncio.Future[pb.RegisterPluginRequest] = loop.create_future()
        server = Server()
        client = Client()
        plugin = PluginConnection(mux, client, registered)

        async def register(request: Message) -> Message:
            assert isinstance(request, pb.RegisterPluginRequest)
            if not registered.done():
                registered.set_result(request)
            return pb.Empty()

        async def update(request: Message) -> Message:
            assert isinstance(request, pb.UpdateContainersRequest)
            plugin.updates.append(request)
            failed = [u for u in request.update if self.fail_updates(u)]
            return pb.UpdateContainersResponse(failed=failed)

        server.register(
            RUNTIME,
            {
                "RegisterPlugin": Method(pb.RegisterPluginRequest, register),
                "UpdateContainers": Method(pb.UpdateContainersRequest, update),
            },
        )
        mux.open(PLUGIN_SERVICE_CONN, client)
        mux.open(RUNTIME_SERVICE_CONN, server.connection())
        return plugin

    async def close(self) -> None:
        self._accepting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._accepting
        self._listener.close()
        for mux in self._muxes:
            mux.close()
        for mux in self._muxes:
            await mux.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@contextlib.asynccontextmanager
async def running(stub_run: asyncio.Future[None] | asyncio.Task[None]) -> AsyncIterator[None]:
    """Cancel and reap a stub's run task when the block ends."""
    try:
        yield
    finally:
        stub_run.cancel()
        with contextlib.suppress(BaseException):
            await stub_run
