"""Event names, masks and event-list parsing of nri.api."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nri import api
from nri.api import pb

# Independent oracle: upstream pkg/api/event.go names and api.proto values.
UPSTREAM = {
    1: "runpodsandbox",
    2: "stoppodsandbox",
    3: "removepodsandbox",
    4: "createcontainer",
    5: "postcreatecontainer",
    6: "startcontainer",
    7: "poststartcontainer",
    8: "updatecontainer",
    9: "postupdatecontainer",
    10: "stopcontainer",
    11: "removecontainer",
    12: "updatepodsandbox",
    13: "postupdatepodsandbox",
    14: "validatecontaineradjustment",
}


@pytest.mark.parametrize(("value", "name"), sorted(UPSTREAM.items()))
def test_event_name_round_trip_and_bit(value: int, name: str) -> None:
    assert api.event_name(value) == name
    assert api.event_from_name(name) == value
    assert api.event_from_name(f"  {api.event_pretty_name(value)}\t") == value
    assert api.event_pretty_name(value).lower() == name
    mask = api.mask_of(value)
    assert mask == 1 << (value - 1)
    assert isinstance(mask, api.EventMask)
    assert value in mask and name in mask
    assert list(mask) == [value]
    assert api.parse_event_list(name) == mask
    assert api.parse_event_list(name.upper()) == mask


def test_enum_values_match_upstream() -> None:
    for value, name in UPSTREAM.items():
        assert pb.Event.Name(value).replace("_", "").lower() == name
    assert pb.LAST == 15


def test_valid_events() -> None:
    assert api.VALID_EVENTS == 0x3FFF
    assert api.parse_event_list("all") == 0x3FFF
    assert api.mask_of(*UPSTREAM) == api.VALID_EVENTS
    assert len(api.VALID_EVENTS) == 14
    assert api.VALID_EVENTS.is_valid()
    assert not api.EventMask(1 << 14).is_valid()


def test_groups() -> None:
    pod = api.mask_of(1, 2, 3, 12, 13)
    assert api.parse_event_list("pod") == pod
    assert api.parse_event_list("PodSandbox") == pod
    # upstream selects every name containing "container", the validator included
    assert api.parse_event_list("container") == api.VALID_EVENTS & ~pod
    assert pb.VALIDATE_CONTAINER_ADJUSTMENT in api.parse_event_list("container")
    assert api.parse_event_list("pod, container") == api.VALID_EVENTS


def test_parse_lists_and_whitespace() -> None:
    want = api.mask_of(pb.RUN_POD_SANDBOX, pb.CREATE_CONTAINER)
    assert api.parse_event_list("runpodsandbox,createcontainer") == want
    assert api.parse_event_list(" RunPodSandbox ,\tcreateContainer\n") == want
    assert api.parse_event_list("runpodsandbox", "createcontainer") == want
    assert api.parse_event_list("createcontainer,createcontainer") == api.mask_of(4)
    assert api.parse_event_list() == 0


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("runpodsandbox,bogus", "bogus"),
        ("  Frobnicate  ", "Frobnicate"),
        ("", ""),
        ("createcontainer,", ""),
        ("run pod sandbox", "run pod sandbox"),
        ("last", "last"),
    ],
)
def test_parse_errors_name_the_word(text: str, bad: str) -> None:
    with pytest.raises(api.InvalidEventError) as info:
        api.parse_event_list(text)
    assert info.value.event == bad
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [0, 15, -1, 99])
def test_invalid_event_values(value: int) -> None:
    with pytest.raises(api.InvalidEventError, match=str(value)):
        api.mask_of(value)
    with pytest.raises(api.InvalidEventError):
        api.event_name(value)


def test_event_from_name_error() -> None:
    with pytest.raises(api.InvalidEventError, match="'nope'"):
        api.event_from_name(" nope ")
    with pytest.raises(api.InvalidEventError):
        api.mask_of("nope")


def test_format_event_mask() -> None:
    assert api.format_event_mask(api.mask_of(1, 4)) == "RunPodSandbox,CreateContainer"
    assert api.format_event_mask(0) == ""
    assert api.format_event_mask(1 << 14) == "unknown(15)"
    assert api.format_event_mask(0x8 | (1 << 20)) == "CreateContainer,unknown(0x100000)"
    # masks seen on the wire: device-injector, template, gobenchplugin
    assert api.format_event_mask(0x8) == "CreateContainer"
    assert len(api.EventMask(0x7FF)) == 11
    assert len(api.EventMask(0x1FFF)) == 13


@given(st.integers(min_value=1, max_value=0x3FFF))
def test_format_parse_round_trip(value: int) -> None:
    mask = api.EventMask(value)
    assert api.parse_event_list(api.format_event_mask(mask)) == mask
    assert api.mask_of(*mask) == mask


def test_event_mask_operations() -> None:
    a = api.mask_of("runpodsandbox")
    b = api.EventMask.of(pb.CREATE_CONTAINER)
    both = a | b
    assert isinstance(both, api.EventMask) and both == 0x9
    assert isinstance(0x10 | a, api.EventMask)
    assert (both & b) == b and isinstance(both & b, api.EventMask)
    assert isinstance(both ^ b, api.EventMask) and both ^ b == a
    assert both.without(pb.CREATE_CONTAINER) == a
    assert a.with_events("createcontainer") == both
    assert both.events() == [pb.RUN_POD_SANDBOX, pb.CREATE_CONTAINER]
    assert "RunPodSandbox,CreateContainer" in repr(both)
    assert 0 not in both
    assert "stopcontainer" not in both
    assert 99 not in both
    with pytest.raises(ValueError, match="out of range"):
        api.EventMask(-1)
    with pytest.raises(TypeError):
        api.EventMask(True)
