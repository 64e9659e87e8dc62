"""Per-plugin timeouts and the timeout policies (close, skip, fail), with real plugins."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from _adaptation_helpers import (
    FakeRuntime,
    RawPlugin,
    config_for,
    create_request,
    env_of,
    install_plugin,
    plugin_process,
    read_lines,
)

from nri.adaptation import (
    AdaptationError,
    Config,
    PluginSettings,
    PluginTimeoutError,
    ValidationError,
)
from nri.adaptation._config import load_plugin_settings
from nri.api import Adjustment
from nri.api import api_pb2 as pb


def _slow_raw(socket_path: str, name: str, delays: dict[str, float]) -> RawPlugin:
    """A plugin answering CreateContainer after ``delays[container id]`` seconds."""

    async def create(request: pb.CreateContainerRequest) -> pb.CreateContainerResponse:
        await asyncio.sleep(delays.get(request.container.id, 0.0))
        return pb.CreateContainerResponse(
            adjust=Adjustment().add_env(f"BY_{name.upper()}", request.container.id).message
        )

    return RawPlugin(
        socket_path,
        idx="10",
        name=name,
        events=1 << (pb.CREATE_CONTAINER - 1),
        handlers={"CreateContainer": create},
    )


@pytest.mark.timeout(30)
async def test_skip_keeps_a_slow_plugin_and_closes_it_after_n_timeouts_in_a_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    delays = {"slow1": 5.0, "slow2": 5.0, "slow3": 5.0, "slow4": 5.0}
    config = config_for(
        tmp_path,
        request_timeout=0.3,
        timeout_policy="skip",
        max_consecutive_timeouts=3,
    )
    caplog.set_level(logging.INFO, "nri.adaptation")
    async with (
        FakeRuntime().adaptation(config) as nri,
        _slow_raw(config.socket_path, "slow", delays) as raw,
    ):
        await raw.register()
        await nri.wait_for_plugins(names=["10-slow"])
        first = await nri.create_container(create_request("slow1"))
        assert env_of(first) == {}
        # An answer in time resets the count.
        fast = await nri.create_container(create_request("fast"))
        assert env_of(fast) == {"BY_SLOW": "fast"}
        for cid in ("slow2", "slow3"):
            assert env_of(await nri.create_container(create_request(cid))) == {}
            assert [p.full_name for p in nri.plugins] == ["10-slow"]
        assert env_of(await nri.create_container(create_request("slow4"))) == {}
        assert nri.plugins == []
    skipped = [r.getMessage() for r in caplog.records if "going on without" in r.getMessage()]
    assert len(skipped) == 3
    assert "CreateContainer of container slow1 (pod /pod)" in skipped[0]
    assert "(1 in a row, closed at 3)" in skipped[0]
    assert "(2 in a row, closed at 3)" in skipped[2]
    closing = [r.getMessage() for r in caplog.records if "timeouts in a row" in r.getMessage()]
    assert len(closing) == 1
    assert (
        "closing plugin 10-slow: 3 timeouts in a row, the last handling CreateContainer"
        in (closing[0])
    )


@pytest.mark.timeout(30)
async def test_fail_policy_fails_the_event_and_keeps_the_plugin(tmp_path: Path) -> None:
    config = config_for(tmp_path, request_timeout=0.3, timeout_policy="fail")
    async with (
        FakeRuntime().adaptation(config) as nri,
        _slow_raw(config.socket_path, "slow", {"c1": 5.0}) as raw,
    ):
        await raw.register()
        await nri.wait_for_plugins(names=["10-slow"])
        with pytest.raises(PluginTimeoutError) as err:
            await nri.create_container(create_request("c1"))
        assert str(err.value) == (
            "plugin 10-slow timed out handling CreateContainer of container c1 "
            "(pod /pod) after 0.3s"
        )
        assert [p.full_name for p in nri.plugins] == ["10-slow"]
        ok = await nri.create_container(create_request("c2"))
        assert env_of(ok) == {"BY_SLOW": "c2"}


@pytest.mark.timeout(30)
async def test_close_is_the_default_and_drops_the_plugin(tmp_path: Path) -> None:
    config = config_for(tmp_path, request_timeout=0.3)
    async with (
        FakeRuntime().adaptation(config) as nri,
        _slow_raw(config.socket_path, "slow", {"c1": 5.0}) as raw,
    ):
        await raw.register()
        await nri.wait_for_plugins(names=["10-slow"])
        assert env_of(await nri.create_container(create_request("c1"))) == {}
        assert nri.plugins == []


@pytest.mark.timeout(30)
async def test_per_plugin_timeout_and_policy_by_name_from_config(tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        request_timeout=0.3,
        plugin_settings={
            "patient": PluginSettings(request_timeout=3.0),
            "10-strict": PluginSettings(timeout_policy="fail"),
        },
    )
    delays = {"c1": 1.0}
    async with (
        FakeRuntime().adaptation(config) as nri,
        _slow_raw(config.socket_path, "patient", delays) as patient,
        _slow_raw(config.socket_path, "strict", delays) as strict,
    ):
        await patient.register()
        await strict.register()
        await nri.wait_for_plugins(names=["10-patient", "10-strict"])
        # The patient plugin's 1 s answer is in time; the strict one fails the event.
        with pytest.raises(PluginTimeoutError, match="plugin 10-strict timed out"):
            await nri.create_container(create_request("c1"))
        # Configure told each plugin its own request timeout.
        configure = dict(patient.calls)["Configure"]
        assert configure.request_timeout == 3000
        assert dict(strict.calls)["Configure"].request_timeout == 300


@pytest.mark.timeout(30)
async def test_drop_in_settings_file_of_a_pre_installed_plugin(tmp_path: Path) -> None:
    record = tmp_path / "record"
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10-rec.conf").write_text(f"record: {record}\nmode: hang\n")
    (conf / "10-rec.nri.yaml").write_text("requestTimeout: 300ms\ntimeoutPolicy: skip\n")
    install_plugin(tmp_path / "plugins", "10-rec")
    config = config_for(tmp_path, request_timeout=20, max_consecutive_timeouts=5)
    async with FakeRuntime().adaptation(config) as nri:
        await nri.wait_for_plugins(names=["10-rec"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert env_of(await nri.create_container(create_request("c1"))) == {}
        # Answered in the plugin's own 0.3 s, not the runtime's 20 s; the plugin stays.
        assert loop.time() - started < 10
        assert [p.full_name for p in nri.plugins] == ["10-rec"]
    assert "CreateContainer c1" in read_lines(record)


@pytest.mark.timeout(30)
async def test_broken_settings_file_keeps_defaults_with_one_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10-rec.nri.yaml").write_text("requestTimeout: soon\n")
    config = config_for(tmp_path)
    async with (
        FakeRuntime().adaptation(config) as nri,
        plugin_process(config.socket_path, "10", "rec", "{}\n", tmp_path),
    ):
        await nri.wait_for_plugins(names=["10-rec"])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"plugin 10-rec keeps the default settings: {conf / '10-rec.nri.yaml'}: requestTimeout "
        "must be seconds or a duration such as 500ms or 2s, got string 'soon'"
    ]
    assert errors[0].exc_info is None


def test_settings_file_forms_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "10-x.nri.yaml"
    assert load_plugin_settings(str(path)) is None
    path.write_text("request_timeout: 1.5\nregistrationTimeout: 1m30s\ntimeoutPolicy: fail\n")
    assert load_plugin_settings(str(path)) == PluginSettings(1.5, 90.0, "fail")
    path.write_text("")
    assert load_plugin_settings(str(path)) == PluginSettings()
    for text, error in [
        ("- 1\n", "expected a mapping"),
        ("requestTimeout: -1\n", "request_timeout must be positive, got -1.0"),
        (
            "timeoutPolicy: drop\n",
            "timeoutPolicy must be one of close, skip, fail, got string 'drop'",
        ),
        ("timeout: 1\n", "unknown key 'timeout'"),
        ("a: [\n", "line 2 column 1"),
    ]:
        path.write_text(text)
        with pytest.raises(AdaptationError) as exc:
            load_plugin_settings(str(path))
        assert str(path) in str(exc.value)
        assert error in str(exc.value)
        assert "\n" not in str(exc.value)


def test_config_checks_the_new_settings() -> None:
    for kwargs, error in [
        ({"timeout_policy": "drop"}, "Config.timeout_policy must be one of close, skip, fail"),
        ({"max_consecutive_timeouts": 0}, "Config.max_consecutive_timeouts must be at least 1"),
        ({"shutdown_timeout": -1}, "Config.shutdown_timeout must not be negative"),
        (
            {"plugin_settings": {"x": PluginSettings(request_timeout=0)}},
            "Config.plugin_settings['x']: request_timeout must be positive",
        ),
    ]:
        with pytest.raises(AdaptationError, match=error.replace("[", r"\[")):
            Config(**kwargs).check()  # type: ignore[arg-type]


def test_settings_layers_name_then_indexed_name_then_file(tmp_path: Path) -> None:
    (tmp_path / "10-x.nri.yaml").write_text("timeoutPolicy: skip\n")
    config = Config(
        plugin_config_path=str(tmp_path),
        plugin_settings={
            "x": PluginSettings(request_timeout=1, timeout_policy="fail"),
            "10-x": PluginSettings(request_timeout=2),
        },
    )
    assert config.settings_for("10", "x") == PluginSettings(2, None, "skip")
    assert config.settings_for("20", "x") == PluginSettings(1, None, "fail")


@pytest.mark.timeout(30)
async def test_a_slow_validator_fails_validation_and_stays_with_skip(tmp_path: Path) -> None:
    config = config_for(
        tmp_path, request_timeout=0.3, timeout_policy="skip", max_consecutive_timeouts=2
    )
    slow = {"v1", "v3", "v4"}

    async def validate(
        request: pb.ValidateContainerAdjustmentRequest,
    ) -> pb.ValidateContainerAdjustmentResponse:
        if request.container.id in slow:
            await asyncio.sleep(5)
        return pb.ValidateContainerAdjustmentResponse()

    events = 1 << (pb.VALIDATE_CONTAINER_ADJUSTMENT - 1)
    async with (
        FakeRuntime().adaptation(config) as nri,
        RawPlugin(
            config.socket_path,
            idx="90",
            name="guard",
            events=events,
            handlers={"ValidateContainerAdjustment": validate},
        ) as raw,
    ):
        await raw.register()
        await nri.wait_for_plugins(names=["90-guard"])
        # Never skipped: a validator that does not answer fails the creation.
        with pytest.raises(ValidationError, match="validator plugin 90-guard failed"):
            await nri.create_container(create_request("v1"))
        assert [p.full_name for p in nri.plugins] == ["90-guard"]
        await nri.create_container(create_request("v2"))  # in time: the count starts over
        with pytest.raises(ValidationError):
            await nri.create_container(create_request("v3"))
        assert [p.full_name for p in nri.plugins] == ["90-guard"]
        with pytest.raises(ValidationError):
            await nri.create_container(create_request("v4"))
        assert nri.plugins == []
