"""The nsdelegate check on mountinfo files the tests write (upstream's cases and more)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nri_writable_cgroups import (
    MountInfoError,
    cgroup2_mount,
    host_has_nsdelegate,
    parse_line,
)

CGROUP2_NSDELEGATE = (
    "36 35 98:0 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
)
TMPFS = "35 24 0:31 / /run rw,nosuid,nodev,relatime - tmpfs tmpfs rw,mode=755\n"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "mountinfo"
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (CGROUP2_NSDELEGATE, True),
        ("36 35 98:0 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n", False),
        ("36 35 98:0 / /other/path rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n", False),
        (TMPFS + CGROUP2_NSDELEGATE, True),
        (TMPFS, False),
        ("", False),
        # hybrid layout: the unified hierarchy
        ("30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", True),
        # nsdelegate in the per-mount options, not the super block options, does not count
        ("36 35 98:0 / /sys/fs/cgroup rw,nsdelegate - cgroup2 cgroup2 rw\n", False),
        # cgroup v1 at the same place
        ("36 35 98:0 / /sys/fs/cgroup rw - cgroup cgroup rw,nsdelegate\n", False),
        # optional fields before the separator
        ("36 35 98:0 / /sys/fs/cgroup rw shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n", True),
        # only the first cgroup2 mount at those places counts, as upstream
        ("36 35 98:0 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" + CGROUP2_NSDELEGATE, False),
    ],
)  # fmt: skip
def test_check(tmp_path: Path, content: str, expected: bool) -> None:
    assert host_has_nsdelegate(write(tmp_path, content)) is expected


def test_lines_after_the_match_are_not_read(tmp_path: Path) -> None:
    assert host_has_nsdelegate(write(tmp_path, CGROUP2_NSDELEGATE + "garbage\n"))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("garbage", "not enough fields (1)"),
        ("", "not enough fields (1)"),
        ("1 2 3:4 / /x rw a b c d e", "missing - separator"),
        ("1 2 34 / /x rw - tmpfs tmpfs rw", "unexpected major:minor pair"),
        ("1 2 3:4 / /x\\9 rw - tmpfs tmpfs rw", "mount point: bad escape sequence"),
        ("1 2 3:4 / /x\\07 rw - tmpfs tmpfs rw", "mount point: bad escape sequence"),
        ("1 2 3:4 / /x rw - tmpfs tmpfs\\477 rw", "source: bad escape sequence"),
    ],
)
def test_malformed_line_before_the_match_is_an_error(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = write(tmp_path, TMPFS + line + "\n" + CGROUP2_NSDELEGATE)
    with pytest.raises(MountInfoError) as info:
        host_has_nsdelegate(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 2: ")
    assert problem in message
    assert "\n" not in message


def test_escapes_and_spaces() -> None:
    info = parse_line(b"36 35 98:0 / /sys/fs/my\\040cgroup rw - cgroup2 cg\\134src rw,nsdelegate")
    assert info.mount_point == "/sys/fs/my cgroup"
    assert info.source == "cg\\src"
    # an old kernel's space in the last field: the separator is found further left
    info = parse_line(b"36 35 0:5 / /mnt rw - cifs //srv/My Docs rw,unc=//srv/My Docs")
    assert (info.fs_type, info.source) == ("cifs", "//srv/My")


def test_escaped_mount_point_matches(tmp_path: Path) -> None:
    path = write(tmp_path, "36 35 98:0 / /sys/fs/\\143group rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert host_has_nsdelegate(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MountInfoError, match="failed to open mount file .*nope.*No such file"):
        host_has_nsdelegate(tmp_path / "nope")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(MountInfoError, match="failed to open mount file"):
        host_has_nsdelegate(tmp_path)


def test_overlong_line_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"1 2 3:4 / /" + b"x" * 70000 + b" rw - tmpfs tmpfs rw\n")
    with pytest.raises(MountInfoError, match="line 1: longer than 65535 bytes"):
        cgroup2_mount(path)


def test_not_utf8_is_tolerated(tmp_path: Path) -> None:
    path = write(
        tmp_path, b"1 2 3:4 / /\xff\xfe rw - tmpfs tmpfs rw\n" + CGROUP2_NSDELEGATE.encode()
    )
    assert host_has_nsdelegate(path)


def test_crlf_line_ends(tmp_path: Path) -> None:
    assert host_has_nsdelegate(write(tmp_path, CGROUP2_NSDELEGATE.replace("\n", "\r\n").encode()))


def test_real_mount_table_parses() -> None:
    # this machine's mount table, against a plain reading of it
    table = Path("/proc/self/mountinfo")
    if not table.exists():
        pytest.skip("no /proc/self/mountinfo")
    expected = False
    for line in table.read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        fs_type, _, options = tail.split(" ", 2)
        if fs_type == "cgroup2" and fields.split(" ")[4] in (
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/unified",
        ):
            expected = "nsdelegate" in options.split(",")
            break
    assert host_has_nsdelegate(table) is expected
