"""Adaptation overhead: CreateContainer through the runtime adaptation with one plugin,
against the same plugin's bare round trip (bench_stub.py's minimal runtime peer), in one run.

Both sides use bench/plugins/bench_plugin.py and a fresh copy of the same request per call
(made before each block of calls, not timed). Both plugin processes run side by side and are
measured in short alternating blocks of calls, so both see the same machine load even when it
changes within the run; the ratio is of the pooled p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import percentile, print_table, sample_create_request, target_row
from bench_adaptation import bench_config, no_sync, no_update
from bench_stub import PLUGIN, Launched

from nri.adaptation import Adaptation
from nri.api import api_pb2 as pb

TARGET_RATIO = 1.3


def fresh_requests(
    template: pb.CreateContainerRequest, first: int, count: int
) -> list[pb.CreateContainerRequest]:
    """``count`` copies of ``template`` with container IDs from ``first`` on, as a runtime
    builds one request per event (the adaptation also changes the request it gets)."""
    requests = []
    for i in range(first, first + count):
        request = pb.CreateContainerRequest()
        request.CopyFrom(template)
        request.container.id = f"{i:064x}"
        requests.append(request)
    return requests


async def bare_block(
    plugin: Launched, template: pb.CreateContainerRequest, first: int, count: int
) -> list[float]:
    """Latencies (seconds) of ``count`` bare CreateContainer round trips to ``plugin``."""
    call = plugin.client.call
    clock = time.perf_counter
    latencies = []
    for request in fresh_requests(template, first, count):
        t0 = clock()
        await call(PLUGIN, "CreateContainer", request, pb.CreateContainerResponse, timeout=2)
        latencies.append(clock() - t0)
    return latencies


async def adapted_block(
    adaptation: Adaptation, template: pb.CreateContainerRequest, first: int, count: int
) -> list[float]:
    """Latencies (seconds) of ``count`` CreateContainer events through ``adaptation``."""
    clock = time.perf_counter
    latencies = []
    for request in fresh_requests(template, first, count):
        t0 = clock()
        reply = await adaptation.create_container(request)
        latencies.append(clock() - t0)
        assert len(reply.adjust.env) == 1, reply
    return latencies


async def measure(count: int, block: int) -> list[dict[str, object]]:
    template = sample_create_request()
    bare: list[float] = []
    adapted: list[float] = []
    plugin = Launched(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = bench_config(Path(tmp), 1)
        try:
            await plugin.start()
            async with Adaptation(config, sync=no_sync, update=no_update) as adaptation:
                await adaptation.wait_for_plugins(1, timeout=60)
                # Warm-up, not recorded.
                await bare_block(plugin, template, count, count // 10)
                await adapted_block(adaptation, template, count, count // 10)
                done = 0
                while done < count:
                    size = min(block, count - done)
                    # Alternate which side goes first, so neither always follows the other.
                    sides = ("bare", "adapted") if (done // block) % 2 == 0 else ("adapted", "bare")
                    for side in sides:
                        if side == "bare":
                            bare.extend(await bare_block(plugin, template, done, size))
                        else:
                            adapted.extend(await adapted_block(adaptation, template, done, size))
                    done += size
        finally:
            await plugin.stop()
    bare_p50, adapted_p50 = percentile(bare, 0.5), percentile(adapted, 0.5)
    ratio = adapted_p50 / bare_p50
    return [
        target_row(
            "adaptation CreateContainer p50 / bare plugin round trip p50, 1 plugin",
            ratio,
            "x",
            f"<= {TARGET_RATIO}x",
            ratio <= TARGET_RATIO,
            adaptation_p50_us=round(adapted_p50 * 1e6, 1),
            bare_p50_us=round(bare_p50 * 1e6, 1),
            n=len(adapted),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000, help="calls per side")
    parser.add_argument("--block", type=int, default=100, help="calls per alternating block")
    options = parser.parse_args(argv)
    rows = asyncio.run(measure(options.count, options.block))
    print_table("runtime adaptation overhead over a bare plugin round trip, same run", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
