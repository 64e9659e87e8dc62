"""Handler-level tests of the template plugin: every handler logs one line, changes nothing."""

from __future__ import annotations

import logging

import pytest
from nri_template import TemplateConfig, TemplatePlugin, parse_config

from nri.api import api_pb2 as pb
from nri.stub import EVENT_HANDLERS, ConfigError, Stub


def test_subscribes_to_every_event() -> None:
    stub = Stub(TemplatePlugin(), name="template", idx="10", environ={})
    assert int(stub.events) == 0x3FFF


def test_every_handler_logs_once_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nri.plugin")
    plugin = TemplatePlugin()
    pod = pb.PodSandbox(id="p", name="web", namespace="ns")
    ctr = pb.Container(id="c", name="app")
    values = {
        "pod": pod,
        "container": ctr,
        "linux_resources": pb.LinuxResources(),
        "overhead_linux_resources": pb.LinuxResources(),
    }
    for spec in EVENT_HANDLERS:
        caplog.clear()
        result = getattr(plugin, spec.handler)(*(values[a] for a in spec.arguments))
        assert len(caplog.records) == 1, spec.handler
        if spec.handler == "create_container":
            assert [r.message for r in result] == [pb.ContainerAdjustment()]
            assert caplog.records[0].getMessage() == "creating container ns/web/app"
        else:
            assert not result
    caplog.clear()
    plugin.validate_container_adjustment(pb.ValidateContainerAdjustmentRequest(container=ctr))
    assert caplog.records[0].getMessage() == "validating container app"


def test_configure_loads_yaml() -> None:
    plugin = TemplatePlugin()
    plugin.configure("cfg_param1: x\n", "rt", "1")
    assert plugin.config == TemplateConfig(cfg_param1="x")
    plugin.configure("", "rt", "1")  # empty: keeps the current configuration
    assert plugin.config == TemplateConfig(cfg_param1="x")


def test_bad_config_names_source_and_key() -> None:
    with pytest.raises(ConfigError, match="runtime configuration: unknown key 'bogus'"):
        TemplatePlugin().configure("bogus: 1", "rt", "1")
    with pytest.raises(ConfigError, match="cfg.yaml: cfg_param1: expected str"):
        parse_config("cfg_param1: [1]", "cfg.yaml")
