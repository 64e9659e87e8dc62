"""The annotation: upstream's keys and their order, Go's typing of the values, its errors."""

from __future__ import annotations

import pytest
from nri_network_device_injector import (
    AnnotationError,
    Netdevice,
    annotation_keys,
    parse_netdevices,
)

KEY = "netdevice.noderesource.dev"
OLD = "netdevices.nri.containerd.io"
DOC = "netdevices.noderesource.dev"

SAMPLE = """
- name: enp2s2f0
  new_name: eth1
  address: 192.168.2.2
  prefix: 24
  mtu: 1500
- name: enp2s2f1
"""


def devices(value: str, key: str = KEY) -> list[Netdevice]:
    found, parsed = parse_netdevices({key: value})
    assert found == key
    return parsed


def test_upstream_readme_syntax() -> None:
    assert devices(SAMPLE) == [
        Netdevice("enp2s2f0", "eth1", "192.168.2.2", 24, 1500),
        Netdevice("enp2s2f1"),
    ]


def test_key_order_pod_suffix_first_then_new_before_old() -> None:
    assert annotation_keys() == (f"{KEY}/pod", f"{OLD}/pod", KEY, OLD)
    everything = {
        OLD: "- name: old",
        KEY: "- name: new",
        f"{OLD}/pod": "- name: oldpod",
        f"{KEY}/pod": "- name: newpod",
    }
    expected = ["newpod", "oldpod", "new", "old"]
    for key, name in zip(annotation_keys(), expected, strict=True):
        found, parsed = parse_netdevices(everything)
        assert (found, [d.name for d in parsed]) == (key, [name])
        del everything[key]
    assert parse_netdevices(everything) == ("", [])


def test_readme_key_is_read_only_when_asked() -> None:
    annotations = {DOC: "- name: dummy0\n  new_name: eth33"}
    assert parse_netdevices(annotations) == ("", [])
    found, parsed = parse_netdevices(annotations, documented_key=True)
    assert (found, parsed) == (DOC, [Netdevice("dummy0", "eth33")])
    # the code's own key still comes first
    both = {**annotations, KEY: "- name: mine"}
    assert parse_netdevices(both, documented_key=True)[1] == [Netdevice("mine")]
    assert annotation_keys(True) == (f"{KEY}/pod", f"{DOC}/pod", f"{OLD}/pod", KEY, DOC, OLD)


@pytest.mark.parametrize("value", ["", "null", "~", "[]", "# nothing\n"])
def test_empty_values_name_no_device(value: str) -> None:
    assert devices(value) == []


def test_go_value_typing() -> None:
    # sigs.k8s.io/yaml: numbers and booleans into string fields become their text,
    # integral floats fill int fields, keys match case-insensitively, unknown keys are dropped
    value = "- name: 12\n  NEW_NAME: yes\n  prefix: 24.0\n  MTU: 1e3\n  colour: red\n"
    assert devices(value) == [Netdevice("12", "true", "", 24, 1000)]
    # of two keys matching one field the last in JSON's sorted order wins ("name" > "Name")
    assert devices("- name: a\n  Name: b\n") == [Netdevice("a")]
    # a null entry is a zero device (found nowhere later)
    assert devices("- ~\n- name: x\n") == [Netdevice(""), Netdevice("x")]
    assert devices("- name: 0x1F\n  mtu: 0x5dc\n") == [Netdevice("31", mtu=1500)]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('- name: x\n  prefix: "24"', "[0].prefix: cannot unmarshal string into int64"),
        ("- name: x\n  mtu: 1500.5", "[0].mtu: cannot unmarshal number 1500.5 into int64"),
        ("- name: x\n  mtu: true", "[0].mtu: cannot unmarshal bool into int64"),
        ("- name: [a]", "[0].name: cannot unmarshal array into string"),
        ("name: x", "cannot unmarshal object into []netdevice"),
        ("- x", "[0]: cannot unmarshal string into netdevice"),
        (
            "- name: x\n  prefix: 9223372036854775808",
            "[0].prefix: cannot unmarshal number 9223372036854775808 into int64",
        ),
        ("[", "line 2 column 1: did not find expected node content"),
    ],
)
def test_invalid_annotation(value: str, problem: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        devices(value)
    assert str(caught.value) == f'invalid device annotation "{KEY}": {problem}'


def test_hostile_annotations_fail_cleanly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    for value in (bomb, "[" * 10_000, "- name: " + "x" * (2 << 20), "\udcff"):
        with pytest.raises(AnnotationError) as caught:
            devices(value)
        assert str(caught.value).startswith(f'invalid device annotation "{KEY}": ')
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("address", ["1.2.3", "192.168.02.1", "fe80::1%eth0", "eth0", " 1.2.3.4"])
def test_address_must_be_an_ip(address: str) -> None:
    # upstream: fmt.Errorf("error parsing address %s", n.Address), for any device in the list
    with pytest.raises(AnnotationError, match=f"^error parsing address {address}$"):
        devices(f"- name: ok\n  address: 10.0.0.1\n- name: x\n  address: '{address}'\n")


def test_defaults_are_not_applied_while_parsing() -> None:
    # upstream writes its defaults into a copy: the parsed entries keep what was given
    (device,) = devices("- name: dummy0\n  address: 10.1.2.3\n")
    assert (device.new_name, device.prefix) == ("", 0)
    assert device.pod_name(default_new_name=False) == ""
    assert device.pod_name(default_new_name=True) == "dummy0"
    assert device.prefix_length() == 32
    assert Netdevice("x", address="fd00::1").prefix_length() == 128
    assert Netdevice("x", address="::ffff:10.1.2.3").prefix_length() == 32  # Go: To4() != nil
    assert Netdevice("x", address="10.1.2.3", prefix=8).prefix_length() == 8
    assert Netdevice("x").prefix_length() == 0
