"""Per-pod concurrency: 8 pods creating containers at once through 3 plugin processes.

The runtime adaptation launches 3 copies of bench/plugins/bench_plugin.py. Eight pods each
create containers one after another, all pods at the same time, once with the events
serialized (upstream, the default) and once with ``Config.per_pod_concurrency``. A plugin
either answers at once (all time is CPU: two cores here) or spends ``delay`` waiting in each
CreateContainer, as a plugin does that asks a device or cgroup manager. Target: the
concurrent throughput at least 2x the serialized one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, sample_create_request
from bench_adaptation import bench_config, no_sync, no_update

from nri.adaptation import Adaptation
from nri.api import api_pb2 as pb

TARGET = 2.0


async def throughput(pods: int, per_pod: int, delay_ms: float, concurrent: bool) -> float:
    """Containers created per second with ``pods`` pods creating ``per_pod`` each at once."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = dataclasses.replace(bench_config(root, 3), per_pod_concurrency=concurrent)
        for conf in (root / "plugins").iterdir():
            (root / "conf.d" / f"{conf.name}.conf").write_text(f"delay_ms: {delay_ms}\n")
        async with Adaptation(config, sync=no_sync, update=no_update) as adaptation:
            await adaptation.wait_for_plugins(3, timeout=60)
            template = sample_create_request()

            async def pod_life(p: int, count: int) -> None:
                for i in range(count):
                    request = pb.CreateContainerRequest()
                    request.CopyFrom(template)
                    request.pod.id = f"pod{p}"
                    request.container.id = f"{p:02d}{i:062x}"
                    request.container.pod_sandbox_id = request.pod.id
                    await adaptation.create_container(request)

            await asyncio.gather(*(pod_life(p, 3) for p in range(pods)))  # warm up
            started = time.perf_counter()
            await asyncio.gather(*(pod_life(p, per_pod) for p in range(pods)))
            return pods * per_pod / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=8)
    parser.add_argument("--containers", type=int, default=40, help="per pod")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    for delay_ms in (0.0, 1.0):
        best = {False: 0.0, True: 0.0}
        for _ in range(options.rounds):  # interleaved, best of each
            for concurrent in (False, True):
                rate = asyncio.run(
                    throughput(options.pods, options.containers, delay_ms, concurrent)
                )
                best[concurrent] = max(best[concurrent], rate)
        ratio = best[True] / best[False]
        rows.append(
            {
                "benchmark": f"{options.pods} pods x 3 plugins, plugin waits {delay_ms:g} ms",
                "serialized": round(best[False]),
                "per-pod": round(best[True]),
                "unit": "containers/s",
                "ratio": f"{ratio:.2f}x",
                "target": f">= {TARGET:g}x",
                "met": "yes" if ratio >= TARGET else "NO",
            }
        )
    print_table("Per-pod concurrency: CreateContainer throughput", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
