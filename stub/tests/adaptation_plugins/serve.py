"""A runtime in its own process, for tests that watch its fds and memory from outside.

Serves external plugins on ``--socket`` with a one-container state; prints ``ready`` once
listening and ``registered NN-name`` per plugin, logs to stderr, and exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys

from nri.adaptation import Adaptation, Config
from nri.api import api_pb2 as pb


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--nofile", type=int, default=0, help="lower RLIMIT_NOFILE to this")
    parser.add_argument("--max-unregistered", type=int, default=None)
    parser.add_argument("--registration-timeout", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    if args.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    config = Config(
        runtime_name="serve",
        runtime_version="1",
        socket_path=args.socket,
        plugin_path="/nonexistent",
        registration_timeout=args.registration_timeout,
    )
    if args.max_unregistered is not None:
        config.max_unregistered_connections = args.max_unregistered

    async def sync() -> tuple[list[pb.PodSandbox], list[pb.Container]]:
        return [pb.PodSandbox(id="pod0")], [pb.Container(id="ctr0", pod_sandbox_id="pod0")]

    async def update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        return []

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with Adaptation(
        config,
        sync=sync,
        update=update,
        on_plugin_registered=lambda info: print("registered", info.full_name, flush=True),
    ):
        print("ready", flush=True)
        await stdin.read()


if __name__ == "__main__":
    asyncio.run(main())
