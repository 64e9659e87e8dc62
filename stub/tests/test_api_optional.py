"""Optional* wrapper conversion of nri.api."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nri import api
from nri.api import pb

CASES: list[tuple[Callable[[Any], Any], type[Any], Any, list[Any]]] = [
    (api.optional_int, pb.OptionalInt, -5, [1 << 63, -(1 << 63) - 1]),
    (api.optional_int32, pb.OptionalInt32, -(1 << 31), [1 << 31, -(1 << 31) - 1]),
    (api.optional_uint32, pb.OptionalUInt32, (1 << 32) - 1, [-1, 1 << 32]),
    (api.optional_int64, pb.OptionalInt64, (1 << 63) - 1, [1 << 63]),
    (api.optional_uint64, pb.OptionalUInt64, (1 << 64) - 1, [-1, 1 << 64]),
    (api.optional_file_mode, pb.OptionalFileMode, 0o644, [-1, 1 << 32]),
]


@pytest.mark.parametrize(("make", "cls", "value", "bad"), CASES)
def test_integer_wrappers(
    make: Callable[[Any], Any], cls: type[Any], value: int, bad: list[int]
) -> None:
    msg = make(value)
    assert type(msg) is cls
    assert msg.value == value
    assert make(0).value == 0
    for out_of_range in bad:
        with pytest.raises(ValueError, match=str(out_of_range)):
            make(out_of_range)
    with pytest.raises(TypeError):
        make(True)
    with pytest.raises(TypeError):
        make("1")


def test_string_bool_repeated() -> None:
    assert api.optional_string("x") == pb.OptionalString(value="x")
    assert api.optional_bool(False) == pb.OptionalBool(value=False)
    assert api.optional_repeated_string(["a", "b"]).value == ["a", "b"]
    assert api.optional_repeated_string(iter(())).value == []
    with pytest.raises(TypeError):
        api.optional_string(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        api.optional_bool(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        api.optional_repeated_string("ab")
    with pytest.raises(TypeError):
        api.optional_repeated_string([1])  # type: ignore[list-item]


def test_get_optional_respects_presence() -> None:
    mem = pb.LinuxMemory()
    assert api.get_optional(mem, "limit") is None
    mem.limit.CopyFrom(api.optional_int64(0))
    assert api.get_optional(mem, "limit") == 0
    mem.disable_oom_killer.CopyFrom(api.optional_bool(False))
    assert api.get_optional(mem, "disable_oom_killer") is False
    rdt = pb.LinuxRdt()
    assert api.get_optional(rdt, "schemata") is None
    rdt.schemata.CopyFrom(api.optional_repeated_string([]))
    assert api.get_optional(rdt, "schemata") == []
    dev = pb.LinuxDevice()
    dev.file_mode.CopyFrom(api.optional_file_mode(0o600))
    assert api.get_optional(dev, "file_mode") == 0o600
    assert api.get_optional(dev, "uid") is None


def test_set_optional() -> None:
    cpu = pb.LinuxCPU()
    api.set_optional(cpu, "shares", 0)
    assert cpu.HasField("shares") and cpu.shares.value == 0
    assert cpu == pb.LinuxCPU(shares=pb.OptionalUInt64(value=0))
    api.set_optional(cpu, "shares", None)
    assert not cpu.HasField("shares")
    rdt = pb.LinuxRdt()
    api.set_optional(rdt, "schemata", ["L3:0=f"])
    api.set_optional(rdt, "clos_id", "gold")
    assert rdt == pb.LinuxRdt(
        schemata=pb.OptionalRepeatedString(value=["L3:0=f"]),
        clos_id=pb.OptionalString(value="gold"),
    )
    with pytest.raises(ValueError, match="out of range"):
        api.set_optional(cpu, "shares", -1)


def test_optional_field_errors() -> None:
    with pytest.raises(ValueError, match=r"LinuxCPU\.cpus is not an Optional"):
        api.get_optional(pb.LinuxCPU(), "cpus")
    with pytest.raises(ValueError, match="no field 'nope'"):
        api.set_optional(pb.LinuxCPU(), "nope", 1)
    with pytest.raises(ValueError, match="not an Optional"):
        api.get_optional(pb.LinuxResources(), "memory")
