"""Who may talk to the runtime: registration once per connection, unique names, and
UpdateContainers only from registered, configured and synchronized plugins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _adaptation_helpers import FakeRuntime, RawPlugin, config_for
from _raw_wire import RawWire, register_bytes, request_bytes

from nri.api import api_pb2 as pb
from nri.net import encode_frames
from nri.ttrpc import (
    Code,
    MessageType,
    StatusError,
    decode_request,
    encode_message,
    encode_response,
)


def update_request() -> pb.UpdateContainersRequest:
    return pb.UpdateContainersRequest(
        update=[
            pb.ContainerUpdate(
                container_id="ctr0",
                linux=pb.LinuxContainerUpdate(
                    resources=pb.LinuxResources(cpu=pb.LinuxCPU(shares=pb.OptionalUInt64(value=2)))
                ),
            )
        ],
        evict=[pb.ContainerEviction(container_id="ctr0", reason="hostile")],
    )


def assert_untouched(runtime: FakeRuntime) -> None:
    assert runtime.updates == []
    assert runtime.evictions == []


async def expect_refused_or_closed(raw: RawWire, sid: int) -> None:
    """Request ``sid`` is refused (PERMISSION_DENIED), or the connection closes first."""
    try:
        reply = await raw.response(sid)
    except EOFError:
        return
    assert reply.status.code == Code.PERMISSION_DENIED, reply
    await raw.wait_closed()


@pytest.mark.timeout(20)
async def test_unregistered_connection_cannot_update_or_evict(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    async with runtime.adaptation(config) as nri, await RawWire.connect(config.socket_path) as raw:
        await raw.send(request_bytes(1, "UpdateContainers", update_request()))
        reply = await raw.response(1)
        assert reply.status.code == Code.PERMISSION_DENIED
        assert "not registered" in reply.status.message
        await raw.wait_closed()
        await asyncio.sleep(0.1)
        assert_untouched(runtime)
        assert nri.plugins == []


@pytest.mark.timeout(20)
async def test_refused_registration_cannot_update_even_in_the_same_write(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    async with runtime.adaptation(config), await RawWire.connect(config.socket_path) as raw:
        await raw.send(
            register_bytes(1, name="bad name")
            + request_bytes(3, "UpdateContainers", update_request())
        )
        assert (await raw.response(1)).status.code != Code.OK
        await expect_refused_or_closed(raw, 3)
        await asyncio.sleep(0.1)
        assert_untouched(runtime)


@pytest.mark.timeout(20)
async def test_update_before_configure_and_sync_is_not_applied(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path, request_timeout=0.5)
    async with runtime.adaptation(config) as nri, await RawWire.connect(config.socket_path) as raw:
        # Registers, asks for an update at once, and never answers Configure.
        await raw.send(register_bytes(1) + request_bytes(3, "UpdateContainers", update_request()))
        assert (await raw.response(1)).status.code == Code.OK
        await expect_refused_or_closed(raw, 3)
        assert_untouched(runtime)
        assert nri.plugins == []


@pytest.mark.timeout(20)
async def test_synchronized_plugin_may_update_right_after_sync(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = config_for(tmp_path)
    async with runtime.adaptation(config) as nri, await RawWire.connect(config.socket_path) as raw:
        await raw.send(register_bytes(1, name="fast"))
        # The update goes out right behind the Synchronize reply, in one write.
        seen: list[str] = []
        while "Synchronize" not in seen:
            conn, sid, _mtype, data = await raw.next_message()
            if conn != 1:
                continue
            method = decode_request(data).method
            seen.append(method)
            reply = (
                pb.ConfigureResponse() if method == "Configure" else pb.SynchronizeResponse()
            ).SerializeToString()
            out = encode_frames(
                1, encode_message(sid, MessageType.RESPONSE, encode_response(0, "", reply))
            )
            if method == "Synchronize":
                out += request_bytes(3, "UpdateContainers", update_request())
            await raw.send(out)
        reply = await raw.response(3)
        assert reply.status.code == Code.OK
        assert [u.container_id for u in runtime.updates] == ["ctr0"]
        assert [e.container_id for e in runtime.evictions] == ["ctr0"]
        assert [i.full_name for i in nri.plugins] == ["50-fast"]


@pytest.mark.timeout(20)
async def test_duplicate_name_is_refused_and_the_first_stays(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with FakeRuntime().adaptation(config) as nri:
        async with RawPlugin(config.socket_path, idx="50", name="dup") as first:
            await first.register()
            await nri.wait_for_plugins(names=["50-dup"])
            async with RawPlugin(config.socket_path, idx="50", name="dup") as second:
                with pytest.raises(StatusError, match=r'plugin "50-dup" is already registered'):
                    await second.register()
                assert second.mux is not None
                await asyncio.wait_for(second.mux.wait_closed(), 5)
                assert second.called() == []
            assert [i.full_name for i in nri.plugins] == ["50-dup"]
            # The first one still works.
            assert first.called() == ["Configure", "Synchronize"]
        # Once the first is gone, the name is free again.
        for _ in range(100):
            if not nri.plugins:
                break
            await asyncio.sleep(0.05)
        async with RawPlugin(config.socket_path, idx="50", name="dup") as third:
            await third.register()
            await nri.wait_for_plugins(names=["50-dup"])


@pytest.mark.timeout(20)
async def test_duplicate_name_racing_the_first_handshake_is_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with FakeRuntime().adaptation(config) as nri:
        held = asyncio.Event()

        async def slow_configure(request: pb.ConfigureRequest) -> pb.ConfigureResponse:
            await held.wait()
            return pb.ConfigureResponse()

        async with (
            RawPlugin(
                config.socket_path, name="dup", handlers={"Configure": slow_configure}
            ) as first,
            RawPlugin(config.socket_path, name="dup") as second,
        ):
            await first.register()  # registered, still inside Configure
            with pytest.raises(StatusError, match="already registered"):
                await second.register()
            held.set()
            await nri.wait_for_plugins(names=["50-dup"])
            assert len(nri.plugins) == 1


@pytest.mark.timeout(20)
async def test_second_register_on_a_connection_is_refused_and_closes_it(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with FakeRuntime().adaptation(config) as nri:
        async with RawPlugin(config.socket_path, idx="50", name="first") as raw:
            await raw.register()
            await nri.wait_for_plugins(names=["50-first"])
            raw.idx, raw.name = "05", "other"
            with pytest.raises(StatusError, match="already registered as"):
                await raw.register()
            assert raw.mux is not None
            await asyncio.wait_for(raw.mux.wait_closed(), 5)
        for _ in range(100):
            if not nri.plugins:
                break
            await asyncio.sleep(0.05)
        assert nri.plugins == []


@pytest.mark.timeout(20)
async def test_names_are_free_again_after_stop_and_start(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    nri = FakeRuntime().adaptation(config)
    await nri.start()
    try:
        async with RawPlugin(config.socket_path, name="again") as old:
            await old.register()
            await nri.wait_for_plugins(names=["50-again"])
            await nri.stop()  # like upstream, leaves the old connection open
            await nri.start()
            assert old.mux is not None and not old.mux.is_closed
            async with RawPlugin(config.socket_path, name="again") as new:
                await new.register()
                await nri.wait_for_plugins(names=["50-again"])
                assert len(nri.plugins) == 1
            # The left-over connection may not change containers any more.
            assert old.client is not None
            with pytest.raises(StatusError, match="no longer an active plugin"):
                await old.client.call(
                    "nri.pkg.api.v1alpha1.Runtime",
                    "UpdateContainers",
                    update_request(),
                    pb.UpdateContainersResponse,
                    timeout=5,
                )
            await asyncio.wait_for(old.mux.wait_closed(), 5)
    finally:
        await nri.close()


@pytest.mark.timeout(20)
async def test_registration_refusals_use_upstreams_error_form(tmp_path: Path) -> None:
    # Upstream refuses a registration with a plain error: status code Unknown.
    config = config_for(tmp_path)
    async with (
        FakeRuntime().adaptation(config) as nri,
        RawPlugin(config.socket_path, name="form") as first,
    ):
        await first.register()
        await nri.wait_for_plugins(names=["50-form"])
        async with RawPlugin(config.socket_path, name="form") as second:
            with pytest.raises(StatusError) as refused:
                await second.register()
            assert refused.value.code == Code.UNKNOWN
