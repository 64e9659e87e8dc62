"""Handler-level tests of the request logger: YAML dumps, injections, configuration."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from nri_logger import LoggerConfig, RequestLogger, parse_config, to_data

from nri.api import EventMask, parse_event_list
from nri.api import api_pb2 as pb
from nri.stub import ConfigError, Stub


def pod() -> pb.PodSandbox:
    return pb.PodSandbox(id="pod-1", name="web", namespace="default", labels={"app": "web"})


def container() -> pb.Container:
    return pb.Container(
        id="ctr-1",
        pod_sandbox_id="pod-1",
        name="nginx",
        state=pb.CONTAINER_CREATED,
        env=["PATH=/bin"],
        linux=pb.LinuxContainer(
            resources=pb.LinuxResources(
                memory=pb.LinuxMemory(limit=pb.OptionalInt64(value=1 << 30))
            )
        ),
    )


def test_to_data_is_readable() -> None:
    data = to_data(container())
    assert data["state"] == "CONTAINER_CREATED"
    assert data["linux"]["resources"]["memory"]["limit"] == {"value": 1 << 30}
    assert "args" not in data  # unset fields are left out


def test_create_container_dumps_pod_and_container(caplog: pytest.LogCaptureFixture) -> None:
    plugin = RequestLogger()
    with caplog.at_level(logging.INFO, logger="nri.logger"):
        result = plugin.create_container(pod(), container())
    assert result.message == pb.ContainerAdjustment()
    lines = [r.getMessage() for r in caplog.records if r.name == "nri.logger"]
    assert lines[0] == "CreateContainer: pod:"
    assert "CreateContainer:    name: web" in lines
    assert "CreateContainer: container:" in lines
    assert "CreateContainer:    name: nginx" in lines
    assert "CreateContainer:          limit:" in lines
    assert "CreateContainer:            value: 1073741824" in lines


def test_add_and_set_injections_match_upstream() -> None:
    config = LoggerConfig(add_annotation="a", set_annotation="s", add_env="AE", set_env="SE")
    adjust = RequestLogger(config).create_container(pod(), container()).message
    value = f"logger-pid-{os.getpid()}"
    expected = pb.ContainerAdjustment(annotations={"a": value, "-s": "", "s": value})
    expected.env.add(key="AE", value=value)
    expected.env.add(key="-SE")
    expected.env.add(key="SE", value=value)
    assert adjust == expected


def test_events_from_config_select_subscription() -> None:
    plugin = RequestLogger(LoggerConfig(events="RunPodSandbox,createcontainer"))
    assert plugin.events == parse_event_list("runpodsandbox,createcontainer")
    stub = Stub(plugin, name="logger", idx="10", environ={})
    assert int(stub.events) == (1 << 0) | (1 << 3)


def test_default_subscription_is_every_event() -> None:
    stub = Stub(RequestLogger(), name="logger", idx="10", environ={})
    assert int(stub.events) == 0x3FFF


def test_configure_merges_runtime_config_and_switches_log_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.logger")
    plugin = RequestLogger(LoggerConfig(add_env="KEEP"))
    log_file = tmp_path / "logger.log"
    mask = plugin.configure(
        f"logFile: {log_file}\nevents: [StopContainer]\nsetAnnotation: x\n", "containerd", "2.1"
    )
    assert mask == EventMask(1 << (pb.STOP_CONTAINER - 1))
    assert plugin.config.add_env == "KEEP"  # not in the runtime config: kept
    assert plugin.config.set_annotation == "x"
    plugin.stop_container(pod(), container())
    plugin.close()
    text = log_file.read_text()
    assert "StopContainer: container:" in text
    assert "StopContainer:    id: ctr-1" in text


def test_configure_with_empty_config_keeps_subscription() -> None:
    plugin = RequestLogger(LoggerConfig(events=["pod"]))
    assert plugin.configure("", "containerd", "2.1") == parse_event_list("pod")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events: [bogus]", "events"),
        ("logFile: 3", "log_file"),
        ("colour: red", "unknown key 'colour'"),
        ("- a list", "expected a mapping"),
    ],
)
def test_bad_config_is_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text, source="runtime configuration")
    assert "runtime configuration" in str(info.value)


def test_unopenable_log_file_is_a_config_error(tmp_path: Path) -> None:
    plugin = RequestLogger()
    with pytest.raises(ConfigError, match="cannot open log file"):
        plugin.configure(f"logFile: {tmp_path}/missing/dir.log", "containerd", "2.1")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"b{i}: &b{i} [{', '.join([f'*b{i - 1}' if i else '*a'] * 10)}]\n" for i in range(5)
            ),
            "aliases expand to more than",
        ),
        ("events: " + "[" * 100 + "]" * 100, "nesting deeper than 64 levels"),
        ("events: [a\n", "line 2 column 1"),
    ],
)
def test_hostile_config_is_one_clear_error(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="logger.yaml")
    assert str(info.value).startswith("logger.yaml: ")
    assert problem in str(info.value) and "\n" not in str(info.value)
