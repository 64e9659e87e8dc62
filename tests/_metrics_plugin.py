"""Plugin command of tests/test_metrics_real_plugins.py: each flag provokes one thing the
runtime's metrics count.

``--env NAME=VALUE``   add the variable to every new container (repeatable; two plugins
                       setting one variable conflict)
``--sleep-on NAME``    sleep ``--sleep`` seconds before answering the creation of container NAME
``--update NAME``      once container NAME is created, set its CPU shares with an
                       unsolicited UpdateContainers request
``--evict NAME``       once container NAME is created, ask for its eviction with an
                       unsolicited UpdateContainers request
``--evict-in-reply NAME``  answer the creation of any container by asking to evict the
                       container NAME
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.stub import Plugin, argument_parser, run

REASON = "evicted by the metrics test plugin"


class MetricsPlugin(Plugin):
    def __init__(self, args: Any) -> None:
        self.env = [item.partition("=")[::2] for item in args.env]
        self.sleep_on: str | None = args.sleep_on
        self.sleep: float = args.sleep
        self.update: str | None = args.update
        self.evict: str | None = args.evict
        self.evict_in_reply: str | None = args.evict_in_reply
        self.tasks: set[asyncio.Task[Any]] = set()

    async def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        if container.name == self.sleep_on:
            await asyncio.sleep(self.sleep)
        if container.name in (self.update, self.evict):
            # Sent once this event is over: the runtime handles one request at a time.
            task = asyncio.ensure_future(self._later(container.id, container.name))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        adjust = Adjustment()
        for name, value in self.env:
            adjust.add_env(name, value)
        if self.evict_in_reply is not None:
            return [adjust, pb.ContainerEviction(container_id=self.evict_in_reply, reason=REASON)]
        return adjust

    async def _later(self, container_id: str, name: str) -> None:
        await asyncio.sleep(0.05)
        if name == self.update:
            await self.update_containers([Update(container_id).set_linux_cpu_shares(512)])
        if name == self.evict:
            eviction = pb.ContainerEviction(container_id=container_id, reason=REASON)
            await self.update_containers([], [eviction])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(prog="metrics-plugin")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--sleep-on")
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--update")
    parser.add_argument("--evict")
    parser.add_argument("--evict-in-reply")
    args = parser.parse_args(argv)
    return run(MetricsPlugin(args), args=args)


if __name__ == "__main__":
    sys.exit(main())
