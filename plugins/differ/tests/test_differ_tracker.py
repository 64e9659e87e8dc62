"""Handler-level tests of the differ: what consecutive indices see, as paths or YAML."""

from __future__ import annotations

import logging

import pytest
from nri_differ import (
    DifferConfig,
    DifferPlugin,
    Tracker,
    field_changes,
    parse_config,
    parse_indices,
)

from nri.api import api_pb2 as pb
from nri.stub import ConfigError, Stub


def pod() -> pb.PodSandbox:
    return pb.PodSandbox(id="pod-1", name="web", namespace="default")


def container(**changes: object) -> pb.Container:
    ctr = pb.Container(id="ctr-1", pod_sandbox_id="pod-1", name="app", env=["A=1"])
    for key, value in changes.items():
        if key == "env":
            ctr.env.append(str(value))
        elif key == "annotation":
            ctr.annotations["note"] = str(value)
        elif key == "state":
            ctr.state = value  # type: ignore[assignment]
    return ctr


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nri.differ"]


def plugins(tracker: Tracker) -> dict[str, DifferPlugin]:
    return {idx: DifferPlugin(tracker, idx) for idx in tracker.indices}


def test_changes_between_consecutive_indices(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nri.differ")
    p = plugins(Tracker(["00", "50", "99"]))
    p["00"].create_container(pod(), container())
    p["50"].create_container(pod(), container(env="B=2"))
    p["99"].create_container(pod(), container(env="B=2", annotation="x"))
    assert messages(caplog) == [
        "[50] CreateContainer: pod: <no changes>",
        "[50] CreateContainer: container: create: env[1]: From: <none> -> To: B=2",
        "[99] CreateContainer: pod: <no changes>",
        "[99] CreateContainer: container: create: annotations.note: From: <none> -> To: x",
    ]


def test_first_index_shows_changes_since_last_seen(caplog: pytest.LogCaptureFixture) -> None:
    p = plugins(Tracker(["10", "90"]))
    p["10"].post_create_container(pod(), container(state=pb.CONTAINER_CREATED))
    p["90"].post_create_container(pod(), container(state=pb.CONTAINER_CREATED))
    caplog.set_level(logging.INFO, logger="nri.differ")
    p["10"].start_container(pod(), container(state=pb.CONTAINER_RUNNING))
    assert messages(caplog) == [
        "[10] StartContainer: container (since PostCreateContainer): update: state: "
        "From: CONTAINER_CREATED -> To: CONTAINER_RUNNING"
    ]


def test_remove_forgets_the_container() -> None:
    tracker = Tracker(["00", "99"])
    p = plugins(tracker)
    p["00"].start_container(pod(), container())
    p["99"].start_container(pod(), container())
    assert ("container", "ctr-1") in tracker.seen
    p["00"].remove_container(pod(), container())
    p["99"].remove_container(pod(), container())
    assert ("container", "ctr-1") not in tracker.seen
    assert not tracker.pending


def test_yaml_diff_mode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nri.differ")
    p = plugins(Tracker(["00", "99"], DifferConfig(yaml=True)))
    p["00"].create_container(pod(), container())
    p["99"].create_container(pod(), container(env="B=2"))
    lines = messages(caplog)
    assert "[99] CreateContainer: container: --- container@00" in lines
    assert "[99] CreateContainer: container: +++ container@99" in lines
    assert "[99] CreateContainer: container: +- B=2" in lines


def test_missing_snapshot_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nri.differ")
    plugins(Tracker(["00", "99"]))["99"].stop_container(pod(), container())
    assert messages(caplog) == []


def test_field_changes_paths() -> None:
    changes = field_changes({"a": {"b": 1}, "l": [1, 2]}, {"a": {"b": 2, "c": 3}, "l": [1]})
    assert [str(c) for c in changes] == [
        "update: a.b: From: 1 -> To: 2",
        "create: a.c: From: <none> -> To: 3",
        "delete: l[1]: From: 2 -> To: <none>",
    ]


def test_every_lifecycle_event_is_subscribed() -> None:
    stub = Stub(DifferPlugin(Tracker(["00", "99"]), "00"), name="differ", idx="00", environ={})
    assert int(stub.events) == 0x1FFF  # everything but ValidateContainerAdjustment


@pytest.mark.parametrize(
    ("spec", "message"),
    [("5", "at least two"), ("1,x", "'x'"), ("1,100", "'100'"), ("3,03", "twice")],
)
def test_bad_indices(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_indices(spec)


def test_indices_are_sorted_two_digit() -> None:
    assert parse_indices("99, 0,50") == ["00", "50", "99"]


def test_config_keys_as_upstream() -> None:
    config, given = parse_config("indices: '10,20'\nverboseLevel: 2\nyaml: true\nlogFile: ''\n")
    assert (config.index_list(), config.verbose_level, config.yaml) == (["10", "20"], 2, True)
    assert given == {"indices", "verbose_level", "yaml", "log_file"}
    with pytest.raises(ConfigError, match="verboseLevel must be 0..3"):
        parse_config("verboseLevel: 7")


def test_hostile_config_is_one_clear_error() -> None:
    from nri_differ import parse_config

    from nri.stub import ConfigError

    for text, problem in (
        ("indices: " + "[" * 100 + "]" * 100, "nesting deeper than 64 levels"),
        ("a: &a [*a]\n", "anchor 'a' value contains itself"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(text, source="differ.yaml")
        assert str(info.value).startswith("differ.yaml: ") and problem in str(info.value)
