"""Deadlines of many pending operations, served by one event-loop timer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Call ``expire(key)`` once the deadline (event-loop time) added for ``key`` passes.

    One timer, armed for the earliest deadline, replaces a timer per operation: per
    operation this costs a dict entry instead of a timer handle pushed onto (and later
    cancelled in) the event loop's heap.
    """

    __slots__ = ("_deadlines", "_expire", "_timer")

    def __init__(self, expire: Callable[[K], None]) -> None:
        self._deadlines: dict[K, float] = {}
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None

    def add(self, key: K, deadline: float) -> None:
        """Expire ``key`` at ``deadline`` unless it is discarded first."""
        self._deadlines[key] = deadline
        self._arm(asyncio.get_running_loop(), deadline)

    def discard(self, key: K) -> None:
        """Forget ``key`` (finished in time); unknown keys are ignored."""
        self._deadlines.pop(key, None)

    def close(self) -> None:
        """Forget every deadline and stop the timer."""
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = loop.call_at(deadline, self._fire, loop, deadline)

    def _fire(self, loop: asyncio.AbstractEventLoop, armed_for: float) -> None:
        self._timer = None
        # The loop may run a timer a clock tick early: what it was armed for is due.
        now = max(loop.time(), armed_for)
        due = [key for key, deadline in self._deadlines.items() if deadline <= now]
        for key in due:
            del self._deadlines[key]
        if self._deadlines:
            self._arm(loop, min(self._deadlines.values()))
        for key in due:
            self._expire(key)
