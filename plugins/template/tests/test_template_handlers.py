"""Handler-level tests of the template plugin: the handlers of upstream's template, each
logging one line and changing nothing."""

from __future__ import annotations

import logging

import pytest
from nri_template import TemplateConfig, TemplatePlugin, parse_config

from nri.api import api_pb2 as pb
from nri.api import format_event_mask
from nri.stub import EVENT_HANDLERS, ConfigError, Stub


def test_subscribes_like_upstreams_template() -> None:
    # upstream's template implements every pod and container lifecycle event: mask 2047
    stub = Stub(TemplatePlugin(), name="template", idx="10", environ={})
    assert int(stub.events) == 2047, format_event_mask(stub.events)


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
    handlers = [s for s in EVENT_HANDLERS if s.handler in vars(TemplatePlugin)]
    assert len(handlers) == 11
    for spec in handlers:
        caplog.clear()
        result = getattr(plugin, spec.handler)(*(values[a] for a in spec.arguments))
        assert len(caplog.records) == 1, spec.handler
        if spec.handler == "create_container":
            assert [r.message for r in result] == [pb.ContainerAdjustment()]
            assert caplog.records[0].getMessage() == "creating container ns/web/app"
        else:
            assert not result


def test_configure_loads_yaml() -> None:
    plugin = TemplatePlugin()
    plugin.configure("cfg_param1: x\n", "rt", "1")
    assert plugin.config == TemplateConfig(cfg_param1="x")
    plugin.configure("", "rt", "1")  # empty: keeps the current configuration
    assert plugin.config == TemplateConfig(cfg_param1="x")
    plugin.configure("cfgParam1: z\n", "rt", "1")  # upstream's key
    assert plugin.config == TemplateConfig(cfg_param1="z")


def test_bad_config_names_source_and_key() -> None:
    with pytest.raises(ConfigError, match="runtime configuration: unknown key 'bogus'"):
        TemplatePlugin().configure("bogus: 1", "rt", "1")
    with pytest.raises(ConfigError, match="cfg.yaml: cfg_param1: expected str"):
        parse_config("cfg_param1: [1]", "cfg.yaml")
