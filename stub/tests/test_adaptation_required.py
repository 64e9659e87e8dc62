"""Required plugins: CreateContainer fails closed while one is missing or was just dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from _adaptation_helpers import (
    FakeRuntime,
    config_for,
    create_request,
    env_of,
    plugin_process,
)

from nri.adaptation import DefaultValidatorConfig, RequiredPluginError, ValidationError
from nri.api import api_pb2 as pb

TOLERATE = "tolerate-missing-plugins.example.com"


def _request(cid: str, annotations: dict[str, str] | None = None) -> pb.CreateContainerRequest:
    request = create_request(cid)
    request.pod.namespace = "team-a"
    request.pod.annotations.update(annotations or {})
    return request


@pytest.mark.timeout(30)
async def test_missing_required_plugin_fails_creation_until_it_registers(tmp_path: Path) -> None:
    config = config_for(tmp_path, required_plugins=["10-rec", "guard"])
    record = tmp_path / "record"
    async with FakeRuntime().adaptation(config) as nri:
        with pytest.raises(RequiredPluginError) as err:
            await nri.create_container(_request("c0"))
        assert str(err.value) == (
            "cannot create container c0 (pod team-a/pod): required plugins "
            '"10-rec", "guard" not registered'
        )
        assert err.value.missing == ["10-rec", "guard"]
        assert isinstance(err.value, ValidationError)
        async with (
            plugin_process(config.socket_path, "10", "rec", f"record: {record}\n", tmp_path),
            plugin_process(config.socket_path, "90", "guard", "{}\n", tmp_path),
        ):
            await nri.wait_for_plugins(names=["10-rec", "90-guard"])
            created = await nri.create_container(_request("c1"))
            assert env_of(created) == {"ADDED_BY_10": "10-rec", "ADDED_BY_90": "90-guard"}
        # Gone again: the runtime fails closed.
        await nri.wait_for_plugins(count=0)
        with pytest.raises(RequiredPluginError, match="not registered"):
            await nri.create_container(_request("c2"))
    # The plugin that was there saw no event of a container that was refused.
    assert "CreateContainer c0" not in record.read_text()
    assert "CreateContainer c2" not in record.read_text()


@pytest.mark.timeout(30)
async def test_required_plugin_dropped_during_the_event_fails_it(tmp_path: Path) -> None:
    config = config_for(tmp_path, required_plugins=["dies"])
    async with (
        FakeRuntime().adaptation(config) as nri,
        plugin_process(config.socket_path, "10", "dies", "mode: die\n", tmp_path),
        plugin_process(config.socket_path, "20", "other", "{}\n", tmp_path),
    ):
        await nri.wait_for_plugins(names=["10-dies", "20-other"])
        with pytest.raises(RequiredPluginError) as err:
            await nri.create_container(_request("c1"))
        assert err.value.missing == ["dies"]


@pytest.mark.timeout(30)
async def test_default_validator_annotation_tolerates_missing_required_plugins(
    tmp_path: Path,
) -> None:
    config = config_for(
        tmp_path,
        required_plugins=["guard"],
        default_validator=DefaultValidatorConfig(tolerate_missing_annotation=TOLERATE),
    )
    async with FakeRuntime().adaptation(config) as nri:
        created = await nri.create_container(_request("c1", {TOLERATE: "true"}))
        assert env_of(created) == {}
        # Per container: another container of the same pod is not tolerated.
        with pytest.raises(RequiredPluginError):
            await nri.create_container(
                _request("c2", {f"{TOLERATE}/container.c1": "true", TOLERATE: "false"})
            )
        with pytest.raises(RequiredPluginError):
            await nri.create_container(_request("c3", {TOLERATE: "maybe"}))


async def test_no_required_plugins_is_upstream_behaviour(tmp_path: Path) -> None:
    async with FakeRuntime().adaptation(config_for(tmp_path)) as nri:
        assert env_of(await nri.create_container(_request("c1"))) == {}


@pytest.mark.timeout(30)
async def test_required_plugin_whose_answer_is_skipped_fails_creation(tmp_path: Path) -> None:
    config = config_for(
        tmp_path, required_plugins=["10-slow"], request_timeout=0.3, timeout_policy="skip"
    )
    async with (
        FakeRuntime().adaptation(config) as nri,
        plugin_process(config.socket_path, "10", "slow", "mode: hang\n", tmp_path),
    ):
        await nri.wait_for_plugins(names=["10-slow"])
        with pytest.raises(RequiredPluginError) as err:
            await nri.create_container(_request("c1"))
        assert str(err.value) == (
            'cannot create container c1 (pod team-a/pod): required plugin "10-slow" '
            "dropped or did not answer in time"
        )
        # Skipped, not dropped: it is still registered.
        assert [p.full_name for p in nri.plugins] == ["10-slow"]
