"""Pre-installed plugin start: spawn-to-registered time of ulimit-adjuster as a shiv zipapp
(deploy/zipapps.sh) against the same plugin installed in a venv, both launched by the mock
runtime with the socket on fd 3. Target: the zipapp within 1.5x of the venv command.

Usage: python bench/bench_zipapp.py [--spawns N]   (builds both from the checkout first)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table

from nri.mock import MockRuntime

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "ulimit-adjuster"


def build(work: Path) -> tuple[list[str], list[str]]:
    """The venv command and the zipapp of the plugin, built from the checkout's wheels."""
    wheels = work / "wheels"
    env = dict(os.environ, NRI_BUILD_RELEASE="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", wheels,
         ROOT / "stub", ROOT / "plugins" / PLUGIN],
        check=True, env=env,
    )  # fmt: skip
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", wheels, f"nri-{PLUGIN}"],
        check=True,
    )  # fmt: skip
    shiv = shutil.which("shiv") or str(Path(sys.executable).with_name("shiv"))
    env.update(NRI_WHEELHOUSE=str(wheels), NRI_ZIPAPP_ROOT=str(work / "unpack"), SHIV=shiv)
    subprocess.run(["bash", ROOT / "deploy/zipapps.sh", work / "zipapps", PLUGIN], check=True,
                   env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    installed = work / "plugins" / f"10-{PLUGIN}"
    installed.parent.mkdir()
    shutil.copy(work / "zipapps" / f"nri-{PLUGIN}.pyz", installed)
    return [str(venv / "bin" / f"nri-{PLUGIN}")], [str(installed)]


async def spawn_times(work: Path, command: list[str], spawns: int) -> list[float]:
    """Seconds from spawn to registered, each spawn a fresh process."""
    times = []
    async with MockRuntime(socket_path=work / "nri.sock") as runtime:
        for _ in range(spawns):
            started = time.perf_counter()
            handle = await runtime.launch_plugin(command, name=PLUGIN, idx="10", timeout=30)
            times.append(time.perf_counter() - started)
            handle.process.terminate()
            await handle.process.wait()
    return times


async def measure(spawns: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="nri-bench-zipapp-") as tmp:
        work = Path(tmp)
        venv_command, zipapp_command = build(work)
        [cold] = await spawn_times(work, zipapp_command, 1)  # unpacks the zipapp
        rows = []
        results = {}
        for label, command in (("venv command", venv_command), ("zipapp", zipapp_command)):
            await spawn_times(work, command, 1)  # warm the page cache
            samples = await spawn_times(work, command, spawns)
            results[label] = statistics.median(samples)
            rows.append({
                "benchmark": f"spawn to registered, {label} (ms)",
                "n": spawns,
                "p50_ms": statistics.median(samples) * 1e3,
                "max_ms": max(samples) * 1e3,
                "mean_ms": statistics.fmean(samples) * 1e3,
            })  # fmt: skip
        rows.append({
            "benchmark": "zipapp first start, unpacking (ms)",
            "n": 1, "p50_ms": cold * 1e3, "max_ms": cold * 1e3, "mean_ms": cold * 1e3,
        })  # fmt: skip
        ratio = results["zipapp"] / results["venv command"]
        rows.append({"benchmark": "zipapp / venv, p50 (target <= 1.5)", "n": spawns,
                     "p50_ms": ratio, "max_ms": "", "mean_ms": ""})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=10)
    options = parser.parse_args(argv)
    print_table(
        "pre-installed plugin start (ulimit-adjuster)", asyncio.run(measure(options.spawns))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
