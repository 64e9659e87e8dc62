"""Runtime adaptation benchmark: CreateContainer through 1, 3 and 10 plugin processes.

Our runtime adaptation launches N copies of bench/plugins/bench_plugin.py as pre-installed
plugins (each adds its own env var and annotation, so nothing conflicts) and the benchmark
sends CreateContainer events through it one after another, as a runtime does for one pod.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, sample_create_request, summarize

from nri.adaptation import Adaptation, Config
from nri.api import api_pb2 as pb

SCRIPT = Path(__file__).parent / "plugins" / "bench_plugin.py"
UPSTREAM = {1: "3,600/s, p50 250us", 3: "1,550/s", 10: "300/s, p50 3ms"}


def install_plugins(plugin_dir: Path, count: int) -> None:
    """Put ``count`` executables named NN-benchN into ``plugin_dir``."""
    for i in range(count):
        path = plugin_dir / f"{10 + i:02d}-bench{i}"
        path.write_text(f"#!{sys.executable}\n" + SCRIPT.read_text())
        path.chmod(0o755)


async def no_sync() -> tuple[list[pb.PodSandbox], list[pb.Container]]:
    return [], []


async def no_update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
    return []


def bench_config(root: Path, plugins: int) -> Config:
    """An adaptation configuration in ``root`` with ``plugins`` bench plugins installed."""
    (root / "plugins").mkdir()
    (root / "conf.d").mkdir()
    install_plugins(root / "plugins", plugins)
    return Config(
        runtime_name="bench",
        runtime_version="0.1",
        socket_path=str(root / "nri.sock"),
        plugin_path=str(root / "plugins"),
        plugin_config_path=str(root / "conf.d"),
    )


async def create_latencies(plugins: int, count: int) -> tuple[list[float], float]:
    """Send ``count`` CreateContainer events (after ``count // 10`` to warm up) through an
    adaptation with ``plugins`` plugin processes; return each event's latency and the wall
    time, in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        config = bench_config(Path(tmp), plugins)
        async with Adaptation(config, sync=no_sync, update=no_update) as adaptation:
            await adaptation.wait_for_plugins(plugins, timeout=60)
            template = sample_create_request()
            requests = []
            for i in range(count + count // 10):
                request = pb.CreateContainerRequest()
                request.CopyFrom(template)
                request.container.id = f"{i:064x}"
                requests.append(request)
            for request in requests[count:]:  # warm up
                await adaptation.create_container(request)
            latencies = []
            clock = time.perf_counter
            start = clock()
            for request in requests[:count]:
                t0 = clock()
                reply = await adaptation.create_container(request)
                latencies.append(clock() - t0)
            wall = clock() - start
            assert len(reply.adjust.env) == plugins, reply
    return latencies, wall


async def measure(plugins: int, count: int) -> dict[str, object]:
    latencies, wall = await create_latencies(plugins, count)
    row = summarize(f"CreateContainer, {plugins} plugin process(es)", latencies, wall)
    row["upstream_go"] = UPSTREAM.get(plugins, "")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--plugins", type=int, nargs="+", default=[1, 3, 10])
    options = parser.parse_args(argv)
    rows = [asyncio.run(measure(n, options.count)) for n in options.plugins]
    print_table(
        "runtime adaptation + stub plugins, sequential CreateContainer events "
        "(target: at least upstream Go's rates)",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
