"""Test plugin for the mock runtime's scenario and CLI tests.

Flags on top of the shared plugin flags:

``--env NAME=VALUE``  add the variable to every new container (repeatable)
``--refuse NAME``     fail the creation of containers called NAME
``--crash-on NAME``   exit at once (without answering) when a container NAME is created
``--sync-shares N``   in Synchronize, set the CPU shares of every existing container to N
``--later-shares N``  a moment after a container is created, set its CPU shares to N with an
                      unsolicited update
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.stub import Plugin, argument_parser, run


class ScenarioPlugin(Plugin):
    def __init__(
        self,
        env: Sequence[str] = (),
        refuse: str | None = None,
        sync_shares: int | None = None,
        later_shares: int | None = None,
        crash_on: str | None = None,
    ) -> None:
        self.env = [item.partition("=")[::2] for item in env]
        self.refuse = refuse
        self.sync_shares = sync_shares
        self.later_shares = later_shares
        self.crash_on = crash_on
        self.tasks: set[asyncio.Task[Any]] = set()

    def synchronize(self, pods: Any, containers: Sequence[pb.Container]) -> Any:
        if self.sync_shares is None:
            return None
        return [Update(c.id).set_linux_cpu_shares(self.sync_shares) for c in containers]

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        if container.name == self.crash_on:
            os._exit(7)
        if container.name == self.refuse:
            raise RuntimeError(f"refusing to create container {container.name}")
        if self.later_shares is not None:
            task = asyncio.ensure_future(self._later(container.id, self.later_shares))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        adjust = Adjustment()
        for name, value in self.env:
            adjust.add_env(name, value)
        return adjust

    async def _later(self, container_id: str, shares: int) -> None:
        await asyncio.sleep(0.05)
        await self.update_containers([Update(container_id).set_linux_cpu_shares(shares)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(prog="scenario-plugin")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--refuse")
    parser.add_argument("--sync-shares", type=int)
    parser.add_argument("--later-shares", type=int)
    parser.add_argument("--crash-on")
    args = parser.parse_args(argv)
    plugin = ScenarioPlugin(
        args.env, args.refuse, args.sync_shares, args.later_shares, args.crash_on
    )
    return run(plugin, args=args)


if __name__ == "__main__":
    sys.exit(main())
