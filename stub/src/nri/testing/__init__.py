"""Testing aids for NRI plugins.

:class:`ScriptedRuntime` is the runtime end of the NRI socket, driven by hand from a test:
it listens on a unix socket, serves the Runtime service on conn 2 (answering RegisterPlugin
and recording UpdateContainers) and lets the test call the plugin's Plugin service on conn 1.
Use it for protocol-level end-to-end tests of a plugin process (in an async test):

.. code-block:: python
   :class: fragment

    async with ScriptedRuntime(tmp_path / "nri.sock") as runtime:
        process = await asyncio.create_subprocess_exec(
            "nri-my-plugin", "--idx", "10", "--socket-path", str(runtime.path))
        plugin = await runtime.accept()
        mask = await plugin.handshake()
        reply = await plugin.call("CreateContainer", request, pb.CreateContainerResponse)

:class:`PluginCommandCheck` checks what every plugin command shares (flags, configuration
file errors, ``--help``, ``--version``, registration against the mock runtime); the pytest
plugin's ``nri_plugin_command`` fixture makes one; for an injector plugin with an ``allow``
section it also checks malformed ones, and :func:`allow_example` gives the documented
example for a test to load through the plugin's configuration parser.
:func:`scrape_metrics` reads a ``--metrics-address`` endpoint (with ``nri[metrics]``).
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
from nri.testing._allowlist import ALLOW_SECTION, allow_example
from nri.testing._commands import PluginCommandCheck, Registration, Rejection
from nri.testing._metrics import MetricSamples, free_tcp_port, scrape_metrics
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"
M = TypeVar("M", bound=Message)

__all__ = [
    "ALLOW_SECTION",
    "MetricSamples",
    "PluginCommandCheck",
    "Registration",
    "Rejection",
    "ScriptedPlugin",
    "ScriptedRuntime",
    "allow_example",
    "free_tcp_port",
    "scrape_metrics",
]


class ScriptedPlugin:
    """One plugin connection as the runtime sees it."""

    def __init__(self, mux: Mux) -> None:
        self.mux = mux
        self.client = Client()
        self.server = Server()
        self.registered: asyncio.Future[pb.RegisterPluginRequest] = (
            asyncio.get_running_loop().create_future()
        )
        self.updates: list[pb.UpdateContainersRequest] = []
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
        assert isinstance(request, pb.UpdateContainersRequest)
        self.updates.append(request)
        return pb.UpdateContainersResponse()

    async def call(self, method: str, request: Message, response: type[M]) -> M:
        """Call a method of the plugin's Plugin service (5 s deadline)."""
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


class ScriptedRuntime:
    """Listens on ``path``; ``accept()`` gives the next connected plugin."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peers: list[ScriptedPlugin] = []

    async def __aenter__(self) -> ScriptedRuntime:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen()
        self.listener.setblocking(False)
        return self

    async def accept(self) -> ScriptedPlugin:
        """Wait for the next plugin connection."""
        conn, _ = await asyncio.get_running_loop().sock_accept(self.listener)
        peer = ScriptedPlugin(await Mux.from_socket(conn))
        self.peers.append(peer)
        return peer

    async def __aexit__(self, *exc: object) -> None:
        self.listener.close()
        for peer in self.peers:
            peer.mux.close()
            await peer.mux.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
