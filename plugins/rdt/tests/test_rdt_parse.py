"""Parsing the rdt annotations: upstream's test cases (plugins/rdt/main_test.go) and more."""

from __future__ import annotations

import pytest
from nri_rdt import RdtAnnotationError, RdtPlugin, build_adjustment, go_parse_bool, parse_rdt

from nri.api import api_pb2 as pb

C = "test-container"


def rdt_of(annotations: dict[str, str]) -> pb.ContainerAdjustment:
    return build_adjustment(parse_rdt(annotations, C)).message


def test_no_annotations_give_an_empty_adjustment() -> None:
    assert rdt_of({}) == pb.ContainerAdjustment()


def test_all_fields() -> None:
    adj = rdt_of(
        {
            f"closid.rdt.noderesource.dev/container.{C}": "foo",
            f"schemata.rdt.noderesource.dev/container.{C}": "L3:0=f,MB:0=50",
            f"enablemonitoring.rdt.noderesource.dev/container.{C}": "true",
        }
    )
    rdt = adj.linux.rdt
    assert rdt.clos_id.value == "foo"
    assert list(rdt.schemata.value) == ["L3:0=f", "MB:0=50"]
    assert rdt.HasField("enable_monitoring") and rdt.enable_monitoring.value is True
    assert not rdt.remove
    # nothing else is touched
    assert adj.linux.ListFields() == [
        (pb.LinuxContainerAdjustment.DESCRIPTOR.fields_by_name["rdt"], rdt)
    ]


def test_unknown_field_is_ignored_and_reported() -> None:
    settings = parse_rdt({f"unknown.rdt.noderesource.dev/container.{C}": "foo"}, C)
    assert not settings
    assert settings.unknown == ["unknown"]
    assert (
        rdt_of({f"unknown.rdt.noderesource.dev/container.{C}": "foo"}) == pb.ContainerAdjustment()
    )


def test_known_and_unknown() -> None:
    adj = rdt_of(
        {
            f"closid.rdt.noderesource.dev/container.{C}": "clos-1",
            f"unknown.rdt.noderesource.dev/container.{C}": "foo",
        }
    )
    assert adj.linux.rdt.clos_id.value == "clos-1"
    assert not adj.linux.rdt.HasField("schemata")
    assert not adj.linux.rdt.HasField("enable_monitoring")


def test_other_containers_keys_are_ignored() -> None:
    adj = rdt_of(
        {
            "closid.rdt.noderesource.dev/container.wrong-name": "clos-1",
            f"schemata.rdt.noderesource.dev/container.{C}": "L3:0=ff,MB:0=100",
            # a longer container name ending in ours is another container
            f"closid.rdt.noderesource.dev/container.x{C}": "clos-2",
            # no pod-wide form, no other domain
            "closid.rdt.noderesource.dev": "clos-3",
            f"closid.rdt.nri.io/container.{C}": "clos-4",
        }
    )
    assert not adj.linux.rdt.HasField("clos_id")
    assert list(adj.linux.rdt.schemata.value) == ["L3:0=ff", "MB:0=100"]


def test_prefixed_field_name_is_unknown() -> None:
    # upstream trims only the suffix: "x.closid" is not "closid"
    settings = parse_rdt({f"x.closid.rdt.noderesource.dev/container.{C}": "a"}, C)
    assert settings.clos_id is None and settings.unknown == ["x.closid"]


def test_schemata_split_like_go() -> None:
    assert parse_rdt({f"schemata.rdt.noderesource.dev/container.{C}": ""}, C).schemata == [""]
    assert parse_rdt({f"schemata.rdt.noderesource.dev/container.{C}": "a,,b,"}, C).schemata == [
        "a", "", "b", ""
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True), ("True", True),
     ("0", False), ("f", False), ("F", False), ("FALSE", False), ("false", False),
     ("False", False)],
)  # fmt: skip
def test_go_booleans(text: str, value: bool) -> None:
    assert go_parse_bool(text) is value
    adj = rdt_of({f"enablemonitoring.rdt.noderesource.dev/container.{C}": text})
    assert adj.linux.rdt.HasField("enable_monitoring")
    assert adj.linux.rdt.enable_monitoring.value is value


@pytest.mark.parametrize("text", ["not-a-boolean", "yes", "on", "tRUE", " true", ""])
def test_invalid_boolean_is_an_error(text: str) -> None:
    key = f"enablemonitoring.rdt.noderesource.dev/container.{C}"
    with pytest.raises(RdtAnnotationError) as info:
        parse_rdt({key: text, f"closid.rdt.noderesource.dev/container.{C}": "c"}, C)
    message = str(info.value)
    assert message.startswith(f"annotation {key}=")
    assert message.endswith(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    assert "\n" not in message


def test_hostile_value_is_quoted_on_one_line() -> None:
    key = f"enablemonitoring.rdt.noderesource.dev/container.{C}"
    with pytest.raises(RdtAnnotationError) as info:
        parse_rdt({key: "x\ny\x00"}, C)
    assert "\n" not in str(info.value)
    assert r'"x\ny\x00"' in str(info.value)


def test_plugin_always_replies_with_an_adjustment() -> None:
    # as upstream, which returns an empty ContainerAdjustment rather than none
    pod = pb.PodSandbox(name="p", namespace="ns", annotations={"other": "x"})
    adjust = RdtPlugin().create_container(pod, pb.Container(name=C))
    assert adjust is not None and adjust.message == pb.ContainerAdjustment()
