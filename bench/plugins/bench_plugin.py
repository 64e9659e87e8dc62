"""A stub plugin for the benchmarks: answers CreateContainer with a small adjustment.

The adjustment's keys carry the plugin's name so several instances never conflict.
"""

from __future__ import annotations

import sys

from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.stub import Plugin, run


class BenchPlugin(Plugin):
    """Adds one environment variable and one annotation per container."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        name = self.stub.name if self.stub is not None else "bench"
        return Adjustment().add_env(f"BENCH_{name.upper()}", "1").add_annotation(name, "seen")


if __name__ == "__main__":
    sys.exit(run(BenchPlugin))
