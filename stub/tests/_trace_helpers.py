"""Running ``nri-trace`` and plugin processes for the tracer's end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime

TRACE = [sys.executable, "-m", "nri.trace"]
ULIMIT = [sys.executable, "-m", "nri_ulimit_adjuster"]
CAPTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "captures"

ANNOTATIONS = {
    "ulimits.noderesource.dev/container.c0": (
        "- {type: nofile, soft: 1024, hard: 4096}\n- {type: RLIMIT_MEMLOCK, soft: 1, hard: 2}\n"
    ),
    "ulimits.noderesource.dev/container.bad": "- type: RLIMIT_FOO\n",
}


@dataclass
class Traced:
    """A running tracer; ``stdout``/``stderr`` are complete once the context exits."""

    process: asyncio.subprocess.Process
    listen: Path
    stdout: str = ""
    stderr: str = ""
    lines: list[str] = field(default_factory=list)


async def run_command(*argv: str | Path, timeout: float = 30) -> tuple[int, str, str]:
    """Run a command to completion: exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def tracer(listen: Path, runtime: Path, *args: str | Path) -> AsyncIterator[Traced]:
    """Start ``nri-trace --listen LISTEN --runtime RUNTIME ARGS``; SIGTERM it on exit."""
    proc = await asyncio.create_subprocess_exec(
        *TRACE,
        "--listen",
        str(listen),
        "--runtime",
        str(runtime),
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out_task = asyncio.ensure_future(proc.stdout.read())
    err_task = asyncio.ensure_future(proc.stderr.read())
    traced = Traced(proc, listen)
    try:
        async with asyncio.timeout(10):
            while not listen.exists():
                if proc.returncode is not None or out_task.done():
                    raise AssertionError(f"nri-trace exited: {(await err_task).decode()}")
                await asyncio.sleep(0.02)
        yield traced
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
        traced.stdout = (await out_task).decode()
        traced.stderr = (await err_task).decode()
        traced.lines = traced.stdout.splitlines()


@contextlib.asynccontextmanager
async def plugin_process(argv: Sequence[str | Path]) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start a plugin command; terminate it on exit."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def ulimit_lifecycle(rt: MockRuntime) -> list[tuple[str, pb.ContainerAdjustment | None, str]]:
    """Create containers the ulimit adjuster adjusts, refuses and ignores; what happened."""
    pod = await rt.run_pod("p", namespace="ns", annotations=ANNOTATIONS)
    seen: list[tuple[str, pb.ContainerAdjustment | None, str]] = []
    for name in ("c0", "other", "bad"):
        try:
            ctr = await rt.create_container(pod, name)
        except PluginError as exc:
            seen.append((name, None, str(exc)))
        else:
            seen.append((name, ctr.adjustment, ""))
    return seen
