"""End to end: the plugin command against a tiny scripted runtime over a real unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from pathlib import Path

import pytest
from google.protobuf.message import Message

from nri.api import api_pb2 as pb
from nri.api import make_hook
from nri.net import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Mux
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def serve_one_plugin(
    listener: socket.socket,
) -> tuple[Mux, Client, asyncio.Future[pb.RegisterPluginRequest]]:
    """Accept one plugin: serve Runtime on conn 2, be the Plugin-service client on conn 1."""
    loop = asyncio.get_running_loop()
    conn, _ = await loop.sock_accept(listener)
    mux = await Mux.from_socket(conn)
    registered: asyncio.Future[pb.RegisterPluginRequest] = loop.create_future()

    async def register(request: Message) -> Message:
        assert isinstance(request, pb.RegisterPluginRequest)
        if not registered.done():
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
    return mux, client, registered


@pytest.mark.timeout(30)
async def test_sample_hook_injected_over_the_wire(tmp_path: Path) -> None:
    hooks_dir = tmp_path / "hooks.d"
    hooks_dir.mkdir()
    sample = json.loads((SAMPLES / "demo-hook.json").read_text())
    script = str(SAMPLES / "demo-hook.sh")
    sample["hook"]["path"] = script  # the sample points at its installed location
    (hooks_dir / "demo-hook.json").write_text(json.dumps(sample))
    (hooks_dir / "broken.json").write_text("{")

    sock_path = str(tmp_path / "nri.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen()
    listener.setblocking(False)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nri_hook_injector",
        "--idx",
        "10",
        "--name",
        "hook-injector",
        "--socket-path",
        sock_path,
        "--hook-dirs",
        f"{tmp_path / 'missing'},{hooks_dir}",
        "--poll-interval",
        "0",
        stderr=asyncio.subprocess.PIPE,
    )
    mux: Mux | None = None
    try:
        mux, client, registered = await serve_one_plugin(listener)
        request = await registered
        assert (request.plugin_name, request.plugin_idx) == ("hook-injector", "10")
        configured = await client.call(
            PLUGIN,
            "Configure",
            pb.ConfigureRequest(
                runtime_name="scripted",
                runtime_version="1.0",
                registration_timeout=5000,
                request_timeout=2000,
            ),
            pb.ConfigureResponse,
            timeout=5,
        )
        assert configured.events == 1 << (pb.CREATE_CONTAINER - 1)
        await client.call(
            PLUGIN, "Synchronize", pb.SynchronizeRequest(), pb.SynchronizeResponse, timeout=5
        )

        pod = pb.PodSandbox(id="p1", name="pod", namespace="default")

        async def create(args: list[str]) -> pb.CreateContainerResponse:
            ctr = pb.Container(id="c-" + args[0], pod_sandbox_id="p1", name="ctr", args=args)
            return await client.call(
                PLUGIN,
                "CreateContainer",
                pb.CreateContainerRequest(pod=pod, container=ctr),
                pb.CreateContainerResponse,
                timeout=5,
            )

        reply = await create(["/bin/busybox", "sleep", "1"])
        hook = make_hook(
            script,
            ["nri-demo-hook.sh", "injected", "by", "nri-hook-injector"],
            ["DEMO_HOOK_LOG=/tmp/nri-demo-hook.log"],
            5,
        )
        assert reply.adjust == pb.ContainerAdjustment(
            hooks=pb.Hooks(prestart=[hook], poststop=[hook])
        )
        assert not reply.update and not reply.evict

        reply = await create(["/usr/bin/python3"])
        assert not reply.HasField("adjust")
    finally:
        if mux is not None:
            mux.close()
            await mux.wait_closed()
        listener.close()
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode()
        await proc.wait()
    assert f"skipping broken hook file {hooks_dir / 'broken.json'}: " in stderr
    assert "pod/ctr: injecting hooks from demo-hook.json" in stderr
