"""The one-timer deadline table of ttRPC connections, on a simulated event-loop clock.

Whatever the order of additions, discards, closes and clock advances, every key that is
still pending when its deadline passes expires exactly once, never early, and nothing
else expires.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from nri.ttrpc._deadlines import Deadlines


class Timer:
    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self._when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """The parts of an event loop Deadlines uses, with time that moves only on request.

    Like asyncio, it may run a timer a little early (by less than its clock resolution).
    """

    RESOLUTION = 1e-3

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        return timer

    def advance(self, to: float) -> None:
        while self._heap and self._heap[0][0] <= to:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.now = max(self.now, when - self.RESOLUTION / 2)
            timer.callback(*timer.args)
        self.now = max(self.now, to)

    def armed(self) -> int:
        return sum(not timer.cancelled for _, _, timer in self._heap)


ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 5), st.floats(0, 10)),
        st.tuples(st.just("discard"), st.integers(0, 5)),
        st.tuples(st.just("advance"), st.floats(0, 5)),
        st.tuples(st.just("close")),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops_st)
def test_keys_expire_once_at_their_deadline(ops: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    expired: list[tuple[int, float]] = []
    deadlines: Deadlines[int] = Deadlines(lambda key: expired.append((key, clock.now)))
    pending: dict[int, float] = {}
    with mock.patch("asyncio.get_running_loop", return_value=clock):
        for op in [*ops, ("advance", 20.0)]:
            if op[0] == "add":
                deadline = clock.now + op[2]
                deadlines.add(op[1], deadline)
                pending[op[1]] = deadline
            elif op[0] == "discard":
                deadlines.discard(op[1])
                pending.pop(op[1], None)
            elif op[0] == "close":
                deadlines.close()
                pending.clear()
            else:
                expired.clear()
                target = clock.now + op[1]
                clock.advance(target)
                due = {key for key, deadline in pending.items() if deadline <= target}
                assert sorted(key for key, _ in expired) == sorted(due)
                for key, when in expired:
                    assert when >= pending[key] - Clock.RESOLUTION
                for key in due:
                    del pending[key]
        assert not pending
        assert clock.armed() == 0  # no timer left behind once nothing is pending
