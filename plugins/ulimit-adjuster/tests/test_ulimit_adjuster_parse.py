"""Upstream's test cases and documented examples give upstream's rlimits and errors."""

from __future__ import annotations

import pytest
from nri_ulimit_adjuster import (
    ContainerUlimitError,
    Ulimit,
    UlimitAdjuster,
    UlimitError,
    build_adjustment,
    parse_ulimits,
)

from nri.api import pb

KEY = "ulimits.noderesource.dev/container.foo"


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, []),
        ({"bar": "baz"}, []),
        (
            {KEY: "- type: RLIMIT_NOFILE\n  soft: 123\n  hard: 456\n"},
            [Ulimit("RLIMIT_NOFILE", 456, 123)],
        ),
        (
            {
                KEY: "- type: RLIMIT_NOFILE\n  soft: 123\n  hard: 456\n- type: RLIMIT_NPROC\n  soft: 456\n  hard: 789\n"
            },
            [Ulimit("RLIMIT_NOFILE", 456, 123), Ulimit("RLIMIT_NPROC", 789, 456)],
        ),
        ({KEY: "- type: AS\n  soft: 123\n  hard: 456\n"}, [Ulimit("RLIMIT_AS", 456, 123)]),
        (
            {KEY: "- type: rlimit_core\n  soft: 123\n  hard: 456\n"},
            [Ulimit("RLIMIT_CORE", 456, 123)],
        ),
        ({KEY: "- type: cpu\n  soft: 123\n  hard: 456\n"}, [Ulimit("RLIMIT_CPU", 456, 123)]),
        ({KEY: ""}, []),
        ({KEY: "null"}, []),
    ],
)
def test_upstream_parse_cases(annotations: dict[str, str], expected: list[Ulimit]) -> None:
    assert parse_ulimits(annotations, "foo") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "- type: ULIMIT_NOFILE\n  soft: 123\n  hard: 456\n",
            "failed to parse type: 'ULIMIT_NOFILE'",
        ),
        ("- type: RLIMIT_FOO\n  soft: 123\n  hard: 456\n", "failed to parse type: 'RLIMIT_FOO'"),
        (
            "- type: RLIMIT_NICE\n  soft: 456\n  hard: 789\n- type: RLIMIT_BAR\n  soft: 123\n  hard: 456\n",
            "entry #1: failed to parse type: 'RLIMIT_BAR'",
        ),
        (
            "- type: RLIMIT_NOFILE\n  hard: 0\n  soft: 100\n",
            "ulimit 'RLIMIT_NOFILE' must have hard limit >= soft limit",
        ),
        ("- soft: 1\n  hard: 2\n", "failed to parse type: ''"),
        ("- type: nofile\n  soft: -1\n  hard: 2\n", "soft: cannot unmarshal number -1 into uint64"),
        ("- type: nofile\n  soft: many\n", "soft: cannot unmarshal string into uint64"),
        ("- type: nofile\n  soft: 1024.5\n", "soft: cannot unmarshal number 1024.5 into uint64"),
        ("- type: nofile\n  hard: .inf\n", "entry #0: hard: unsupported value +Inf"),
        ("- type: 7\n", "failed to parse type: '7'"),
        ("- type: [nofile]\n", "type: cannot unmarshal array into string"),
        ("type: nofile\n", "expected a YAML list of ulimits, got a mapping"),
        ("- nofile\n", "entry #0: expected a mapping"),
        ("- type: [nofile\n", "invalid YAML"),
    ],
)
def test_invalid_annotations(text: str, problem: str) -> None:
    with pytest.raises(UlimitError) as info:
        parse_ulimits({KEY: text}, "foo")
    assert str(info.value).startswith(f"annotation {KEY!r}")
    assert problem in str(info.value)


def test_type_errors_win_over_limit_errors_like_upstream() -> None:
    text = "- type: nofile\n  soft: 9\n  hard: 1\n- type: bogus\n"
    with pytest.raises(UlimitError, match="failed to parse type: 'bogus'"):
        parse_ulimits({KEY: text}, "foo")


def test_new_key_wins_over_old_and_old_key_still_works() -> None:
    old = "ulimits.nri.containerd.io/container.foo"
    assert parse_ulimits({old: "- type: nproc\n  hard: 3\n"}, "foo") == [
        Ulimit("RLIMIT_NPROC", 3, 0)
    ]
    both = {KEY: "- type: core\n  hard: 1\n", old: "- type: bogus\n"}
    assert parse_ulimits(both, "foo") == [Ulimit("RLIMIT_CORE", 1, 0)]
    # only container-specific keys exist
    assert parse_ulimits({"ulimits.noderesource.dev/pod": "- type: core\n"}, "foo") == []


def test_sample_pod_from_upstream() -> None:
    annotations = {
        "ulimits.nri.containerd.io/container.sleep": (
            "- type: memlock\n  hard: 987654\n  soft: 645321\n"
            "- type: RLIMIT_NOFILE\n  hard: 4096\n  soft: 1024\n"
            "- type: nproc\n  hard: 9000\n"
        )
    }
    adjust = UlimitAdjuster().create_container(
        pb.PodSandbox(name="sleep", annotations=annotations), pb.Container(name="sleep")
    )
    assert adjust.message == pb.ContainerAdjustment(
        rlimits=[
            pb.POSIXRlimit(type="RLIMIT_MEMLOCK", hard=987654, soft=645321),
            pb.POSIXRlimit(type="RLIMIT_NOFILE", hard=4096, soft=1024),
            pb.POSIXRlimit(type="RLIMIT_NPROC", hard=9000, soft=0),
        ]
    )


def test_adjust_cases() -> None:
    assert build_adjustment([]).message == pb.ContainerAdjustment()
    assert build_adjustment(
        [Ulimit("RLIMIT_MEMLOCK", 100, 99), Ulimit("RLIMIT_AS", 10, 0)]
    ).message == pb.ContainerAdjustment(
        rlimits=[
            pb.POSIXRlimit(type="RLIMIT_MEMLOCK", hard=100, soft=99),
            pb.POSIXRlimit(type="RLIMIT_AS", hard=10, soft=0),
        ]
    )


def test_max_uint64_limit() -> None:
    text = f"- type: stack\n  hard: {2**64 - 1}\n  soft: {2**64 - 1}\n"
    assert parse_ulimits({KEY: text}, "foo") == [Ulimit("RLIMIT_STACK", 2**64 - 1, 2**64 - 1)]
    with pytest.raises(
        UlimitError, match="cannot unmarshal number 18446744073709552000 into uint64"
    ):
        parse_ulimits({KEY: f"- type: stack\n  hard: {2**64}\n"}, "foo")


def test_create_container_error_names_pod_container_key() -> None:
    pod = pb.PodSandbox(name="p", namespace="ns", annotations={KEY: "- type: foo\n"})
    with pytest.raises(ContainerUlimitError) as info:
        UlimitAdjuster().create_container(pod, pb.Container(name="foo"))
    assert str(info.value) == (
        f"pod ns/p, container foo: annotation {KEY!r}, entry #0: failed to parse type: 'foo'"
    )


def test_go_number_typing_like_upstream() -> None:
    text = "- type: nofile\n  soft: 1024.0\n  hard: 2e3\n- TYPE: Core\n  Hard: 0x10\n  soft: 0o7\n"
    assert parse_ulimits({KEY: text}, "foo") == [
        Ulimit("RLIMIT_NOFILE", 2000, 1024),
        Ulimit("RLIMIT_CORE", 16, 7),
    ]


def test_null_entry_is_an_empty_type_like_upstream() -> None:
    with pytest.raises(UlimitError, match="entry #0: failed to parse type: ''"):
        parse_ulimits({KEY: "- ~\n"}, "foo")


@pytest.mark.parametrize(
    "text",
    [
        "- type: nofile\n  soft: 1\n  hard: 2\n- type: RLIMIT_NOFILE\n  soft: 1\n  hard: 2\n",
        "- type: nproc\n- type: core\n- type: NPROC\n  hard: 5\n",
    ],
)
def test_duplicate_rlimit_is_reported_in_the_annotation(text: str) -> None:
    with pytest.raises(UlimitError) as info:
        parse_ulimits({KEY: text}, "foo")
    message = str(info.value)
    assert message.startswith(f"annotation {KEY!r}: RLIMIT_")
    assert "is given twice (entries #0 and #" in message


def test_hostile_annotations_fail_fast() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]\n" for i in range(6)
    )
    for text, problem in (
        (bomb, "aliases expand to more than"),
        ("[" * 10_000, "nesting"),
        ("- type: nofile\n" + " " * (300 * 1024), "too large"),
        ("- type: nofile\n  soft: 1\n\udcff", "not valid UTF-8"),
    ):
        with pytest.raises(UlimitError, match=problem):
            parse_ulimits({KEY: text}, "foo")
