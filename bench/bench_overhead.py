"""Adaptation overhead: CreateContainer through the runtime adaptation with one plugin,
against the same plugin's bare round trip (bench_stub.py's minimal runtime peer), in one run.

Both sides use bench/plugins/bench_plugin.py and the same request; the two are measured in
alternating rounds so both see the same machine load, and the ratio is of the pooled p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import percentile, print_table, target_row
from bench_adaptation import create_latencies
from bench_stub import Launched, round_trips

TARGET_RATIO = 1.3


async def bare_latencies(count: int) -> list[float]:
    """Latencies (seconds) of ``count`` bare CreateContainer round trips to one plugin."""
    plugin = Launched(quiet=True)
    try:
        await plugin.start()
        latencies, _ = await round_trips(plugin, count)
    finally:
        await plugin.stop()
    return latencies


async def measure(count: int, rounds: int) -> list[dict[str, object]]:
    bare: list[float] = []
    adapted: list[float] = []
    for _ in range(rounds):
        bare.extend(await bare_latencies(count))
        adapted.extend((await create_latencies(1, count))[0])
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
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args(argv)
    rows = asyncio.run(measure(options.count, options.rounds))
    print_table("runtime adaptation overhead over a bare plugin round trip, same run", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
