"""The plugin stub against a scripted runtime over real unix sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _runtime_peer import PluginConnection, ScriptedRuntime, running

from nri.api import NRI_VERSION, Adjustment, Update, eviction
from nri.api import api_pb2 as pb
from nri.net import plugin_environment, socketpair, spawn_with_socket
from nri.stub import Plugin, RequestError, RuntimeGoneError, Stub, StubError, load_config
from nri.ttrpc import DeadlineExceededError, StatusError


def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "nri.sock"


class Recorder(Plugin):
    """Implements every handler and records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        self._record("configure", config, runtime_name, runtime_version)

    def synchronize(self, pods, containers):  # type: ignore[no-untyped-def]
        self._record("synchronize", list(pods), list(containers))
        return [Update("c-existing").set_linux_cpuset_cpus("0-1")]

    def run_pod_sandbox(self, pod):  # type: ignore[no-untyped-def]
        self._record("run_pod_sandbox", pod)

    def update_pod_sandbox(self, pod, overhead, resources):  # type: ignore[no-untyped-def]
        self._record("update_pod_sandbox", pod, overhead, resources)

    def post_update_pod_sandbox(self, pod):  # type: ignore[no-untyped-def]
        self._record("post_update_pod_sandbox", pod)

    def stop_pod_sandbox(self, pod):  # type: ignore[no-untyped-def]
        self._record("stop_pod_sandbox", pod)

    def remove_pod_sandbox(self, pod):  # type: ignore[no-untyped-def]
        self._record("remove_pod_sandbox", pod)

    async def create_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("create_container", pod, container)
        await asyncio.sleep(0)
        return [
            Adjustment().add_env("HELLO", "world"),
            Update("other").set_linux_memory_limit(1 << 20),
            eviction("victim", "no room"),
        ]

    def post_create_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("post_create_container", pod, container)

    def start_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("start_container", pod, container)

    def post_start_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("post_start_container", pod, container)

    def update_container(self, pod, container, resources):  # type: ignore[no-untyped-def]
        self._record("update_container", pod, container, resources)
        return Update(container.id).set_linux_cpu_shares(512)

    def post_update_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("post_update_container", pod, container)

    def stop_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("stop_container", pod, container)
        return [Update("other").set_linux_cpuset_cpus("0-3")]

    def remove_container(self, pod, container):  # type: ignore[no-untyped-def]
        self._record("remove_container", pod, container)

    def validate_container_adjustment(self, request):  # type: ignore[no-untyped-def]
        self._record("validate_container_adjustment", request)
        if request.adjust.annotations.get("forbidden"):
            raise ValueError("annotation 'forbidden' is not allowed")


class CreateOnly(Plugin):
    def create_container(self, pod, container):  # type: ignore[no-untyped-def]
        return Adjustment().add_annotation("seen-by", "create-only")


async def start_plugin(
    runtime: ScriptedRuntime, plugin: Plugin, **kwargs: object
) -> tuple[Stub, asyncio.Task[None], PluginConnection]:
    stub = Stub(plugin, socket_path=runtime.path, environ={}, **kwargs)  # type: ignore[arg-type]
    task = asyncio.create_task(stub.run())
    conn = await runtime.connections.get()
    return stub, task, conn


POD = pb.PodSandbox(id="pod-1", name="web", namespace="default", uid="u-1")
CTR = pb.Container(id="ctr-1", pod_sandbox_id="pod-1", name="nginx", args=["nginx"])


async def test_registration_and_mask_from_overrides(tmp_path: Path) -> None:
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        stub, task, conn = await start_plugin(runtime, CreateOnly(), name="create", idx="42")
        async with running(task):
            registered = await conn.registered
            assert registered.plugin_name == "create"
            assert registered.plugin_idx == "42"
            assert registered.NRI_version == NRI_VERSION
            assert await conn.configure() == 1 << (pb.CREATE_CONTAINER - 1)
            assert stub.runtime_name == "scripted"


async def test_every_event_round_trip(tmp_path: Path) -> None:
    plugin = Recorder()
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, plugin, name="rec", idx="10")
        async with running(task):
            await conn.registered
            assert await conn.configure("key: value") == 0x3FFF
            res = pb.LinuxResources(cpu=pb.LinuxCPU(cpus="0-1"))
            over = pb.LinuxResources(cpu=pb.LinuxCPU(cpus="2"))
            pod_events = ["RunPodSandbox", "PostUpdatePodSandbox", "StopPodSandbox"]
            for method in [*pod_events, "RemovePodSandbox"]:
                request = getattr(pb, f"{method}Request")(pod=POD)
                await conn.call(method, request, getattr(pb, f"{method}Response"))
            await conn.call(
                "UpdatePodSandbox",
                pb.UpdatePodSandboxRequest(
                    pod=POD, overhead_linux_resources=over, linux_resources=res
                ),
                pb.UpdatePodSandboxResponse,
            )
            created = await conn.call(
                "CreateContainer",
                pb.CreateContainerRequest(pod=POD, container=CTR),
                pb.CreateContainerResponse,
            )
            assert [(e.key, e.value) for e in created.adjust.env] == [("HELLO", "world")]
            assert created.update[0].container_id == "other"
            assert created.update[0].linux.resources.memory.limit.value == 1 << 20
            assert created.evict[0] == pb.ContainerEviction(container_id="victim", reason="no room")
            for method in [
                "PostCreateContainer",
                "StartContainer",
                "PostStartContainer",
                "PostUpdateContainer",
                "RemoveContainer",
            ]:
                request = getattr(pb, f"{method}Request")(pod=POD, container=CTR)
                await conn.call(method, request, getattr(pb, f"{method}Response"))
            updated = await conn.call(
                "UpdateContainer",
                pb.UpdateContainerRequest(pod=POD, container=CTR, linux_resources=res),
                pb.UpdateContainerResponse,
            )
            assert updated.update[0].linux.resources.cpu.shares.value == 512
            stopped = await conn.call(
                "StopContainer",
                pb.StopContainerRequest(pod=POD, container=CTR),
                pb.StopContainerResponse,
            )
            assert stopped.update[0].linux.resources.cpu.cpus == "0-3"
            accepted = await conn.call(
                "ValidateContainerAdjustment",
                pb.ValidateContainerAdjustmentRequest(pod=POD, container=CTR),
                pb.ValidateContainerAdjustmentResponse,
            )
            assert not accepted.reject
            rejected = await conn.call(
                "ValidateContainerAdjustment",
                pb.ValidateContainerAdjustmentRequest(
                    pod=POD,
                    container=CTR,
                    adjust=pb.ContainerAdjustment(annotations={"forbidden": "yes"}),
                ),
                pb.ValidateContainerAdjustmentResponse,
            )
            assert rejected.reject
            assert "forbidden" in rejected.reason
    names = [name for name, _ in plugin.calls]
    assert names[0] == "configure"
    assert plugin.calls[0][1] == ("key: value", "scripted", "1.0")
    for expected in [
        "run_pod_sandbox",
        "update_pod_sandbox",
        "post_update_pod_sandbox",
        "stop_pod_sandbox",
        "remove_pod_sandbox",
        "create_container",
        "post_create_container",
        "start_container",
        "post_start_container",
        "update_container",
        "post_update_container",
        "stop_container",
        "remove_container",
        "validate_container_adjustment",
    ]:
        assert expected in names
    args = dict(plugin.calls)
    assert args["create_container"] == (POD, CTR)
    assert args["update_pod_sandbox"] == (POD, over, res)
    assert args["update_container"] == (POD, CTR, res)


async def test_multi_part_synchronize(tmp_path: Path) -> None:
    plugin = Recorder()
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, plugin, name="rec", idx="10")
        async with running(task):
            await conn.registered
            await conn.configure()
            pods = [pb.PodSandbox(id=f"pod-{i}") for i in range(5)]
            ctrs = [pb.Container(id=f"ctr-{i}", pod_sandbox_id=f"pod-{i}") for i in range(5)]
            for i in range(4):
                partial = await conn.call(
                    "Synchronize",
                    pb.SynchronizeRequest(
                        pods=pods[i : i + 1], containers=ctrs[i : i + 1], more=True
                    ),
                    pb.SynchronizeResponse,
                )
                assert partial.more
                assert not partial.update
            final = await conn.call(
                "Synchronize",
                pb.SynchronizeRequest(pods=pods[4:], containers=ctrs[4:]),
                pb.SynchronizeResponse,
            )
            assert not final.more
            assert [u.container_id for u in final.update] == ["c-existing"]
    (sync_args,) = [args for name, args in plugin.calls if name == "synchronize"]
    assert sync_args == (pods, ctrs)


async def test_subscription_from_config_and_attribute(tmp_path: Path) -> None:
    @__import__("dataclasses").dataclass
    class Options:
        events: str = "all"

    class Configurable(Recorder):
        def configure(self, config: str, runtime_name: str, runtime_version: str) -> str:
            return load_config(config, Options).events

    class Explicit(Recorder):
        events = "runpodsandbox,createcontainer"

    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, Configurable(), name="cfg", idx="10")
        async with running(task):
            await conn.registered
            mask = await conn.configure("events: [stopcontainer]".replace("[", "").replace("]", ""))
            assert mask == 1 << (pb.STOP_CONTAINER - 1)
        _, task, conn = await start_plugin(runtime, Explicit(), name="explicit", idx="11")
        async with running(task):
            await conn.registered
            assert await conn.configure() == (1 << (pb.RUN_POD_SANDBOX - 1)) | (
                1 << (pb.CREATE_CONTAINER - 1)
            )


async def test_configure_with_unhandled_event_is_refused(tmp_path: Path) -> None:
    class Greedy(CreateOnly):
        def configure(self, config: str, runtime_name: str, runtime_version: str) -> str:
            return "createcontainer,removecontainer"

    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, Greedy(), name="greedy", idx="10")
        async with running(task):
            await conn.registered
            with pytest.raises(StatusError, match="(?i)removecontainer"):
                await conn.configure()
            with pytest.raises(StubError, match="(?i)removecontainer"):
                await task


async def test_update_containers_returns_failures(tmp_path: Path) -> None:
    plugin = CreateOnly()
    path = socket_path(tmp_path)
    async with ScriptedRuntime(path, fail_updates=lambda u: u.container_id == "bad") as runtime:
        _, task, conn = await start_plugin(runtime, plugin, name="upd", idx="10")
        async with running(task):
            await conn.handshake()
            failed = await plugin.update_containers(
                [Update("good").set_linux_cpu_shares(2), Update("bad").set_linux_cpu_shares(3)],
                [eviction("gone", "test")],
            )
            assert [u.container_id for u in failed] == ["bad"]
            (request,) = conn.updates
            assert [u.container_id for u in request.update] == ["good", "bad"]
            assert request.evict[0].container_id == "gone"


async def test_state_change_routes_to_handlers(tmp_path: Path) -> None:
    plugin = Recorder()
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, plugin, name="rec", idx="10")
        async with running(task):
            await conn.handshake()
            for event in (pb.RUN_POD_SANDBOX, pb.START_CONTAINER, pb.REMOVE_CONTAINER):
                await conn.call(
                    "StateChange",
                    pb.StateChangeEvent(event=event, pod=POD, container=CTR),
                    pb.Empty,
                )
    names = [name for name, _ in plugin.calls]
    assert names[-3:] == ["run_pod_sandbox", "start_container", "remove_container"]
    assert plugin.calls[-2][1] == (POD, CTR)


async def test_state_change_for_other_events_is_ignored(tmp_path: Path) -> None:
    # upstream's stub dispatches only some events from StateChange; UpdatePodSandbox (whose
    # request has resources a StateChange lacks) and unknown values are answered and dropped
    plugin = Recorder()
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, plugin, name="rec", idx="10")
        async with running(task):
            await conn.handshake()
            before = len(plugin.calls)
            for event in (pb.UPDATE_POD_SANDBOX, pb.CREATE_CONTAINER, pb.STOP_CONTAINER, 99):
                reply = await conn.call(
                    "StateChange",
                    pb.StateChangeEvent(event=event, pod=POD, container=CTR),  # type: ignore[arg-type]
                    pb.Empty,
                )
                assert reply == pb.Empty()
            await conn.call(
                "StateChange",
                pb.StateChangeEvent(event=pb.POST_UPDATE_POD_SANDBOX, pod=POD),
                pb.Empty,
            )
    assert [name for name, _ in plugin.calls[before:]] == ["post_update_pod_sandbox"]


async def test_expected_failure_is_one_line_unexpected_has_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Picky(Plugin):
        def create_container(self, pod, container):  # type: ignore[no-untyped-def]
            if container.name == "bug":
                raise KeyError("oops")
            if container.name == "typo":
                raise ValueError("annotation x.example.com: bad value 'y'")
            raise RequestError("no room for it")

    caplog.set_level(logging.INFO)
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, Picky(), name="picky", idx="10")
        async with running(task):
            await conn.handshake()
            for name, reason in (("typo", "bad value 'y'"), ("full", "no room"), ("bug", "oops")):
                caplog.clear()
                ctr = pb.Container(id=f"id-{name}", pod_sandbox_id="pod-1", name=name)
                request = pb.CreateContainerRequest(pod=POD, container=ctr)
                with pytest.raises(StatusError) as info:
                    await conn.call("CreateContainer", request, pb.CreateContainerResponse)
                assert reason in info.value.message
                errors = [r for r in caplog.records if r.levelno >= logging.INFO]
                assert len(errors) == 1, caplog.text  # once: not again by the ttRPC server
                (record,) = errors
                assert record.levelno == logging.ERROR
                assert f"container default/web/{name} (id-{name})" in record.getMessage()
                assert reason in record.getMessage()
                assert (record.exc_info is not None) == (name == "bug"), caplog.text


async def test_handler_exception_fails_only_that_request(tmp_path: Path) -> None:
    class Flaky(Plugin):
        def __init__(self) -> None:
            self.count = 0

        def create_container(self, pod, container):  # type: ignore[no-untyped-def]
            self.count += 1
            if self.count == 1:
                raise RuntimeError("disk on fire")
            return Adjustment().add_env("TRY", str(self.count))

    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, Flaky(), name="flaky", idx="10")
        async with running(task):
            await conn.handshake()
            request = pb.CreateContainerRequest(pod=POD, container=CTR)
            with pytest.raises(StatusError, match="disk on fire"):
                await conn.call("CreateContainer", request, pb.CreateContainerResponse)
            reply = await conn.call("CreateContainer", request, pb.CreateContainerResponse)
            assert reply.adjust.env[0].value == "2"


async def test_handler_returning_wrong_kind_is_an_error(tmp_path: Path) -> None:
    class Wrong(Plugin):
        def start_container(self, pod, container):  # type: ignore[no-untyped-def]
            return Adjustment().add_env("A", "b")

    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, Wrong(), name="wrong", idx="10")
        async with running(task):
            await conn.handshake()
            request = pb.StartContainerRequest(pod=POD, container=CTR)
            with pytest.raises(StatusError, match="start_container.*may only return None"):
                await conn.call("StartContainer", request, pb.StartContainerResponse)


async def test_slow_handler_is_logged_with_its_container(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Slow(Plugin):
        async def create_container(self, pod, container):  # type: ignore[no-untyped-def]
            await asyncio.sleep(5)

    caplog.set_level(logging.WARNING)
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        stub, task, conn = await start_plugin(runtime, Slow(), name="slow", idx="10")
        async with running(task):
            await conn.registered
            await conn.call(
                "Configure",
                pb.ConfigureRequest(request_timeout=200, registration_timeout=5000),
                pb.ConfigureResponse,
            )
            assert stub.request_timeout == pytest.approx(0.2)
            request = pb.CreateContainerRequest(pod=POD, container=CTR)
            with pytest.raises(DeadlineExceededError):
                await conn.call("CreateContainer", request, pb.CreateContainerResponse, timeout=0.2)
            for _ in range(100):
                if "create_container" in caplog.text:
                    break
                await asyncio.sleep(0.02)
    assert "create_container for container default/web/nginx" in caplog.text


async def test_configure_may_overtake_register_response(tmp_path: Path) -> None:
    """The runtime may send Configure before its RegisterPlugin reply (a real race)."""
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        stub = Stub(CreateOnly(), name="race", idx="10", socket_path=runtime.path, environ={})
        task = asyncio.create_task(stub.start())
        conn = await runtime.connections.get()
        await conn.registered
        # The scripted runtime answers RegisterPlugin right away; configure before awaiting the
        # start task shows the stub serves conn 1 while registration is in flight.
        assert await conn.configure() == 1 << (pb.CREATE_CONTAINER - 1)
        await task
        await stub.stop()


async def test_runtime_gone_without_reconnect(tmp_path: Path) -> None:
    closed: list[bool] = []
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        stub = Stub(
            CreateOnly(),
            name="gone",
            idx="10",
            socket_path=runtime.path,
            environ={},
            on_close=lambda: closed.append(True),
        )
        task = asyncio.create_task(stub.run())
        conn = await runtime.connections.get()
        await conn.handshake()
        conn.mux.close()
        with pytest.raises(RuntimeGoneError, match="runtime went away"):
            await task
    assert closed == [True]


async def test_reconnect_after_runtime_restart(tmp_path: Path) -> None:
    class Counting(CreateOnly):
        closes = 0

        def on_close(self) -> None:
            self.closes += 1

    plugin = Counting()
    path = socket_path(tmp_path)
    runtime = ScriptedRuntime(path)
    await runtime.listen()
    stub = Stub(
        plugin,
        name="again",
        idx="10",
        socket_path=path,
        environ={},
        reconnect=True,
        reconnect_delay=0.05,
    )
    task = asyncio.create_task(stub.run())
    async with running(task):
        conn = await runtime.connections.get()
        await conn.handshake()
        await runtime.close()
        await asyncio.sleep(0.2)  # let the stub notice and fail a redial or two
        runtime = ScriptedRuntime(path)
        await runtime.listen()
        conn = await runtime.connections.get()
        registered = await conn.registered
        assert registered.plugin_name == "again"
        await conn.configure()
        reply = await conn.call(
            "CreateContainer",
            pb.CreateContainerRequest(pod=POD, container=CTR),
            pb.CreateContainerResponse,
        )
        assert reply.adjust.annotations["seen-by"] == "create-only"
        assert plugin.closes == 1
    await runtime.close()


async def test_shutdown_request_stops_run(tmp_path: Path) -> None:
    class Stoppable(CreateOnly):
        stopped = False

        def shutdown(self) -> None:
            self.stopped = True

    plugin = Stoppable()
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        _, task, conn = await start_plugin(runtime, plugin, name="stop", idx="10")
        await conn.handshake()
        await conn.call("Shutdown", pb.Empty(), pb.Empty)
        await asyncio.wait_for(task, 5)
    assert plugin.stopped


@pytest.mark.parametrize(
    ("name", "idx", "message"),
    [
        ("bad name", "10", "bad name"),
        ("ok", "1", "'1'"),
        ("ok", "100", "'100'"),
        ("ok", "ab", "'ab'"),
        ("", "", "not-a-plugin-name.*--name and --idx"),
    ],
)
def test_invalid_identity_rejected_before_connecting(name: str, idx: str, message: str) -> None:
    old = sys.argv
    sys.argv = ["not-a-plugin-name"]
    try:
        with pytest.raises(StubError, match=message):
            Stub(CreateOnly(), name=name or None, idx=idx or None, environ={})
    finally:
        sys.argv = old


def test_identity_from_environment_and_program_name() -> None:
    stub = Stub(CreateOnly(), environ={"NRI_PLUGIN_NAME": "env", "NRI_PLUGIN_IDX": "07"})
    assert stub.full_name == "07-env"
    old = sys.argv
    sys.argv = ["/opt/nri/plugins/15-fromargv"]
    try:
        assert Stub(CreateOnly(), environ={}).full_name == "15-fromargv"
    finally:
        sys.argv = old


async def test_missing_socket_is_a_clear_error(tmp_path: Path) -> None:
    stub = Stub(CreateOnly(), name="x", idx="10", socket_path=tmp_path / "absent.sock", environ={})
    with pytest.raises(OSError, match="absent.sock"):
        await stub.run()


PLUGIN_SCRIPT = textwrap.dedent(
    """
    import sys
    from nri.api import Adjustment
    from nri.stub import Plugin, run

    class EnvFd(Plugin):
        def create_container(self, pod, container):
            return Adjustment().add_env("LAUNCHED", "yes")

    sys.exit(run(EnvFd, argv=[]))
    """
)


async def test_launched_plugin_uses_inherited_socket(tmp_path: Path) -> None:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN_SCRIPT)
    local, peer = socketpair()
    async with ScriptedRuntime(socket_path(tmp_path)) as runtime:
        conn = await runtime.attach(local)
        env = plugin_environment("envfd", "33")
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        process = await spawn_with_socket([sys.executable, str(script)], peer, env)
        peer.close()
        try:
            registered = await asyncio.wait_for(conn.registered, 20)
            assert (registered.plugin_name, registered.plugin_idx) == ("envfd", "33")
            await conn.configure()
            reply = await conn.call(
                "CreateContainer",
                pb.CreateContainerRequest(pod=POD, container=CTR),
                pb.CreateContainerResponse,
            )
            assert reply.adjust.env[0].key == "LAUNCHED"
            conn.mux.close()
            assert await asyncio.wait_for(process.wait(), 20) == 1
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


def test_plugin_command_line_does_not_import_shutil() -> None:
    # argparse alone imports shutil (and bz2, lzma, zlib) to size its help: half a megabyte
    # of every plugin process, which the plugins' parser avoids.
    code = textwrap.dedent(
        """
        import sys
        from nri.stub import argument_parser
        parser = argument_parser("nri-test")
        parser.parse_args(["--idx", "10"])
        help_text = parser.format_help()
        print("shutil" in sys.modules, max(len(line) for line in help_text.splitlines()))
        """
    )
    env = {**os.environ, "COLUMNS": "60"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    imported, widest = result.stdout.split()
    assert imported == "False"
    assert int(widest) <= 58  # wrapped to the terminal width less argparse's margin
