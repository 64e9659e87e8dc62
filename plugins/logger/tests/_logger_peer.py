"""A scripted NRI runtime for the logger's end-to-end test: one unix socket, by hand.

Serves the Runtime service on conn 2 and calls the plugin's Plugin service on conn 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from nri.api import api_pb2 as pb
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Mux
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"
M = TypeVar("M", bound=Message)


class Peer:
    """One plugin connection as the runtime sees it."""

    def __init__(self, mux: Mux) -> None:
        self.mux = mux
        self.client = Client()
        self.server = Server()
        self.registered: asyncio.Future[pb.RegisterPluginRequest] = (
            asyncio.get_running_loop().create_future()
        )
        self.server.register(
            RUNTIME,
            {
                "RegisterPlugin": Method(pb.RegisterPluginRequest, self._register),
                "UpdateContainers": Method(pb.UpdateContainersRequest, self._update),
            },
        )
        mux.open(PLUGIN_SERVICE_CONN, self.client)
        mux.open(RUNTIME_SERVICE_CONN, self.server.connection())

    async def _register(self, request: Message) -> Message:
        assert isinstance(request, pb.RegisterPluginRequest)
        if not self.registered.done():
            self.registered.set_result(request)
        return pb.Empty()

    async def _update(self, request: Message) -> Message:
        return pb.UpdateContainersResponse()

    async def call(self, method: str, request: Message, response: type[M]) -> M:
        return await self.client.call(PLUGIN, method, request, response, timeout=5.0)

    async def handshake(self, config: str = "") -> int:
        """Wait for RegisterPlugin, Configure, Synchronize; return the subscribed mask."""
        await self.registered
        reply = await self.call(
            "Configure",
            pb.ConfigureRequest(
                config=config,
                runtime_name="scripted",
                runtime_version="1.0",
                registration_timeout=5000,
                request_timeout=2000,
            ),
            pb.ConfigureResponse,
        )
        await self.call("Synchronize", pb.SynchronizeRequest(), pb.SynchronizeResponse)
        return reply.events


class Runtime:
    """Listens on ``path``; ``accept()`` gives the next connected plugin."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peers: list[Peer] = []

    async def __aenter__(self) -> Runtime:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen()
        self.listener.setblocking(False)
        return self

    async def accept(self) -> Peer:
        conn, _ = await asyncio.get_running_loop().sock_accept(self.listener)
        peer = Peer(await Mux.from_socket(conn))
        self.peers.append(peer)
        return peer

    async def __aexit__(self, *exc: object) -> None:
        self.listener.close()
        for peer in self.peers:
            peer.mux.close()
            await peer.mux.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
