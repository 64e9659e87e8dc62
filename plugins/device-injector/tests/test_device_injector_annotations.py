"""Upstream's documented examples and test cases give upstream's adjustments; bad input fails."""

from __future__ import annotations

import logging

import pytest
from nri_device_injector import (
    AnnotationError,
    Config,
    DeviceInjector,
    InjectionError,
    annotation_keys,
    build_adjustment,
    parse_cdi_devices,
    parse_devices,
    parse_mounts,
)

from nri.api import pb

NULL = "- path: /dev/test-null\n  type: c\n  major: 1\n  minor: 3\n"
ZERO = "- path: /dev/test-zero\n  type: c\n  major: 1\n  minor: 5\n"


def dev(path: str, major: int, minor: int, **extra: object) -> pb.LinuxDevice:
    return pb.LinuxDevice(path=path, type="c", major=major, minor=minor, **extra)  # type: ignore[arg-type]


def devices(annotations: dict[str, str], ctr: str = "ctr0") -> list[pb.LinuxDevice]:
    return list(build_adjustment(annotations, ctr).message.linux.devices)


def test_key_precedence_order() -> None:
    assert annotation_keys("devices", "c0") == (
        "devices.noderesource.dev/container.c0",
        "devices.nri.io/container.c0",
        "devices.noderesource.dev/pod",
        "devices.nri.io/pod",
        "devices.noderesource.dev",
        "devices.nri.io",
    )


def test_no_annotations_gives_empty_adjustment() -> None:
    assert build_adjustment({"foo": "bar"}, "ctr0").message == pb.ContainerAdjustment()


def test_single_and_multiple_devices() -> None:
    assert devices({"devices.noderesource.dev/container.ctr0": NULL}) == [
        dev("/dev/test-null", 1, 3)
    ]
    assert devices({"devices.noderesource.dev/container.ctr0": NULL + ZERO}) == [
        dev("/dev/test-null", 1, 3),
        dev("/dev/test-zero", 1, 5),
    ]


def test_other_container_gets_nothing() -> None:
    assert devices({"devices.noderesource.dev/container.ctr1": NULL + ZERO}) == []


@pytest.mark.parametrize(
    ("winner", "loser"),
    [
        ("devices.noderesource.dev/container.ctr0", "devices.nri.io/container.ctr0"),
        ("devices.noderesource.dev/container.ctr0", "devices.noderesource.dev/pod"),
        ("devices.nri.io/container.ctr0", "devices.noderesource.dev/pod"),
        ("devices.noderesource.dev/pod", "devices.nri.io/pod"),
        ("devices.nri.io/pod", "devices.noderesource.dev"),
        ("devices.noderesource.dev", "devices.nri.io"),
    ],
)
def test_most_specific_then_newest_key_wins(winner: str, loser: str) -> None:
    # The loser is not even parsed: invalid YAML there must not matter.
    assert devices({winner: NULL, loser: "- - [oops"}) == [dev("/dev/test-null", 1, 3)]


def test_pod_level_applies_to_every_container() -> None:
    annotations = {"devices.nri.io": ZERO}
    assert devices(annotations, "a") == devices(annotations, "b") == [dev("/dev/test-zero", 1, 5)]


def test_empty_effective_annotation_masks_less_specific_ones() -> None:
    annotations = {
        "devices.noderesource.dev/container.ctr0": "",
        "devices.noderesource.dev/pod": NULL,
    }
    assert devices(annotations) == []


def test_optional_device_fields_and_zero_values() -> None:
    text = (
        "- path: /dev/a\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 0666\n  uid: 5\n  gid: 6\n"
        "- path: /dev/b\n  type: b\n  major: 7\n  minor: 0\n  file_mode: 0\n  uid: 0\n"
    )
    got = devices({"devices.noderesource.dev/pod": text})
    assert got == [
        dev(
            "/dev/a",
            1,
            3,
            file_mode=pb.OptionalFileMode(value=0o666),
            uid=pb.OptionalUInt32(value=5),
            gid=pb.OptionalUInt32(value=6),
        ),
        pb.LinuxDevice(path="/dev/b", type="b", major=7, minor=0),
    ]


def test_field_names_match_case_insensitively_and_unknown_fields_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "- Path: /dev/x\n  TYPE: c\n  major: 1\n  minor: 3\n  colour: blue\n"
    with caplog.at_level(logging.WARNING):
        assert devices({"devices.nri.io": text}) == [dev("/dev/x", 1, 3)]
    assert "colour" in caplog.text


def test_cdi_devices_readme_example() -> None:
    annotations = {
        "cdi-devices.noderesource.dev/container.c0": "- vendor0.com/device=null\n",
        "cdi-devices.noderesource.dev/container.c1": "- vendor0.com/device=zero\n",
        "cdi-devices.noderesource.dev/container.c2": (
            "- vendor0.com/device=dev0\n- vendor1.com/device=dev0\n- vendor1.com/device=dev1\n"
        ),
        "cdi-devices.noderesource.dev/container.mgmt": "- vendor0.com/device=all\n",
    }
    expect = {
        "c0": ["vendor0.com/device=null"],
        "c1": ["vendor0.com/device=zero"],
        "c2": ["vendor0.com/device=dev0", "vendor1.com/device=dev0", "vendor1.com/device=dev1"],
        "mgmt": ["vendor0.com/device=all"],
        "other": [],
    }
    for ctr, names in expect.items():
        adjust = build_adjustment(annotations, ctr).message
        assert [d.name for d in adjust.CDI_devices] == names


def test_cdi_precedence_skips_unparsable_loser() -> None:
    annotations = {
        "cdi-devices.noderesource.dev/pod": "- - vendor0.com/device=zero\n",
        "cdi-devices.nri.io/container.ctr0": "- vendor0.com/device=null\n",
    }
    assert parse_cdi_devices("k", "- vendor0.com/device=null\n") == ["vendor0.com/device=null"]
    adjust = build_adjustment(annotations, "ctr0").message
    assert list(adjust.CDI_devices) == [pb.CDIDevice(name="vendor0.com/device=null")]


def test_mounts_upstream_cases() -> None:
    text = (
        "- source: /foo\n  destination: /host/foo\n  type: bind\n  options:\n    - bind\n"
        "- source: /bar\n  destination: /host/bar\n  type: bind\n  options:\n    - bind\n    - ro\n"
    )
    adjust = build_adjustment({"mounts.nri.io/container.ctr0": text}, "ctr0").message
    assert list(adjust.mounts) == [
        pb.Mount(source="/foo", destination="/host/foo", type="bind", options=["bind"]),
        pb.Mount(source="/bar", destination="/host/bar", type="bind", options=["bind", "ro"]),
    ]
    assert not adjust.HasField("linux")


def test_io_priority() -> None:
    text = "class: IOPRIO_CLASS_RT\npriority: 3\n"
    adjust = build_adjustment({"io-priority.noderesource.dev/pod": text}, "ctr0").message
    expected = pb.LinuxIOPriority(priority=3)
    setattr(expected, "class", pb.IOPRIO_CLASS_RT)
    assert adjust.linux.io_priority == expected


def test_unknown_io_priority_class_is_ignored_like_upstream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        adjust = build_adjustment({"io-priority.nri.io": "class: FAST\n"}, "c").message
    # upstream still initializes the (empty) linux adjustment
    assert adjust.HasField("linux") and not adjust.linux.HasField("io_priority")
    assert "FAST" in caplog.text


def test_all_kinds_together_in_upstream_order() -> None:
    annotations = {
        "devices.noderesource.dev/container.ctr0": NULL,
        "cdi-devices.noderesource.dev/pod": "- vendor0.com/device=null\n",
        "mounts.noderesource.dev": "- source: /s\n  destination: /d\n",
    }
    adjust = build_adjustment(annotations, "ctr0").message
    assert len(adjust.linux.devices) == 1
    assert len(adjust.CDI_devices) == 1
    assert list(adjust.mounts) == [pb.Mount(source="/s", destination="/d")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- path: /dev/x\n  type: c\n  major: [1\n", "invalid YAML"),
        ("path: /dev/x\n", "expected a YAML list of devices, got a mapping"),
        ("- /dev/x\n", "entry #0: expected a mapping"),
        ("- path: /dev/x\n  type: c\n  minor: 3\n", "entry #0: missing mandatory field(s): major"),
        ("- type: c\n  major: 1\n  minor: 3\n", "missing mandatory field 'path'"),
        ("- path: /dev/x\n  type: c\n  major: one\n  minor: 3\n", "major: cannot unmarshal string"),
        ("- path: /dev/x\n  type: c\n  major: true\n  minor: 3\n", "major: cannot unmarshal bool"),
        ("- path: /dev/x\n  type: c\n  major: 1.5\n  minor: 3\n", "number 1.5 into int64"),
        ("- path: /dev/x\n  type: z\n  major: 1\n  minor: 3\n", "invalid device type 'z'"),
        (
            "- path: /dev/x\n  type: c\n  major: 1\n  minor: 3\n  uid: -1\n",
            "uid: cannot unmarshal number -1 into uint32",
        ),
        ("- path: 5\n  type: c\n  major: 1\n  minor: 3\n", "path '5' must be an absolute path"),
        ("- path: dev/null\n  type: c\n  major: 1\n  minor: 3\n", "path 'dev/null' must be an abs"),
        ("- path: ../../etc/shadow\n", "path '../../etc/shadow' must be an absolute path"),
        ("- path: /dev/../etc/shadow\n", "path '/dev/../etc/shadow' must not contain '..'"),
        ("- path: /dev/x\n  host_path: dev/null\n", "host_path 'dev/null' must be an absolute"),
        ("- path: [1]\n", "path: cannot unmarshal array into string"),
        ("- match: {}\n", "needs at least one of"),
        ("- match: {subsystem: mem, colour: red}\n", "unknown field(s) in 'match': colour"),
        ("- match: {subsystem: mem}\n  path: /dev/x\n", "'match' cannot be combined with path"),
        ("- match: {attributes: {dev: [1]}}\n", "attributes.dev: cannot unmarshal array"),
    ],
)
def test_invalid_device_annotations(text: str, problem: str) -> None:
    with pytest.raises(AnnotationError) as info:
        parse_devices("devices.noderesource.dev/pod", text)
    assert "annotation 'devices.noderesource.dev/pod'" in str(info.value)
    assert problem in str(info.value)


def test_invalid_mounts_and_cdi() -> None:
    with pytest.raises(AnnotationError, match="missing mandatory field 'destination'"):
        parse_mounts("m", "- source: /s\n")
    with pytest.raises(AnnotationError, match=r"options\[1\]: cannot unmarshal array into string"):
        parse_mounts("m", "- destination: /d\n  options: [ro, [1]]\n")
    with pytest.raises(AnnotationError, match=r"entry #0: expected a CDI device name, got a list"):
        parse_cdi_devices("c", "- - vendor0.com/device=zero\n")


def test_create_container_error_names_pod_container_key_and_problem() -> None:
    pod = pb.PodSandbox(
        name="p",
        namespace="ns",
        annotations={"devices.noderesource.dev/container.web": "- path: /dev/x\n  type: c\n"},
    )
    with pytest.raises(InjectionError) as info:
        DeviceInjector().create_container(pod, pb.Container(name="web"))
    message = str(info.value)
    assert message.startswith("pod ns/p, container web: ")
    assert "'devices.noderesource.dev/container.web'" in message
    assert "missing mandatory field(s): major, minor" in message


def test_configure_parses_yaml_and_keeps_overrides() -> None:
    plugin = DeviceInjector(verbose=True)
    plugin.configure("host-lookup: false\n", "rt", "1")
    assert plugin.config == Config(host_lookup=False, verbose=True)
    with pytest.raises(ValueError, match="unknown key 'colour'"):
        plugin.configure("colour: red\n", "rt", "1")
