"""Event names and event subscription masks (upstream ``pkg/api/event.go``).

The bit for event ``e`` in a mask is ``1 << (e - 1)``; ``VALID_EVENTS`` covers events 1..14.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, cast

from nri.api import api_pb2 as pb

__all__ = [
    "EVENT_NAMES",
    "EVENT_PRETTY_NAMES",
    "VALID_EVENTS",
    "EventMask",
    "InvalidEventError",
    "event_from_name",
    "event_name",
    "event_pretty_name",
    "format_event_mask",
    "mask_of",
    "parse_event_list",
]

_FIRST: Final = pb.RUN_POD_SANDBOX
_LAST: Final = pb.LAST  # exclusive: LAST itself is not a real event

#: Human-friendly names (upstream ``EventPrettyNames``), keyed by event value.
EVENT_PRETTY_NAMES: Final[dict[int, str]] = {
    pb.RUN_POD_SANDBOX: "RunPodSandbox",
    pb.STOP_POD_SANDBOX: "StopPodSandbox",
    pb.REMOVE_POD_SANDBOX: "RemovePodSandbox",
    pb.CREATE_CONTAINER: "CreateContainer",
    pb.POST_CREATE_CONTAINER: "PostCreateContainer",
    pb.START_CONTAINER: "StartContainer",
    pb.POST_START_CONTAINER: "PostStartContainer",
    pb.UPDATE_CONTAINER: "UpdateContainer",
    pb.POST_UPDATE_CONTAINER: "PostUpdateContainer",
    pb.STOP_CONTAINER: "StopContainer",
    pb.REMOVE_CONTAINER: "RemoveContainer",
    pb.UPDATE_POD_SANDBOX: "UpdatePodSandbox",
    pb.POST_UPDATE_POD_SANDBOX: "PostUpdatePodSandbox",
    pb.VALIDATE_CONTAINER_ADJUSTMENT: "ValidateContainerAdjustment",
}

#: Lower-case names accepted by ``parse_event_list`` (upstream ``ParseEventMask``).
EVENT_NAMES: Final[dict[int, str]] = {e: n.lower() for e, n in EVENT_PRETTY_NAMES.items()}

_BY_NAME: Final[dict[str, int]] = {n: e for e, n in EVENT_NAMES.items()}


class InvalidEventError(ValueError):
    """An event name or value is not a known NRI event."""

    def __init__(self, event: str | int, detail: str = "") -> None:
        self.event = event
        text = f"unknown event {event!r}" if isinstance(event, str) else f"invalid event {event}"
        super().__init__(f"{text}{': ' + detail if detail else ''}")


def _check_event(event: int) -> int:
    if isinstance(event, bool) or not isinstance(event, int):
        raise TypeError(f"event must be an int (pb.Event), not {type(event).__name__}")
    if not _FIRST <= event < _LAST:
        raise InvalidEventError(event, f"must be in {_FIRST}..{_LAST - 1}")
    return event


def _bit(event: int) -> int:
    return 1 << (event - 1)


def event_name(event: int) -> str:
    """Return the lower-case name of ``event``, e.g. ``"runpodsandbox"``."""
    return EVENT_NAMES[_check_event(event)]


def event_pretty_name(event: int) -> str:
    """Return the CamelCase name of ``event``, or ``"unknown(N)"`` like upstream."""
    return EVENT_PRETTY_NAMES.get(event, f"unknown({int(event)})")


def event_from_name(name: str) -> pb.Event:
    """Return the event for ``name`` (case-insensitive, surrounding whitespace ignored)."""
    value = _BY_NAME.get(name.strip().lower())
    if value is None:
        raise InvalidEventError(name.strip())
    return cast(pb.Event, value)


class EventMask(int):
    """An immutable set of events encoded as upstream's ``EventMask`` bit mask.

    ``event in mask`` tests a bit, iterating yields the contained events in ascending
    order, and ``|``, ``&``, ``^`` with other masks stay ``EventMask``.
    """

    __slots__ = ()

    def __new__(cls, value: int = 0) -> EventMask:
        """Create a mask from its integer value (must fit in 32 bits, like upstream int32)."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"event mask must be an int, not {type(value).__name__}")
        if not 0 <= value <= 0x7FFFFFFF:
            raise ValueError(f"event mask {value:#x} out of range")
        return super().__new__(cls, value)

    @classmethod
    def of(cls, *events: int | str) -> EventMask:
        """Return the mask holding ``events`` (event values or names)."""
        return mask_of(*events)

    def __contains__(self, event: object) -> bool:
        if isinstance(event, str):
            return bool(int(self) & _bit(event_from_name(event)))
        if isinstance(event, bool) or not isinstance(event, int) or event < 1:
            return False
        return bool(int(self) & _bit(event))

    def __iter__(self) -> Iterator[pb.Event]:
        for event in range(_FIRST, _LAST):
            if int(self) & _bit(event):
                yield cast(pb.Event, event)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __or__(self, other: int) -> EventMask:
        return EventMask(int(self) | int(other))

    __ror__ = __or__

    def __and__(self, other: int) -> EventMask:
        return EventMask(int(self) & int(other))

    __rand__ = __and__

    def __xor__(self, other: int) -> EventMask:
        return EventMask(int(self) ^ int(other))

    __rxor__ = __xor__

    def __repr__(self) -> str:
        return f"EventMask({int(self):#x}: {format_event_mask(self) or '-'})"

    def with_events(self, *events: int | str) -> EventMask:
        """Return a copy with ``events`` added."""
        return self | mask_of(*events)

    def without(self, *events: int | str) -> EventMask:
        """Return a copy with ``events`` removed."""
        return EventMask(int(self) & ~int(mask_of(*events)))

    def is_valid(self) -> bool:
        """Whether only bits of ``VALID_EVENTS`` are set (what the runtime accepts)."""
        return int(self) & ~_VALID == 0

    def events(self) -> list[pb.Event]:
        """Return the contained events in ascending order."""
        return list(self)


def mask_of(*events: int | str) -> EventMask:
    """Return the mask with the bit of each given event (value or name) set."""
    mask = 0
    for event in events:
        value = event_from_name(event) if isinstance(event, str) else _check_event(event)
        mask |= _bit(value)
    return EventMask(mask)


_VALID: Final = (1 << (_LAST - 1)) - 1
#: Every event a plugin may subscribe to (``0x3FFF``).
VALID_EVENTS: Final = EventMask(_VALID)

_GROUPS: Final[dict[str, int]] = {
    "all": _VALID,
    "pod": sum(_bit(e) for e, n in EVENT_NAMES.items() if "pod" in n),
    "podsandbox": sum(_bit(e) for e, n in EVENT_NAMES.items() if "pod" in n),
    "container": sum(_bit(e) for e, n in EVENT_NAMES.items() if "container" in n),
}


def parse_event_list(*events: str) -> EventMask:
    """Parse comma-separated event names into a mask, like upstream ``ParseEventMask``.

    Names are case-insensitive and may be padded with whitespace. Besides the event
    names the keywords ``all``, ``pod`` (or ``podsandbox``) and ``container`` select
    groups; ``container`` includes ``validatecontaineradjustment``. Empty items (for
    example ``""`` or a trailing comma) are rejected, as upstream does.
    """
    mask = 0
    for spec in events:
        for item in spec.split(","):
            word = item.strip()
            key = word.lower()
            group = _GROUPS.get(key)
            if group is not None:
                mask |= group
                continue
            value = _BY_NAME.get(key)
            if value is None:
                raise InvalidEventError(word, f"in event list {spec!r}")
            mask |= _bit(value)
    return EventMask(mask)


def format_event_mask(mask: int) -> str:
    """Return ``"RunPodSandbox,CreateContainer"``-style text for ``mask`` (upstream PrettyString).

    Bits outside the known events show as ``unknown(N)`` / ``unknown(0x..)``. The
    result parses back with ``parse_event_list`` when the mask is valid and non-empty.
    """
    rest = int(mask)
    names: list[str] = []
    for event in range(_FIRST, _LAST + 1):
        if rest & _bit(event):
            names.append(event_pretty_name(event))
            rest &= ~_bit(event)
    if rest:
        names.append(f"unknown({rest:#x})")
    return ",".join(names)
