"""The adaptation's locks: plugin synchronization vs. the runtime's state changes, and the
order of events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

__all__ = ["EventGate", "SyncLock"]


class SyncLock:
    """Readers-writer lock: plugin synchronization (writer) vs. runtime blocks (readers).

    With ``writer_preference`` a waiting writer holds off new readers, so a steady stream
    of readers cannot starve it (readers must then not nest).
    """

    def __init__(self, *, writer_preference: bool = False) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._writer_preference = writer_preference

    def _may_read(self) -> bool:
        return not self._writer and not (self._writer_preference and self._writers_waiting)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(self._may_read)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        async with self._cond:
            self._writers_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclasses.dataclass
class _PodSlot:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0  # events holding or waiting for the lock


class EventGate:
    """Who may relay to plugins at a time.

    By default one event (or plugin-list change, or unsolicited update) at a time, as
    upstream. With ``per_pod`` the events of different pods run concurrently while each
    pod's events keep their order; :meth:`exclusive` (changes of the plugin list,
    unsolicited updates) waits until no event runs and holds new ones off.
    """

    def __init__(self, *, per_pod: bool = False) -> None:
        self.per_pod = per_pod
        self._serial = asyncio.Lock()
        self._all = SyncLock(writer_preference=True)
        self._pods: dict[str, _PodSlot] = {}

    def event(self, pod_id: str) -> AbstractAsyncContextManager[None]:
        """Hold the gate for one event of pod ``pod_id`` (``async with gate.event(...)``)."""
        if not self.per_pod:
            # The plain lock itself: this runs for every event.
            return self._serial
        return self._pod_event(pod_id)

    @contextlib.asynccontextmanager
    async def _pod_event(self, pod_id: str) -> AsyncIterator[None]:
        slot = self._pods.get(pod_id)
        if slot is None:
            slot = self._pods[pod_id] = _PodSlot()
        slot.users += 1
        try:
            # The pod's lock first: a waiting event of the same pod holds no read slot.
            async with slot.lock, self._all.read():
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._pods[pod_id]

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Hold the gate alone: no event runs meanwhile."""
        if not self.per_pod:
            return self._serial
        return self._all.write()
