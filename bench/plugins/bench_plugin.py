"""A stub plugin for the benchmarks: answers CreateContainer with a small adjustment.

The adjustment's keys carry the plugin's name so several instances never conflict.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable

import yaml

from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.stub import Plugin, run


class BenchPlugin(Plugin):
    """Adds one environment variable and one annotation per container; with a
    configuration ``delay_ms: N`` it first waits N ms, as a plugin asking a device or
    cgroup manager does."""

    delay = 0.0

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        settings = yaml.safe_load(config) if config else None
        if isinstance(settings, dict):
            self.delay = float(settings.get("delay_ms", 0)) / 1000

    def create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> Adjustment | Awaitable[Adjustment]:
        # The host shows its indexed name, "NN-name"; the keys use the bare name.
        name = self.stub.full_name.partition("-")[2] if self.stub is not None else "bench"
        adjustment = Adjustment().add_env(f"BENCH_{name.upper()}", "1").add_annotation(name, "seen")
        if self.delay:
            return self._after_delay(adjustment)
        return adjustment

    async def _after_delay(self, adjustment: Adjustment) -> Adjustment:
        await asyncio.sleep(self.delay)
        return adjustment


if __name__ == "__main__":
    sys.exit(run(BenchPlugin))
