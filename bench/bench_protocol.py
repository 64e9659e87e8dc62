"""Protocol core benchmark: a ttRPC call over the NRI multiplexer vs a raw socket ping-pong.

Two processes joined by a unix socketpair. The floor is a blocking ping-pong of the same
number of bytes the ttRPC request and response carry; the measured path is a
Plugin/CreateContainer call with a realistic ~2 KB CreateContainerRequest through our
ttRPC client, mux, socket, mux, ttRPC server and back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, sample_create_request, summarize

from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.net import PLUGIN_SERVICE_CONN, Mux
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve_floor(fd: int, request_size: int, response_size: int) -> None:
    """Child: echo ``response_size`` bytes for every ``request_size`` bytes received."""
    sock = socket.socket(fileno=fd)
    reply = b"r" * response_size
    try:
        while True:
            _recv_exactly(sock, request_size)
            sock.sendall(reply)
    except (EOFError, ConnectionError):
        return


async def serve_ttrpc(fd: int) -> None:
    """Child: a Plugin service answering CreateContainer with a small adjustment."""
    adjust = Adjustment().add_env("BENCH", "1").message

    async def create(request: object) -> pb.CreateContainerResponse:
        return pb.CreateContainerResponse(adjust=adjust)

    server = Server()
    server.register(PLUGIN, {"CreateContainer": Method(pb.CreateContainerRequest, create)})
    mux = await Mux.from_socket(socket.socket(fileno=fd))
    mux.open(PLUGIN_SERVICE_CONN, server.connection())
    await mux.wait_closed()


def spawn(mode: str, peer: socket.socket, *extra: str) -> subprocess.Popen[bytes]:
    fd = peer.fileno()
    os.set_inheritable(fd, True)
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, str(fd), *extra], pass_fds=(fd,)
    )


def bench_floor(count: int, request_size: int, response_size: int) -> dict[str, object]:
    local, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = spawn("floor", peer, str(request_size), str(response_size))
    peer.close()
    payload = b"q" * request_size
    latencies = []
    for _ in range(count // 10):  # warm up
        local.sendall(payload)
        _recv_exactly(local, response_size)
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        local.sendall(payload)
        _recv_exactly(local, response_size)
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    local.close()
    child.wait()
    return summarize(f"raw socket ping-pong {request_size}/{response_size} B", latencies, wall)


async def _bench_ttrpc(count: int) -> tuple[dict[str, object], int, int]:
    local, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = spawn("ttrpc", peer)
    peer.close()
    mux = await Mux.from_socket(local)
    client = Client()
    mux.open(PLUGIN_SERVICE_CONN, client)
    request = sample_create_request()
    call = client.call
    for _ in range(count // 10):
        await call(PLUGIN, "CreateContainer", request, pb.CreateContainerResponse, timeout=2.0)
    latencies = []
    clock = time.perf_counter
    start = clock()
    for _ in range(count):
        t0 = clock()
        reply = await call(
            PLUGIN, "CreateContainer", request, pb.CreateContainerResponse, timeout=2.0
        )
        latencies.append(clock() - t0)
    wall = clock() - start
    mux.close()
    await mux.wait_closed()
    child.wait()
    # Sizes on the wire: mux header + ttRPC header + envelope, each way.
    request_wire = len(request.SerializeToString()) + 8 + 10 + 60
    response_wire = len(reply.SerializeToString()) + 8 + 10 + 2
    row = summarize("ttRPC CreateContainer over mux", latencies, wall)
    return row, request_wire, response_wire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        mode, fd, *rest = options.serve
        if mode == "floor":
            serve_floor(int(fd), int(rest[0]), int(rest[1]))
        else:
            asyncio.run(serve_ttrpc(int(fd)))
        return 0
    size = len(sample_create_request().SerializeToString())
    ttrpc_row, request_wire, response_wire = asyncio.run(_bench_ttrpc(options.count))
    floor_row = bench_floor(options.count, request_wire, response_wire)
    ratio = float(ttrpc_row["p50_us"]) / float(floor_row["p50_us"])  # type: ignore[arg-type]
    ttrpc_row["x_floor_p50"] = ratio
    floor_row["x_floor_p50"] = 1.0
    print_table(
        f"protocol core: CreateContainerRequest of {size} B, two processes, unix socket "
        f"(target: ttRPC p50 <= 3x floor)",
        [floor_row, ttrpc_row],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
