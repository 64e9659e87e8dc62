"""Supervised restart of pre-installed plugins: the delay before each relaunch, the
relaunches waiting for it, signalling their processes and how their exit is told in the
log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine
from typing import Any

__all__ = ["RestartBackoff", "Supervisor", "describe_exit", "signal_process"]


def signal_process(process: asyncio.subprocess.Process, signum: int) -> None:
    """Send ``signum`` to ``process`` unless it is known to be reaped.

    Not through ``process.send_signal()``: that polls the child first, which reaps one that
    just exited behind the back of asyncio's child watcher, and the watcher then reports
    status 255 instead of the real one.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signum)


def describe_exit(status: int) -> str:
    """A process's exit status (a returncode) for the log: ``exited with status 3``,
    ``killed by SIGKILL``."""
    if status >= 0:
        return f"exited with status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    return f"killed by {name}"


class RestartBackoff:
    """The delays between relaunches of one plugin.

    The first delay is ``initial``; each further one doubles, up to ``maximum``. Once an
    instance stayed up for ``2 * maximum`` seconds (60 s with the defaults), the next delay
    is ``initial`` again: a plugin that crashes now and then is relaunched quickly, one that
    crashes in a loop at most every ``maximum`` seconds.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.reset_after = 2 * maximum
        self.restarts = 0
        self._next = min(initial, maximum)

    def next_delay(self, uptime: float) -> float:
        """The delay before relaunching an instance that ran for ``uptime`` seconds."""
        if uptime >= self.reset_after:
            self._next = min(self.initial, self.maximum)
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        self.restarts += 1
        return delay


class Supervisor:
    """The backoff of each supervised plugin (by ``NN-name``) and the pending relaunches."""

    def __init__(self) -> None:
        self._backoffs: dict[str, RestartBackoff] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def next_delay(self, name: str, uptime: float, initial: float, maximum: float) -> float:
        """The delay before relaunching ``name`` whose instance ran for ``uptime`` seconds."""
        backoff = self._backoffs.get(name)
        if backoff is None:
            backoff = self._backoffs[name] = RestartBackoff(initial, maximum)
        return backoff.next_delay(uptime)

    def restarts(self, name: str) -> int:
        """How often ``name`` was scheduled for a relaunch since it was first launched."""
        backoff = self._backoffs.get(name)
        return 0 if backoff is None else backoff.restarts

    def forget(self, name: str) -> None:
        """Drop the backoff of ``name`` (it is no longer supervised)."""
        self._backoffs.pop(name, None)

    def schedule(self, relaunch: Coroutine[Any, Any, None]) -> None:
        """Run ``relaunch`` (which sleeps its delay first) until it is done or cancelled."""
        task = asyncio.ensure_future(relaunch)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Cancel every pending relaunch, wait for them to clean up, forget all backoffs."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._backoffs.clear()
