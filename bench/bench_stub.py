"""Plugin stub benchmark: per-event overhead, idle RSS and spawn-to-registered time.

The plugin is a real process (bench/plugins/bench_plugin.py, built on nri.stub) launched the
way a runtime launches a pre-installed plugin: a socketpair end on fd 3 and upstream's three
environment variables. The runtime side is a minimal NRI peer in this process (mux + ttRPC):
it answers RegisterPlugin, configures, synchronizes and then sends CreateContainer events.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, sample_create_request, summarize

from nri.api import api_pb2 as pb
from nri.net import (
    PLUGIN_SERVICE_CONN,
    RUNTIME_SERVICE_CONN,
    Mux,
    plugin_environment,
    socketpair,
    spawn_with_socket,
)
from nri.ttrpc import Client, Method, Server

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME = "nri.pkg.api.v1alpha1.Runtime"
SCRIPT = Path(__file__).parent / "plugins" / "bench_plugin.py"


class Launched:
    """One launched plugin process with the runtime's end of its connection."""

    def __init__(self, argv: list[str] | None = None, *, quiet: bool = False) -> None:
        self.argv = argv or [sys.executable, str(SCRIPT), "--log-level", "warning"]
        self.quiet = quiet  # drop the plugin's stderr (its "runtime went away" at stop)
        self.registered = asyncio.get_running_loop().create_future()
        self.client = Client()
        self.process: asyncio.subprocess.Process | None = None
        self.mux: Mux | None = None

    async def start(self, idx: str = "50", name: str = "bench") -> float:
        """Spawn the plugin; return seconds from spawn to its RegisterPlugin arriving."""
        local, peer = socketpair()
        self.mux = await Mux.from_socket(local)
        server = Server()

        async def register(request: pb.RegisterPluginRequest) -> pb.Empty:
            if not self.registered.done():
                self.registered.set_result(time.perf_counter())
            return pb.Empty()

        server.register(RUNTIME, {"RegisterPlugin": Method(pb.RegisterPluginRequest, register)})
        self.mux.open(PLUGIN_SERVICE_CONN, self.client)
        self.mux.open(RUNTIME_SERVICE_CONN, server.connection())
        started = time.perf_counter()
        self.process = await spawn_with_socket(
            self.argv,
            peer,
            plugin_environment(name, idx),
            stderr=subprocess.DEVNULL if self.quiet else None,
        )
        peer.close()
        registered_at = await asyncio.wait_for(self.registered, 30)
        await self.client.call(
            PLUGIN,
            "Configure",
            pb.ConfigureRequest(
                runtime_name="bench", registration_timeout=5000, request_timeout=2000
            ),
            pb.ConfigureResponse,
            timeout=5,
        )
        await self.client.call(
            PLUGIN, "Synchronize", pb.SynchronizeRequest(), pb.SynchronizeResponse, timeout=5
        )
        return float(registered_at - started)

    async def stop(self) -> None:
        if self.mux is not None:
            self.mux.close()
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def round_trips(plugin: Launched, count: int) -> tuple[list[float], float]:
    """Send ``count`` CreateContainer calls (after ``count // 10`` to warm up) one after
    another; return each call's latency and the wall time, in seconds."""
    request = sample_create_request()
    call = plugin.client.call
    for _ in range(count // 10):
        await call(PLUGIN, "CreateContainer", request, pb.CreateContainerResponse, timeout=2)
    latencies = []
    clock = time.perf_counter
    start = clock()
    for _ in range(count):
        t0 = clock()
        await call(PLUGIN, "CreateContainer", request, pb.CreateContainerResponse, timeout=2)
        latencies.append(clock() - t0)
    return latencies, clock() - start


async def measure(count: int, spawns: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    spawn_times = []
    for _ in range(spawns):
        plugin = Launched()
        spawn_times.append(await plugin.start())
        await plugin.stop()

    plugin = Launched()
    await plugin.start()
    assert plugin.process is not None
    await asyncio.sleep(1.0)
    idle_rss = psutil.Process(plugin.process.pid).memory_info().rss
    latencies, wall = await round_trips(plugin, count)
    await plugin.stop()

    row = summarize("stub plugin CreateContainer round trip", latencies, wall)
    row["target"] = "p50<=250us, >=3600/s"
    rows.append(row)
    # RSS in both units: ps and top count in KiB (so MiB), the target does not say which.
    for unit, size in (("MiB", 2**20), ("MB", 10**6)):
        rows.append(
            {
                "benchmark": f"idle plugin process RSS ({unit})",
                "n": 1,
                "per_s": "",
                "p50_us": "",
                "p99_us": "",
                "mean_us": round(idle_rss / size, 1),
                "target": "<=25",
            }
        )
    rows.append(
        {
            "benchmark": "spawn to registered (ms)",
            "n": spawns,
            "per_s": "",
            "p50_us": round(statistics.median(spawn_times) * 1e3, 1),
            "p99_us": round(max(spawn_times) * 1e3, 1),
            "mean_us": round(statistics.fmean(spawn_times) * 1e3, 1),
            "target": "<=150 ms",
        }
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--spawns", type=int, default=10)
    options = parser.parse_args(argv)
    rows = asyncio.run(measure(options.count, options.spawns))
    print_table(
        "plugin stub: runtime peer in this process, plugin in its own process "
        "(RSS row: value in mean column; spawn row: ms in p50/max/mean columns)",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
