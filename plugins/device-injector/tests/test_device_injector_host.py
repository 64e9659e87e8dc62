"""Host lookups against this machine's real device nodes (sysfs via pyudev, no udevd needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from nri_device_injector import (
    AnnotationError,
    Config,
    build_adjustment,
    lookup_match,
    lookup_path,
)

from nri.api import pb

KEY = "devices.noderesource.dev/container.c"


def host(path: str) -> pb.LinuxDevice:
    st = os.stat(path)
    device = pb.LinuxDevice(
        path=path,
        type="b" if stat.S_ISBLK(st.st_mode) else "c",
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
    )
    if stat.S_IMODE(st.st_mode):
        device.file_mode.value = stat.S_IMODE(st.st_mode)
    if st.st_uid:
        device.uid.value = st.st_uid
    if st.st_gid:
        device.gid.value = st.st_gid
    return device


def injected(text: str, config: Config | None = None) -> list[pb.LinuxDevice]:
    return list(build_adjustment({KEY: text}, "c", config).message.linux.devices)


@pytest.mark.parametrize(
    ("path", "minor"), [("/dev/null", 3), ("/dev/zero", 5), ("/dev/full", 7), ("/dev/random", 8)]
)
def test_path_only_reads_type_numbers_and_permissions(path: str, minor: int) -> None:
    (device,) = injected(f"- path: {path}\n")
    assert (device.type, device.major, device.minor) == ("c", 1, minor)
    assert device == host(path)


def test_block_device_when_present() -> None:
    loops = sorted(Path("/dev").glob("loop[0-9]*"))
    if not loops:
        pytest.skip("no /dev/loop* on this machine")
    (device,) = injected(f"- path: {loops[0]}\n")
    assert device.type == "b" and device.major == 7
    assert device == host(str(loops[0]))


def test_entry_mode_and_owner_override_host_values() -> None:
    (device,) = injected("- path: /dev/null\n  file_mode: 0600\n  uid: 1000\n  gid: 2000\n")
    assert device.file_mode.value == 0o600 and device.uid.value == 1000
    assert device.gid.value == 2000


def test_host_permissions_off_leaves_mode_unset() -> None:
    (device,) = injected("- path: /dev/null\n", Config(host_permissions=False))
    assert device == pb.LinuxDevice(path="/dev/null", type="c", major=1, minor=3)


def test_host_path_injects_under_another_name() -> None:
    (device,) = injected("- path: /dev/my-zero\n  host_path: /dev/zero\n")
    expected = host("/dev/zero")
    expected.path = "/dev/my-zero"
    assert device == expected


def test_udev_match_by_subsystem_and_attribute() -> None:
    (device,) = injected('- match:\n    subsystem: mem\n    attributes: {dev: "1:7"}\n')
    assert device == host("/dev/full")


def test_udev_match_expands_to_every_node_sorted() -> None:
    got = injected("- match: {subsystem: mem}\n  file_mode: 0444\n")
    paths = [d.path for d in got]
    assert {"/dev/null", "/dev/zero", "/dev/full", "/dev/random"} <= set(paths)
    assert paths == sorted(paths)
    assert {d.file_mode.value for d in got} == {0o444}
    assert [d.path for d in lookup_match("mem", None, {"dev": "1:3"})] == ["/dev/null"]


def test_udev_match_by_property() -> None:
    assert [d.path for d in lookup_match(None, {"DEVNAME": "/dev/zero"})] == ["/dev/zero"]


def test_lookup_failures_name_annotation_and_entry(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("")
    cases = {
        "- path: /dev/null\n- path: /dev/no-such-device-here\n": (
            "entry #1",
            "no such device node on the host: /dev/no-such-device-here",
        ),
        f"- path: {regular}\n": ("entry #0", "is not a character or block device node"),
        "- match: {subsystem: no-such-subsystem}\n": (
            "entry #0",
            "no host device matches subsystem=no-such-subsystem",
        ),
        '- match: {properties: {ID_VENDOR_ID: "ffff"}}\n': ("entry #0", "no host device matches"),
    }
    for text, (entry, problem) in cases.items():
        with pytest.raises(AnnotationError) as info:
            injected(text)
        assert f"annotation {KEY!r}, {entry}: " in str(info.value)
        assert problem in str(info.value)


def test_host_lookup_can_be_disabled() -> None:
    with pytest.raises(AnnotationError, match="host lookup is disabled"):
        injected("- path: /dev/null\n", Config(host_lookup=False))
    with pytest.raises(AnnotationError, match="needs host lookup"):
        injected("- match: {subsystem: mem}\n", Config(host_lookup=False))


def test_lookup_path_follows_symlinks(tmp_path: Path) -> None:
    link = tmp_path / "null-link"
    link.symlink_to("/dev/null")
    found = lookup_path(str(link))
    assert (found.type, found.major, found.minor) == ("c", 1, 3)
