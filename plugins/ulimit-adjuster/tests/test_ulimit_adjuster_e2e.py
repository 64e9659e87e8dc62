"""End to end: the nri-ulimit-adjuster command against a scripted runtime on a unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path

import pytest
from google.protobuf.message import Message

from nri.api import pb
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Mux
from nri.ttrpc import Client, Method, Server, StatusError

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"


@pytest.mark.timeout(30)
async def test_plugin_process_adjusts_and_rejects(tmp_path: Path) -> None:
    path = tmp_path / "nri.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    listener.setblocking(False)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nri_ulimit_adjuster",
        "--socket-path", str(path), "--idx", "30", "--name", "ulimit-adjuster",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    mux: Mux | None = None
    try:
        loop = asyncio.get_running_loop()
        conn, _ = await loop.sock_accept(listener)
        mux = await Mux.from_socket(conn)
        registered: asyncio.Future[pb.RegisterPluginRequest] = loop.create_future()

        async def register(request: Message) -> Message:
            assert isinstance(request, pb.RegisterPluginRequest)
            registered.set_result(request)
            return pb.Empty()

        async def update(request: Message) -> Message:
            return pb.UpdateContainersResponse()

        server = Server()
        server.register(
            RUNTIME,
            {
                "RegisterPlugin": Method(pb.RegisterPluginRequest, register),
                "UpdateContainers": Method(pb.UpdateContainersRequest, update),
            },
        )
        client = Client()
        mux.open(PLUGIN_SERVICE_CONN, client)
        mux.open(RUNTIME_SERVICE_CONN, server.connection())

        reg = await registered
        assert (reg.plugin_name, reg.plugin_idx) == ("ulimit-adjuster", "30")
        configured = await client.call(
            PLUGIN, "Configure",
            pb.ConfigureRequest(runtime_name="scripted", runtime_version="1.0",
                                registration_timeout=5000, request_timeout=2000),
            pb.ConfigureResponse, timeout=5,
        )  # fmt: skip
        assert configured.events == 1 << (pb.CREATE_CONTAINER - 1)
        await client.call(
            PLUGIN, "Synchronize", pb.SynchronizeRequest(), pb.SynchronizeResponse, timeout=5
        )

        pod = pb.PodSandbox(
            id="pod-0",
            name="p",
            namespace="ns",
            annotations={
                "ulimits.noderesource.dev/container.c0": "- type: nofile\n  soft: 1024\n  hard: 4096\n",
                "ulimits.nri.containerd.io/container.bad": "- type: RLIMIT_FOO\n",
            },
        )
        reply = await client.call(
            PLUGIN, "CreateContainer",
            pb.CreateContainerRequest(pod=pod, container=pb.Container(id="c-0", name="c0")),
            pb.CreateContainerResponse, timeout=5,
        )  # fmt: skip
        assert list(reply.adjust.rlimits) == [
            pb.POSIXRlimit(type="RLIMIT_NOFILE", hard=4096, soft=1024)
        ]

        with pytest.raises(StatusError) as info:
            await client.call(
                PLUGIN, "CreateContainer",
                pb.CreateContainerRequest(pod=pod, container=pb.Container(id="c-1", name="bad")),
                pb.CreateContainerResponse, timeout=5,
            )  # fmt: skip
        message = info.value.message
        assert "pod ns/p, container bad" in message
        assert "'ulimits.nri.containerd.io/container.bad'" in message
        assert "failed to parse type: 'RLIMIT_FOO'" in message

        # the plugin survived the failure
        reply = await client.call(
            PLUGIN, "CreateContainer",
            pb.CreateContainerRequest(pod=pod, container=pb.Container(id="c-2", name="c0")),
            pb.CreateContainerResponse, timeout=5,
        )  # fmt: skip
        assert len(reply.adjust.rlimits) == 1

        mux.close()
        await mux.wait_closed()
        mux = None
        await asyncio.wait_for(proc.wait(), 10)
        assert proc.returncode == 1  # the runtime went away
    finally:
        if mux is not None:
            mux.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        assert proc.stderr is not None
        with contextlib.suppress(Exception):
            stderr = (await proc.stderr.read()).decode()
            print(stderr)
        listener.close()
