"""Synchronize at scale: 10,000 containers through 3 plugin processes.

The runtime adaptation starts with 3 pre-installed copies of bench/plugins/bench_plugin.py
and a sync function reporting the pods and containers; the time is from starting the
adaptation until all 3 plugins are registered and synchronized (upstream splits a large
state into several Synchronize messages; ours does the same). The same start with nothing
to synchronize, in the same run, shows what the state itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, sample_container, sample_pod
from bench_adaptation import bench_config, no_update

from nri.adaptation import Adaptation
from nri.api import api_pb2 as pb

CONTAINERS_PER_POD = 5


def state(containers: int) -> tuple[list[pb.PodSandbox], list[pb.Container]]:
    """``containers`` containers, ``CONTAINERS_PER_POD`` to a pod."""
    pods = [sample_pod(i) for i in range(-(-containers // CONTAINERS_PER_POD))]
    ctrs = []
    for i in range(containers):
        ctr = sample_container(i // CONTAINERS_PER_POD)
        ctr.id = f"c{i:063x}"
        ctrs.append(ctr)
    return pods, ctrs


async def start_to_synchronized(plugins: int, containers: int) -> float:
    """Seconds from starting the adaptation until ``plugins`` plugins are synchronized."""
    pods, ctrs = state(containers)

    async def sync() -> tuple[list[pb.PodSandbox], list[pb.Container]]:
        return pods, ctrs

    with tempfile.TemporaryDirectory() as tmp:
        adaptation = Adaptation(bench_config(Path(tmp), plugins), sync=sync, update=no_update)
        started = time.perf_counter()
        async with adaptation:
            await adaptation.wait_for_plugins(plugins, timeout=300)
            return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10_000)
    parser.add_argument("--plugins", type=int, default=3)
    options = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    for containers in (0, options.containers):
        seconds = asyncio.run(start_to_synchronized(options.plugins, containers))
        rows.append(
            {
                "benchmark": f"start to {options.plugins} plugins synchronized",
                "containers": containers,
                "pods": -(-containers // CONTAINERS_PER_POD),
                "value": round(seconds * 1e3, 1),
                "unit": "ms",
                "target": "none set (reported)",
                "met": "n/a",
            }
        )
    print_table("Synchronize at scale through the runtime adaptation", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
