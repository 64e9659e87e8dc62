"""Plugin start-up benchmark: idle RSS and spawn-to-registered of nri-template, beside a bare
interpreter measured the same way in the same run.

The plugin is the template plugin's console script (``nri-template``, or ``python -m
nri_template`` when no script is installed next to this interpreter), launched as a runtime
launches a pre-installed plugin: a socketpair end on fd 3 and upstream's environment. The
runtime side is the minimal NRI peer of bench_stub.py in this process; it answers
RegisterPlugin, then configures and synchronizes the plugin.

Bare interpreter: RSS of ``python -c 'import time; time.sleep(..)'`` read the same way, and
``python -c pass`` from spawn to exit.

Run it where the imported modules have up-to-date ``.pyc`` files (``tox -e bench`` installs
them): with ``PYTHONDONTWRITEBYTECODE`` set and a source tree whose ``.pyc`` files are stale,
every start compiles the changed modules again and both rows read high.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from _common import percentile, print_table, target_row
from bench_stub import Launched

RSS_TARGET_MB = 16
SPAWN_TARGET_MS = 40
SETTLE_S = 1.0


def template_command() -> list[str]:
    """How to start the template plugin with this interpreter."""
    script = Path(sys.executable).with_name("nri-template")
    if script.exists():
        return [sys.executable, str(script), "--log-level", "warning"]
    return [sys.executable, "-m", "nri_template", "--log-level", "warning"]


async def bare_rss() -> int:
    """RSS (bytes) of an idle bare interpreter after the settle time."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    try:
        await asyncio.sleep(SETTLE_S)
        return int(psutil.Process(process.pid).memory_info().rss)
    finally:
        process.kill()
        await process.wait()


async def bare_start() -> float:
    """Seconds from spawning ``python -c pass`` to its exit."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await process.wait()
    return time.perf_counter() - started


async def plugin_rss(argv: list[str]) -> int:
    """RSS (bytes) of the registered, synchronized, idle plugin after the settle time."""
    plugin = Launched(argv, quiet=True)
    try:
        await plugin.start()
        assert plugin.process is not None
        await asyncio.sleep(SETTLE_S)
        return int(psutil.Process(plugin.process.pid).memory_info().rss)
    finally:
        await plugin.stop()


async def plugin_start(argv: list[str]) -> float:
    """Seconds from spawning the plugin to its RegisterPlugin arriving."""
    plugin = Launched(argv, quiet=True)
    try:
        return await plugin.start()
    finally:
        await plugin.stop()


async def measure(runs: int) -> list[dict[str, object]]:
    argv = template_command()
    # Alternate plugin and bare runs so both see the same machine load.
    spawn: list[float] = []
    bare: list[float] = []
    await plugin_start(argv)  # warm the page cache and .pyc files
    await bare_start()
    for _ in range(runs):
        spawn.append(await plugin_start(argv))
        bare.append(await bare_start())
    rss, bare_bytes = await plugin_rss(argv), await bare_rss()

    rows = []
    for unit, size in (("MB", 10**6), ("MiB", 2**20)):
        rows.append(
            target_row(
                f"nri-template idle RSS ({unit})",
                rss / size,
                unit,
                f"<= {RSS_TARGET_MB} {unit}",
                rss / size <= RSS_TARGET_MB,
                bare=round(bare_bytes / size, 2),
                over_bare=round((rss - bare_bytes) / size, 2),
            )
        )
    p50, bare_p50 = statistics.median(spawn) * 1e3, statistics.median(bare) * 1e3
    rows.append(
        target_row(
            f"nri-template spawn to registered, p50 of {runs}",
            p50,
            "ms",
            f"<= {SPAWN_TARGET_MS} ms",
            p50 <= SPAWN_TARGET_MS,
            bare=round(bare_p50, 2),
            over_bare=round(p50 - bare_p50, 2),
            p90=round(percentile(spawn, 0.9) * 1e3, 2),
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args(argv)
    rows = asyncio.run(measure(options.runs))
    print_table(
        "plugin start-up beside a bare interpreter in the same run "
        "(bare: `python -c 'import time; time.sleep(..)'` RSS, `python -c pass` spawn to exit)",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
