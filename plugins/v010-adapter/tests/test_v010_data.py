"""The v0.1.0 data: conf.json parsing, request encoding (byte for byte as Go's
encoding/json), result decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nri_v010_adapter import (
    V010Config,
    V010ConfigError,
    V010Plugin,
    V010Result,
    V010ResultError,
    build_request,
    go_compact,
    go_json,
    load_config,
    parse_config,
    parse_result,
    resources_to_oci_json,
    spec_from_container,
    spec_from_pod,
)

from nri.api import api_pb2 as pb

# -- conf.json ------------------------------------------------------------------------------


def test_missing_file_means_no_plugins(tmp_path: Path) -> None:
    assert load_config(str(tmp_path / "conf.json")) == V010Config(version="0.1", plugins=())


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(V010ConfigError, match=f"^{tmp_path}: cannot read: Is a directory"):
        load_config(str(tmp_path))


def test_upstream_config() -> None:
    text = """{
        "version": "0.1",
        "plugins": [
            {"type": "clearcfs"},
            {"type": "/opt/custom/bin/tagger", "conf": {"tags": ["a", "b"], "n": 1.50e3}}
        ]
    }"""
    assert parse_config(text) == V010Config(
        version="0.1",
        plugins=(
            V010Plugin("clearcfs"),
            V010Plugin("/opt/custom/bin/tagger", '{"tags":["a","b"],"n":1.50e3}'),
        ),
    )


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored() -> None:
    config = parse_config('{"VERSION": "2", "Plugins": [{"TYPE": "x", "CONF": null, "y": 1}],'
                          ' "extra": {"deep": [1]}}')  # fmt: skip
    assert config == V010Config(version="2", plugins=(V010Plugin("x", "null"),))


def test_repeated_key_last_wins() -> None:
    assert parse_config('{"version": "1", "version": "2"}').version == "2"


def test_only_the_first_json_value_is_read() -> None:
    # Go's json.Decoder.Decode stops after the first value
    assert parse_config('{"version": "1"} {"version": "2"} garbage').version == "1"


def test_null_and_missing_values() -> None:
    assert parse_config("null") == V010Config(version="", plugins=())
    assert parse_config("{}") == V010Config(version="", plugins=())
    assert parse_config('{"version": null, "plugins": null}') == V010Config(version="")
    assert parse_config('{"plugins": [{}]}').plugins == (V010Plugin(""),)


def test_conf_is_compacted_like_go() -> None:
    conf = parse_config('{"plugins": [{"type": "x", "conf": {"a b" : "<&>\\u0041 \\n",\n'
                        '"c":[ 1 , true ]}}]}').plugins[0].conf  # fmt: skip
    assert conf == '{"a b":"\\u003c\\u0026\\u003e\\u0041 \\n","c":[1,true]}'
    assert go_compact('"\u2028" ') == '"\\u2028"'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ("[1]", "expected a JSON object, got an array"),
        ('"x"', "expected a JSON object, got a string"),
        ('{"version": 1}', "version must be a string, got a number"),
        ('{"plugins": {}}', "plugins must be an array, got an object"),
        ('{"plugins": [null]}', "plugins[0] must be an object, got null"),
        ('{"plugins": [{"type": true}]}', "plugins[0].type must be a string, got a boolean"),
        ('{"version": "1",}', "line 1 column 17"),
        ('{"version": "1"', "line 1 column 16"),
        ('{\n  "plugins": [x]}', "line 2 column 15"),
        ("[" * 100 + "]" * 100, "nesting deeper than 64 levels"),
        ("[" * 100000, "conf.json"),
    ],
)
def test_bad_config(text: str, problem: str) -> None:
    with pytest.raises(V010ConfigError) as info:
        parse_config(text, source="conf.json")
    message = str(info.value)
    assert message.startswith("conf.json: ")
    assert problem in message
    assert "\n" not in message


def test_not_utf8_and_oversized() -> None:
    with pytest.raises(V010ConfigError, match="not UTF-8"):
        parse_config(b'{"version": "\xff"}', source="c")
    with pytest.raises(V010ConfigError, match="larger than 1048576 bytes"):
        parse_config(b" " * (2 << 20), source="c")


# -- requests -------------------------------------------------------------------------------


def full_resources() -> pb.LinuxResources:
    r = pb.LinuxResources()
    r.memory.limit.value = 1 << 30
    r.memory.swappiness.value = 60
    r.memory.disable_oom_killer.value = False
    r.cpu.shares.value = 1024
    r.cpu.quota.value = -1
    r.cpu.cpus = "0-3"
    r.hugepage_limits.add(page_size="2MB", limit=4096)
    r.unified["memory.high"] = "max"
    r.unified["cpu.weight"] = "100"
    r.devices.add(allow=False, access="rwm")
    dev = r.devices.add(allow=True, type="c", access="rw")
    dev.major.value = 1
    dev.minor.value = 3
    r.pids.limit = 100
    r.blockio_class.value = "gold"  # not in v0.10.0's ToOCI
    r.rdt_class.value = "silver"
    return r


def test_resources_like_v010_to_oci() -> None:
    assert resources_to_oci_json(None) is None
    assert go_json(resources_to_oci_json(pb.LinuxResources())) == '{"memory":{},"cpu":{}}'
    assert go_json(resources_to_oci_json(full_resources())) == (
        '{"devices":[{"allow":false,"access":"rwm"},'
        '{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}],'
        '"memory":{"limit":1073741824,"swappiness":60,"disableOOMKiller":false},'
        '"cpu":{"shares":1024,"quota":-1,"cpus":"0-3"},'
        '"pids":{"limit":100},'
        '"hugepageLimits":[{"pageSize":"2MB","limit":4096}],'
        '"unified":{"cpu.weight":"100","memory.high":"max"}}'
    )


def make_pod() -> pb.PodSandbox:
    pod = pb.PodSandbox(
        id="pod-id", name="web", namespace="ns", uid="u", pid=4242,
        labels={"zeta": "1", "app": "web<1>"},
        annotations={"b": "2", "a": "1"},
    )  # fmt: skip
    pod.linux.namespaces.add(type="network", path="/var/run/netns/cni-1")
    pod.linux.namespaces.add(type="ipc")
    pod.linux.cgroups_path = "kubepods-pod.slice:cri:pod-id"
    pod.linux.resources.cpu.shares.value = 2
    return pod


def test_pod_request() -> None:
    pod = make_pod()
    text = build_request(
        version="0.1", state="create", id=pod.id, pid=pod.pid, spec=spec_from_pod(pod),
        sandbox_id=pod.id, labels=pod.labels,
    )  # fmt: skip
    assert text == (
        '{"version":"0.1","state":"create","id":"pod-id","sandboxID":"pod-id","pid":4242,'
        '"spec":{"resources":{"memory":{},"cpu":{"shares":2}},'
        '"namespaces":{"ipc":"","network":"/var/run/netns/cni-1"},'
        '"cgroupsPath":"kubepods-pod.slice:cri:pod-id","annotations":{"a":"1","b":"2"}},'
        '"labels":{"app":"web\\u003c1\\u003e","zeta":"1"}}'
    )
    assert json.loads(text)["labels"]["app"] == "web<1>"


def test_container_request_with_conf_and_results() -> None:
    ctr = pb.Container(id="ctr-id", pod_sandbox_id="pod-id", name="app")
    text = build_request(
        version="", state="delete", id=ctr.id, pid=ctr.pid, spec=spec_from_container(ctr),
        sandbox_id="pod-id", labels={},
        results=[V010Result("first", "0.1", "", {"k": "v"}), V010Result()],
        conf='{"x":1}',
    )  # fmt: skip
    # pid 0, empty labels, namespaces, cgroupsPath and annotations are left out; a missing
    # resources message is null
    assert text == (
        '{"conf":{"x":1},"version":"","state":"delete","id":"ctr-id","sandboxID":"pod-id",'
        '"spec":{"resources":null},'
        '"results":[{"plugin":"first","version":"0.1","error":"","metadata":{"k":"v"}},'
        '{"plugin":"","version":"","error":""}]}'
    )


def test_go_json_escapes() -> None:
    assert go_json({"k": '\x01\x7f\n\t\u2029é"\\'}) == '{"k":"\\u0001\x7f\\n\\t\\u2029é\\"\\\\"}'


# -- results --------------------------------------------------------------------------------


def test_result() -> None:
    out = b'{"plugin": "clearcfs", "Version": "0.1", "error": "", "metadata": {"a": "b"}, "x": 1}'
    assert parse_result(out) == V010Result("clearcfs", "0.1", "", {"a": "b"})
    assert parse_result(b"null") == V010Result()
    assert parse_result(b'{"metadata": null, "error": null}') == V010Result()


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (b"", "unexpected end of JSON input"),
        (b" \n", "unexpected end of JSON input"),
        (b"garbage", "line 1 column 1"),
        (b'{"plugin": "a"} extra', "line 1 column 17"),
        (b"[]", "cannot unmarshal array into v1.Result"),
        (b'{"error": 1}', "error: cannot unmarshal number 1 into string"),
        (b'{"metadata": {"a": 1}}', "metadata.a: cannot unmarshal number 1 into string"),
        (b"[" * 1000 + b"]" * 1000, "nesting deeper than 64 levels"),
    ],
)
def test_bad_result(output: bytes, problem: str) -> None:
    with pytest.raises(V010ResultError) as info:
        parse_result(output)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_result_with_invalid_utf8_is_replaced_like_go() -> None:
    assert parse_result(b'{"plugin": "a\xffb"}').plugin == "a\ufffdb"


def test_readme_request_example_is_what_is_sent() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (example,) = [line for line in readme.splitlines() if line.startswith('{"conf":')]
    ctr = pb.Container(
        id="ctr-id", pod_sandbox_id="pod-id", name="app", pid=4242,
        annotations={"io.kubernetes.cri.container-name": "app"},
    )  # fmt: skip
    ctr.linux.namespaces.add(type="network", path="/var/run/netns/cni-1")
    ctr.linux.namespaces.add(type="ipc")
    ctr.linux.cgroups_path = "kubepods.slice:cri:ctr-id"
    ctr.linux.resources.memory.limit.value = 1 << 30
    ctr.linux.resources.cpu.shares.value = 1024
    assert example == build_request(
        version="0.1", state="create", id=ctr.id, pid=ctr.pid, spec=spec_from_container(ctr),
        sandbox_id="pod-id", labels={"app": "web"}, results=[V010Result("clearcfs", "0.1", "")],
        conf=parse_config(readme[readme.index('{\n  "version"'):]).plugins[1].conf,
    )  # fmt: skip


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_go_json_round_trips(value: object) -> None:
    text = go_json(value)
    assert json.loads(text) == value
    assert not set("<>&\u2028\u2029") & set(text)


@given(JSON_VALUES)
def test_compacting_indented_json_gives_the_compact_encoding(value: object) -> None:
    indented = json.dumps(value, indent=2, ensure_ascii=False)
    assert go_compact(indented) == go_json(value)


@given(JSON_VALUES)
def test_conf_is_passed_on_as_it_decodes(value: object) -> None:
    conf = json.dumps({"plugins": [{"type": "x", "conf": value}]}, indent=1)
    (plugin,) = parse_config(conf).plugins
    assert plugin.conf is not None and json.loads(plugin.conf) == value
