"""The plugin object: which configuration wins, reloading, the request errors it raises."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from nri_rules import RulesPlugin, load_rules_file, placeholder_devices

from nri.api import pb
from nri.stub import ConfigError, RequestError

ONE = "rules:\n- {name: one, adjust: {env: {V: '1'}}}\n"
TWO = "rules:\n- {name: two, adjust: {env: {V: '2'}}}\n"
POD = pb.PodSandbox(id="p", name="p", namespace="ns")
CTR = pb.Container(id="c", name="c")


def env_of(plugin: RulesPlugin) -> list[str]:
    adjust = plugin.create_container(POD, CTR)
    return [f"{e.key}={e.value}" for e in adjust.message.env] if adjust else []


def replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def plugin_for(path: Path) -> RulesPlugin:
    return RulesPlugin(
        load_rules_file(path),
        path,
        poll_interval=0,
        resolve=placeholder_devices,
        initial_text=path.read_text(),
    )


async def test_the_handed_over_file_text_keeps_the_file_watched(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ONE)
    plugin = plugin_for(path)
    await plugin.configure(ONE, "containerd", "2.1")
    replace(path, TWO)
    assert env_of(plugin) == ["V=2"]
    # after a reconnection the stub hands over the original text again: it is not a new
    # configuration, and the newer file stays in force
    await plugin.configure(ONE, "containerd", "2.1")
    assert env_of(plugin) == ["V=2"]
    assert plugin.path == path


async def test_the_runtimes_configuration_wins_and_is_not_watched(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ONE)
    plugin = plugin_for(path)
    await plugin.configure(TWO, "containerd", "2.1")
    assert env_of(plugin) == ["V=2"]
    assert plugin.path is None
    replace(path, ONE.replace("'1'", "'3'"))
    assert env_of(plugin) == ["V=2"]
    with pytest.raises(ConfigError, match=r"^rules configuration: rule #0: name: missing$"):
        await plugin.configure("rules: [{adjust: {env: {A: b1}}}]", "containerd", "2.1")


def test_reload_logs_an_invalid_file_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ONE)
    plugin = plugin_for(path)
    replace(path, "rules: [\n")
    with caplog.at_level(logging.ERROR, logger="nri.rules"):
        assert not plugin.reload()
        assert not plugin.reload()
    assert len(caplog.records) == 1
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"not reloading rules, keeping the 1 rules loaded before: {path}: ")
    )
    assert env_of(plugin) == ["V=1"]
    replace(path, TWO)
    assert plugin.reload()
    assert env_of(plugin) == ["V=2"]


def test_a_rule_that_cannot_be_applied_fails_the_request(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n- {name: dev, adjust: {devices: [{path: /dev/nri-rules-none}]}}\n")
    plugin = RulesPlugin(load_rules_file(path), path, poll_interval=0)
    with pytest.raises(
        RequestError,
        match=r"^pod ns/p, container c: rule #0 \(dev\): adjust.devices\[0\]: /dev/nri-rules-none: "
        r"no such device node on the host: /dev/nri-rules-none$",
    ):
        plugin.create_container(POD, CTR)
    assert plugin.update_container(POD, CTR, pb.LinuxResources()) is None
