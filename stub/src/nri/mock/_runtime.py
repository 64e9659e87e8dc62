"""The mock runtime: pods and containers in memory, plugins hosted by the real adaptation."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import os
import shlex
import shutil
import tempfile
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from nri.adaptation import (
    Adaptation,
    Config,
    DefaultValidatorConfig,
    PluginInfo,
    field_name,
)
from nri.api import (
    DEFAULT_REGISTRATION_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    NRI_VERSION,
)
from nri.api import api_pb2 as pb
from nri.net import (
    PLUGIN_IDX_ENV,
    PLUGIN_NAME_ENV,
    PLUGIN_SOCKET_ENV,
    PLUGIN_SOCKET_FD,
    socketpair,
    spawn_with_socket,
)
from nri.oci import SpecGenerator, container_from_spec, linux_resources_from_oci
from nri.stub import Plugin, Stub

__all__ = [
    "DEFAULT_PATH_ENV",
    "EventRecord",
    "FieldChange",
    "LifecycleError",
    "MockContainer",
    "MockPod",
    "MockRuntime",
    "PluginLaunchError",
    "PluginProcess",
]

logger = logging.getLogger("nri.mock")

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The environment entry every container starts with, as container runtimes add it."""

_STDERR_TAIL = 4096
_LONGEST_LINE = 65536


class PluginLaunchError(Exception):
    """A plugin command could not be started or exited before it registered."""

    def __init__(self, command: Sequence[str], message: str, stderr: str = "") -> None:
        self.command = list(command)
        self.stderr = stderr
        text = f"plugin {shlex.join(self.command)!r}: {message}"
        if stderr.strip():
            text += "\n--- its stderr (tail) ---\n" + stderr.rstrip()
        super().__init__(text)


class LifecycleError(ValueError):
    """A lifecycle call the pod's or container's state does not allow (CRI refuses it too)."""


def _require_state(ctr: MockContainer, action: str, *allowed: int) -> None:
    if ctr.state not in allowed:
        state = pb.ContainerState.Name(ctr.state).removeprefix("CONTAINER_").lower()
        raise LifecycleError(f"cannot {action} container {ctr.name} ({ctr.id}): it is {state}")


@dataclasses.dataclass
class MockPod:
    """A pod sandbox of the mock runtime."""

    id: str
    name: str
    namespace: str = "default"
    uid: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    runtime_handler: str = ""
    state: str = "ready"
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The pod's OCI ``linux.resources`` (set by UpdatePodSandbox)."""

    def to_proto(self) -> pb.PodSandbox:
        """Describe the pod to plugins."""
        pod = pb.PodSandbox(
            id=self.id,
            name=self.name,
            uid=self.uid,
            namespace=self.namespace,
            labels=self.labels,
            annotations=self.annotations,
            runtime_handler=self.runtime_handler,
        )
        pod.linux.cgroup_parent = f"/kubepods/pod{self.uid}"
        if self.resources:
            pod.linux.resources.CopyFrom(linux_resources_from_oci(self.resources))
        return pod


@dataclasses.dataclass
class MockContainer:
    """A container of the mock runtime, with the OCI spec plugins adjusted."""

    id: str
    name: str
    pod_id: str
    spec: dict[str, Any]
    state: int = pb.CONTAINER_CREATED
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    adjustment: pb.ContainerAdjustment | None = None
    """The merged adjustment the plugins made at creation."""
    owners: dict[str, str] = dataclasses.field(default_factory=dict)
    """``Field`` or ``Field:key`` -> the plugin that set it (from merging)."""

    def to_proto(self) -> pb.Container:
        """Describe the container to plugins: runtime fields plus everything in its spec."""
        return container_from_spec(
            self.spec,
            id=self.id,
            pod_sandbox_id=self.pod_id,
            name=self.name,
            state=self.state,  # type: ignore[arg-type]
            labels=self.labels,
        )


@dataclasses.dataclass
class FieldChange:
    """One field of one container that a plugin set (or removed, ``removed``)."""

    container_id: str
    field: str
    """Upstream's field name (``pb.Field``): ``Env``, ``Mounts``, ``CPUSetCPUs``, ..."""
    key: str | None
    """The entry of a per-key field: env name, mount destination, annotation key, ..."""
    plugin: str
    removed: bool = False

    def to_data(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EventRecord:
    """What happened at one event: who changed what, spec diffs, evictions, errors."""

    event: str
    pod_id: str | None = None
    container_id: str | None = None
    changes: list[FieldChange] = dataclasses.field(default_factory=list)
    specs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = dataclasses.field(
        default_factory=dict
    )
    """Container ID -> (spec before, spec after), for every container whose spec changed."""
    evicted: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(container ID, reason) of containers evicted at a plugin's request."""
    error: str | None = None
    failed_updates: list[str] = dataclasses.field(default_factory=list)
    """IDs of containers whose update failed (unknown or removed containers)."""
    plugin: str | None = None
    """The plugin concerned (``NN-name``): who left, for ``PluginClosed``."""

    def to_data(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "event": self.event,
            "plugin": self.plugin,
            "pod_id": self.pod_id,
            "container_id": self.container_id,
            "changes": [c.to_data() for c in self.changes],
            "specs": {cid: {"before": b, "after": a} for cid, (b, a) in self.specs.items()},
            "evicted": [{"container_id": c, "reason": r} for c, r in self.evicted],
            "failed_updates": list(self.failed_updates),
            "error": self.error,
        }


@dataclasses.dataclass
class PluginProcess:
    """A plugin command started by :meth:`MockRuntime.launch_plugin`."""

    command: list[str]
    process: asyncio.subprocess.Process
    info: PluginInfo
    stderr: bytearray = dataclasses.field(default_factory=bytearray)
    """What the plugin wrote to its stderr so far (the last few KiB)."""

    @property
    def pid(self) -> int:
        """The plugin's process ID."""
        return self.process.pid

    async def wait_for_output(self, text: str, timeout: float = 5.0) -> str:  # noqa: ASYNC109
        """Wait until ``text`` shows in the plugin's stderr and return that stderr.

        A plugin may log before it replies, but its stderr is read concurrently with the
        replies: wait here instead of reading :attr:`stderr` right after a call.
        Raises TimeoutError with the stderr tail if the text does not show in time.
        """
        try:
            async with asyncio.timeout(timeout):
                # Polling keeps the stderr reader a plain function shared with the CLI.
                while text not in (output := _tail(self.stderr)):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise TimeoutError(
                f"{text!r} not in the stderr of {shlex.join(self.command)!r} after {timeout:g}s; "
                f"its stderr (tail):\n{_tail(self.stderr)}"
            ) from None
        return output


def _changes(owners: pb.OwningPlugins) -> list[FieldChange]:
    out: list[FieldChange] = []
    for cid, entry in owners.owners.items():
        for field, plugin in sorted(entry.simple.items()):
            out.append(_change(cid, field, None, plugin))
        for field, compound in sorted(entry.compound.items()):
            for key, plugin in sorted(compound.owners.items()):
                out.append(_change(cid, field, key, plugin))
    return out


def _change(cid: str, field: int, key: str | None, plugin: str) -> FieldChange:
    removed = plugin.startswith("-")
    return FieldChange(cid, field_name(field), key, plugin.lstrip("-"), removed)


def _owner_table(changes: Iterable[FieldChange]) -> dict[str, str]:
    return {
        (c.field if c.key is None else f"{c.field}:{c.key}"): ("-" if c.removed else "") + c.plugin
        for c in changes
    }


def _env_list(env: Mapping[str, str] | Sequence[str]) -> list[str]:
    if isinstance(env, Mapping):
        return [f"{k}={v}" for k, v in env.items()]
    return [str(e) for e in env]


class MockRuntime:
    """An NRI runtime in memory, for running and testing plugins without a cluster.

    Pods and containers live in dicts; each container has an OCI runtime spec. Lifecycle
    calls relay the events through a real :class:`~nri.adaptation.Adaptation` (so plugins
    see exactly what containerd would send them) and apply the merged adjustments,
    updates and evictions to the stored specs with :class:`~nri.oci.SpecGenerator`.
    Unsolicited updates from plugins are applied too. Every event is recorded in
    :attr:`history` with who changed what and the specs before and after::

        async with MockRuntime() as runtime:
            await runtime.launch_plugin("nri-ulimit-adjuster --idx 10")
            pod = await runtime.run_pod("web")
            ctr = await runtime.create_container(pod, "app", args=["sleep", "inf"])
            print(ctr.spec["process"]["rlimits"])
    """

    def __init__(
        self,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        plugin_path: str | os.PathLike[str] | None = None,
        plugin_config_path: str | os.PathLike[str] | None = None,
        runtime_name: str = "nri-mock-runtime",
        runtime_version: str = NRI_VERSION,
        registration_timeout: float = DEFAULT_REGISTRATION_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        default_validator: DefaultValidatorConfig | None = None,
        disable_connections: bool = False,
    ) -> None:
        self._tmpdir = tempfile.mkdtemp(prefix="nri-mock-")
        # Also removed when a runtime that was never closed is collected or at exit.
        self._remove_tmpdir = weakref.finalize(
            self, shutil.rmtree, self._tmpdir, ignore_errors=True
        )
        self.socket_path = (
            os.fspath(socket_path)
            if socket_path is not None
            else os.path.join(self._tmpdir, "nri.sock")
        )
        empty = os.path.join(self._tmpdir, "none")
        os.mkdir(empty)
        config = Config(
            runtime_name=runtime_name,
            runtime_version=runtime_version,
            socket_path=self.socket_path,
            plugin_path=os.fspath(plugin_path) if plugin_path is not None else empty,
            plugin_config_path=(
                os.fspath(plugin_config_path) if plugin_config_path is not None else empty
            ),
            disable_connections=disable_connections,
            registration_timeout=registration_timeout,
            request_timeout=request_timeout,
            default_validator=default_validator,
        )
        self.adaptation = Adaptation(
            config,
            sync=self._sync,
            update=self._update,
            evict=self._evict,
            on_result=self._on_result,
            on_plugin_closed=self._plugin_closed,
        )
        self.pods: dict[str, MockPod] = {}
        self.containers: dict[str, MockContainer] = {}
        self.history: list[EventRecord] = []
        self.processes: list[PluginProcess] = []
        self.stubs: list[Stub] = []
        self._owners: pb.OwningPlugins | None = None
        self._counter = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stub_runs: set[asyncio.Future[None]] = set()
        self._readers: set[asyncio.Future[None]] = set()
        self._closing = False

    # -- start / stop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the adaptation: launch pre-installed plugins, listen on the socket.

        If that fails, the runtime is closed (its temporary files removed) and the error raised.
        """
        try:
            await self.adaptation.start()
        except BaseException:
            await self.close()
            raise
        self._closing = False

    async def close(self) -> None:
        """Stop plugins started here, close every connection and remove temporary files."""
        self._closing = True
        for stub in self.stubs:
            await stub.stop()
        await asyncio.gather(*self._stub_runs, return_exceptions=True)
        await self.adaptation.close()
        for proc in self.processes:
            await _terminate(proc.process)
        if self._readers:  # the rest of the plugins' stderr
            await asyncio.wait(self._readers, timeout=1.0)
        await self.idle()
        self._remove_tmpdir()

    async def __aenter__(self) -> MockRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def idle(self) -> None:
        """Wait until evictions and other work started in the background are done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- plugins -----------------------------------------------------------------------------

    @property
    def plugins(self) -> list[PluginInfo]:
        """The registered plugins in invocation order."""
        return self.adaptation.plugins

    async def wait_for_plugins(
        self,
        count: int | None = None,
        names: Iterable[str] = (),
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[PluginInfo]:
        """Wait until ``count`` plugins and all ``names`` are registered."""
        return await self.adaptation.wait_for_plugins(count, names, timeout=timeout)

    async def launch_plugin(
        self,
        command: str | Sequence[str],
        *,
        name: str | None = None,
        idx: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        on_output: Callable[[str], None] | None = None,
    ) -> PluginProcess:
        """Start a plugin command connected to this runtime and wait until it registered.

        The command gets its end of a socket pair on fd 3 with ``NRI_PLUGIN_SOCKET=3``, as
        pre-installed plugins do, on top of this process's environment and ``env``; ``name``
        and ``idx`` are passed as ``NRI_PLUGIN_NAME``/``NRI_PLUGIN_IDX``. Raises
        :class:`PluginLaunchError` if it cannot start or exits first, TimeoutError if it does
        not register within ``timeout`` seconds (default: the registration timeout).
        ``on_output`` is called in the event loop with each line the plugin writes to its
        stderr, as it arrives (without the newline).
        """
        if timeout is None:
            timeout = self.adaptation.config.registration_timeout
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            raise PluginLaunchError(argv, "empty command")
        environ = {**os.environ, **(env or {}), PLUGIN_SOCKET_ENV: str(PLUGIN_SOCKET_FD)}
        for var, value in ((PLUGIN_NAME_ENV, name), (PLUGIN_IDX_ENV, idx)):
            if value is not None:
                environ[var] = value
            else:
                environ.pop(var, None)
        ours, theirs = socketpair()
        try:
            process = await spawn_with_socket(
                argv,
                theirs,
                environ,
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            ours.close()
            raise PluginLaunchError(argv, f"cannot start: {exc}") from exc
        finally:
            theirs.close()
        stderr = bytearray()
        reader = asyncio.ensure_future(collect_stderr(process, stderr, on_output))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        connect = asyncio.ensure_future(self.adaptation.connect_plugin(ours, pid=process.pid))
        exited = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait(
                {connect, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if connect in done and connect.exception() is None:
                handle = PluginProcess(argv, process, connect.result(), stderr)
                self.processes.append(handle)
                return handle
            if exited in done or connect in done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 1.0)
                await asyncio.wait({reader}, timeout=1.0)
                why = (
                    f"exited with status {process.returncode} before registering"
                    if process.returncode is not None
                    else f"failed to register: {connect.exception()}"
                )
                raise PluginLaunchError(argv, why, _tail(stderr))
            raise TimeoutError(
                f"plugin {shlex.join(argv)!r} did not register within {timeout:g}s"
                + (f"; its stderr:\n{_tail(stderr)}" if stderr.strip() else "")
            )
        except BaseException:
            connect.cancel()
            await _terminate(process)
            raise
        finally:
            exited.cancel()

    async def add_plugin(
        self,
        plugin: Plugin,
        *,
        name: str,
        idx: str,
        config: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Stub:
        """Run an in-process plugin object in this event loop, registered with this runtime.

        ``config`` is used when the runtime gives the plugin no configuration of its own;
        ``timeout`` defaults to the runtime's registration timeout.
        """
        if timeout is None:
            timeout = self.adaptation.config.registration_timeout
        ours, theirs = socketpair()
        # The stub takes its end the way a launched plugin does: as an inherited fd.
        handover = {PLUGIN_SOCKET_ENV: str(theirs.detach())}
        stub = Stub(plugin, name=name, idx=idx, config=config, environ=handover)
        connect = asyncio.ensure_future(self.adaptation.connect_plugin(ours))
        running = asyncio.ensure_future(stub.run())
        try:
            async with asyncio.timeout(timeout):
                done, _ = await asyncio.wait(
                    {connect, running}, return_when=asyncio.FIRST_COMPLETED
                )
                if running in done:
                    running.result()
                    raise PluginLaunchError([type(plugin).__name__], "stopped before registering")
                await connect
        except BaseException:
            connect.cancel()
            await stub.stop()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            raise
        # Not in _tasks: it runs until the plugin stops, and idle() must not wait for it.
        self._stub_runs.add(running)
        running.add_done_callback(self._stub_runs.discard)
        self.stubs.append(stub)
        return stub

    # -- lookups -----------------------------------------------------------------------------

    def last(self, event: str) -> EventRecord:
        """The most recent record of ``event`` (``"CreateContainer"``, ...) in :attr:`history`."""
        for record in reversed(self.history):
            if record.event == event:
                return record
        raise LookupError(f"no {event} event recorded (events: {[r.event for r in self.history]})")

    def pod(self, ref: MockPod | str) -> MockPod:
        """Find a pod by object, ID or name; KeyError if unknown or ambiguous."""
        if isinstance(ref, MockPod):
            ref = ref.id
        pod: MockPod = _lookup(self.pods, ref, "pod")
        return pod

    def container(self, ref: MockContainer | str) -> MockContainer:
        """Find a container by object, ID or name; KeyError if unknown or ambiguous."""
        if isinstance(ref, MockContainer):
            ref = ref.id
        ctr: MockContainer = _lookup(self.containers, ref, "container")
        return ctr

    def _new_id(self, kind: str, name: str) -> str:
        self._counter += 1
        return f"{kind}{self._counter:03d}-{name}"

    # -- state present before plugins connect -------------------------------------------------

    def add_existing_pod(self, name: str, **fields: Any) -> MockPod:
        """Add a ready pod without relaying events (plugins see it in Synchronize)."""
        pod = self._new_pod(name, **fields)
        self.pods[pod.id] = pod
        return pod

    def add_existing_container(self, pod: MockPod | str, name: str, **fields: Any) -> MockContainer:
        """Add a running container without relaying events (seen in Synchronize)."""
        ctr = self._new_container(self.pod(pod), name, **fields)
        ctr.state = pb.CONTAINER_RUNNING
        self.containers[ctr.id] = ctr
        return ctr

    def _new_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        uid: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        runtime_handler: str = "",
        id: str | None = None,
    ) -> MockPod:
        pod_id = id or self._new_id("pod", name)
        if pod_id in self.pods:
            raise ValueError(f"pod ID {pod_id!r} is already in use")
        return MockPod(
            id=pod_id,
            name=name,
            namespace=namespace,
            uid=uid or f"uid-{pod_id}",
            labels=dict(labels or {}),
            annotations=dict(annotations or {}),
            runtime_handler=runtime_handler,
        )

    def _new_container(
        self,
        pod: MockPod,
        name: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | Sequence[str] = (),
        mounts: Sequence[Mapping[str, Any]] = (),
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        resources: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> MockContainer:
        ctr_id = id or self._new_id("ctr", name)
        if ctr_id in self.containers:
            raise ValueError(f"container ID {ctr_id!r} is already in use")
        base = copy.deepcopy(dict(spec)) if spec is not None else {}
        oci = _default_spec(pod, ctr_id, name) | base
        process = oci.setdefault("process", {})
        if args:
            process["args"] = list(args)
        if env:
            process["env"] = [*process.get("env", []), *_env_list(env)]
        if mounts:
            oci["mounts"] = [*oci.get("mounts", []), *(dict(m) for m in mounts)]
        if annotations:
            oci["annotations"] = {**oci.get("annotations", {}), **annotations}
        if resources is not None:
            oci.setdefault("linux", {})["resources"] = copy.deepcopy(dict(resources))
        return MockContainer(
            id=ctr_id, name=name, pod_id=pod.id, spec=oci, labels=dict(labels or {})
        )

    # -- adaptation callbacks ----------------------------------------------------------------

    async def _sync(self) -> tuple[list[pb.PodSandbox], list[pb.Container]]:
        return (
            [p.to_proto() for p in self.pods.values()],
            [c.to_proto() for c in self.containers.values()],
        )

    async def _update(self, updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        record = EventRecord("UpdateContainers")
        failed = self._apply_updates(updates, record)
        self.history.append(record)
        return failed

    async def _evict(self, evictions: list[pb.ContainerEviction]) -> None:
        # Called while the adaptation serializes events: relay Stop/Remove afterwards.
        for eviction in evictions:
            self._spawn(self._evict_one(eviction.container_id, eviction.reason))

    def _plugin_closed(self, info: PluginInfo) -> None:
        # A plugin that crashed, disconnected or missed a deadline: events go on without it.
        if not self._closing:
            self.history.append(EventRecord("PluginClosed", plugin=info.full_name))

    def _on_result(self, event: str, owners: pb.OwningPlugins) -> None:
        self._owners = owners

    def _take_changes(self) -> list[FieldChange]:
        owners, self._owners = self._owners, None
        return [] if owners is None else _changes(owners)

    def _apply_updates(
        self, updates: Iterable[pb.ContainerUpdate], record: EventRecord
    ) -> list[pb.ContainerUpdate]:
        failed: list[pb.ContainerUpdate] = []
        for update in updates:
            if not update.container_id:
                continue  # the placeholder UpdateContainer ends with when no plugin changed it
            ctr = self.containers.get(update.container_id)
            if ctr is None:
                record.failed_updates.append(update.container_id)
                if not update.ignore_failure:
                    failed.append(update)
                continue
            before = copy.deepcopy(ctr.spec)
            try:
                SpecGenerator(ctr.spec).update(update)
            except Exception as exc:
                ctr.spec = before
                record.failed_updates.append(update.container_id)
                logger.warning("update of container %s failed: %s", ctr.id, exc)
                if not update.ignore_failure:
                    failed.append(update)
                continue
            self._note_spec(record, ctr.id, before, ctr.spec)
        return failed

    @staticmethod
    def _note_spec(
        record: EventRecord, cid: str, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        if before == after:
            return
        first = record.specs.get(cid, (before, after))[0]
        record.specs[cid] = (first, copy.deepcopy(after))

    async def _evict_one(self, cid: str, reason: str) -> None:
        record = EventRecord("EvictContainer", container_id=cid, evicted=[(cid, reason)])
        ctr = self.containers.get(cid)
        if ctr is None:
            record.error = f"no container {cid!r} to evict"
            self.history.append(record)
            return
        record.pod_id = ctr.pod_id
        self.history.append(record)
        try:
            if ctr.state != pb.CONTAINER_STOPPED:
                await self.stop_container(ctr)
            await self.remove_container(ctr)
        except Exception as exc:
            logger.warning("evicting container %s failed: %s", cid, exc)

    async def _recorded(self, record: EventRecord, call: Awaitable[Any]) -> Any:
        self.history.append(record)
        try:
            return await call
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            raise

    # -- pods --------------------------------------------------------------------------------

    async def run_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        uid: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        runtime_handler: str = "",
        id: str | None = None,
    ) -> MockPod:
        """Create a pod and relay RunPodSandbox; the pod is kept only if that succeeds."""
        pod = self._new_pod(
            name,
            namespace=namespace,
            uid=uid,
            labels=labels,
            annotations=annotations,
            runtime_handler=runtime_handler,
            id=id,
        )
        record = EventRecord("RunPodSandbox", pod_id=pod.id)
        async with self.adaptation.block_plugin_sync():
            await self._recorded(
                record, self.adaptation.run_pod_sandbox(pb.RunPodSandboxRequest(pod=pod.to_proto()))
            )
            self.pods[pod.id] = pod
        return pod

    async def update_pod(self, pod: MockPod | str, resources: Mapping[str, Any]) -> MockPod:
        """Relay UpdatePodSandbox and PostUpdatePodSandbox with new OCI resources."""
        pod = self.pod(pod)
        request = pb.UpdatePodSandboxRequest(
            pod=pod.to_proto(), linux_resources=linux_resources_from_oci(resources)
        )
        await self._recorded(
            EventRecord("UpdatePodSandbox", pod_id=pod.id),
            self.adaptation.update_pod_sandbox(request),
        )
        pod.resources = copy.deepcopy(dict(resources))
        await self._recorded(
            EventRecord("PostUpdatePodSandbox", pod_id=pod.id),
            self.adaptation.post_update_pod_sandbox(
                pb.PostUpdatePodSandboxRequest(pod=pod.to_proto())
            ),
        )
        return pod

    async def stop_pod(self, pod: MockPod | str) -> MockPod:
        """Stop the pod's running containers, then relay StopPodSandbox."""
        pod = self.pod(pod)
        for ctr in self._containers_of(pod):
            if ctr.state != pb.CONTAINER_STOPPED:
                await self.stop_container(ctr)
        await self._recorded(
            EventRecord("StopPodSandbox", pod_id=pod.id),
            self.adaptation.stop_pod_sandbox(pb.StopPodSandboxRequest(pod=pod.to_proto())),
        )
        pod.state = "notready"
        return pod

    async def remove_pod(self, pod: MockPod | str) -> None:
        """Remove the pod's containers (stopping them first), then relay RemovePodSandbox."""
        pod = self.pod(pod)
        if pod.state == "ready":
            await self.stop_pod(pod)
        for ctr in self._containers_of(pod):
            await self.remove_container(ctr)
        await self._recorded(
            EventRecord("RemovePodSandbox", pod_id=pod.id),
            self.adaptation.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod=pod.to_proto())),
        )
        self.pods.pop(pod.id, None)

    def _containers_of(self, pod: MockPod) -> list[MockContainer]:
        return [c for c in self.containers.values() if c.pod_id == pod.id]

    # -- containers --------------------------------------------------------------------------

    async def create_container(
        self,
        pod: MockPod | str,
        name: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | Sequence[str] = (),
        mounts: Sequence[Mapping[str, Any]] = (),
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        resources: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> MockContainer:
        """Create a container: relay CreateContainer, apply the result, PostCreateContainer
        (not for a container the plugins evicted at once).

        Plugin errors, conflicts and validation failures propagate (PluginError,
        ConflictError, ValidationError, SpecError); the container is then not kept and the
        failed event is in :attr:`history` with its error. The pod must be ready
        (LifecycleError otherwise).
        """
        the_pod = self.pod(pod)
        if the_pod.state != "ready":
            raise LifecycleError(
                f"cannot create container {name} in pod {the_pod.name} ({the_pod.id}): "
                f"the pod is {the_pod.state}"
            )
        ctr = self._new_container(
            the_pod,
            name,
            args=args,
            env=env,
            mounts=mounts,
            annotations=annotations,
            labels=labels,
            resources=resources,
            spec=spec,
            id=id,
        )
        record = EventRecord("CreateContainer", pod_id=the_pod.id, container_id=ctr.id)
        self.history.append(record)
        before = copy.deepcopy(ctr.spec)
        request = pb.CreateContainerRequest(pod=the_pod.to_proto(), container=ctr.to_proto())
        try:
            async with self.adaptation.block_plugin_sync():
                response = await self.adaptation.create_container(request)
                record.changes = self._take_changes()
                if response.HasField("adjust"):
                    SpecGenerator(ctr.spec).adjust(response.adjust)
                    ctr.adjustment = response.adjust
                ctr.owners = _owner_table(c for c in record.changes if c.container_id == ctr.id)
                self.containers[ctr.id] = ctr
                self._note_spec(record, ctr.id, before, ctr.spec)
                self._apply_updates(response.update, record)
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            self.containers.pop(ctr.id, None)
            await self._undo_create(the_pod, ctr)
            raise
        await self._evict_from(record, response.evict)
        if ctr.id not in self.containers:
            return ctr  # evicted at once: there is nothing left to relay PostCreate for
        await self._recorded(
            EventRecord("PostCreateContainer", pod_id=the_pod.id, container_id=ctr.id),
            self.adaptation.post_create_container(
                pb.PostCreateContainerRequest(pod=the_pod.to_proto(), container=ctr.to_proto())
            ),
        )
        return ctr

    async def _undo_create(self, pod: MockPod, ctr: MockContainer) -> None:
        # Like containerd: a failed creation is followed by StopContainer and RemoveContainer,
        # so plugins can release what they set aside for the container.
        # The relays below need it known; remove_container forgets it again.
        self.containers[ctr.id] = ctr
        try:
            await self.stop_container(ctr)
        except Exception as exc:
            logger.warning("undoing the creation of %s: StopContainer failed: %s", ctr.id, exc)
        try:
            await self.remove_container(ctr)
        except Exception as exc:
            logger.warning("undoing the creation of %s: RemoveContainer failed: %s", ctr.id, exc)
        finally:
            self.containers.pop(ctr.id, None)

    async def _evict_from(
        self, record: EventRecord, evictions: Iterable[pb.ContainerEviction]
    ) -> None:
        for eviction in evictions:
            record.evicted.append((eviction.container_id, eviction.reason))
            await self._evict_one(eviction.container_id, eviction.reason)

    async def start_container(self, ctr: MockContainer | str) -> MockContainer:
        """Relay StartContainer and PostStartContainer; the container is then running."""
        ctr = self.container(ctr)
        _require_state(ctr, "start", pb.CONTAINER_CREATED)
        pod = self.pod(ctr.pod_id)
        await self._recorded(
            EventRecord("StartContainer", pod_id=pod.id, container_id=ctr.id),
            self.adaptation.start_container(
                pb.StartContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            ),
        )
        ctr.state = pb.CONTAINER_RUNNING
        await self._recorded(
            EventRecord("PostStartContainer", pod_id=pod.id, container_id=ctr.id),
            self.adaptation.post_start_container(
                pb.PostStartContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            ),
        )
        return ctr

    async def update_container(
        self, ctr: MockContainer | str, resources: Mapping[str, Any]
    ) -> MockContainer:
        """Relay UpdateContainer with new OCI resources, apply the merged result, PostUpdate."""
        ctr = self.container(ctr)
        _require_state(ctr, "update", pb.CONTAINER_CREATED, pb.CONTAINER_RUNNING)
        pod = self.pod(ctr.pod_id)
        record = EventRecord("UpdateContainer", pod_id=pod.id, container_id=ctr.id)
        self.history.append(record)
        request = pb.UpdateContainerRequest(
            pod=pod.to_proto(),
            container=ctr.to_proto(),
            linux_resources=linux_resources_from_oci(resources),
        )
        before = copy.deepcopy(ctr.spec)
        try:
            response = await self.adaptation.update_container(request)
            record.changes = self._take_changes()
            own = [u for u in response.update if u.container_id == ctr.id]
            if not own:
                SpecGenerator(ctr.spec).apply_update(request.linux_resources)
            self._note_spec(record, ctr.id, before, ctr.spec)
            self._apply_updates(response.update, record)
        except Exception as exc:
            ctr.spec = before
            record.error = str(exc) or type(exc).__name__
            raise
        await self._evict_from(record, response.evict)
        if ctr.id not in self.containers:
            return ctr  # evicted by the update's plugins
        await self._recorded(
            EventRecord("PostUpdateContainer", pod_id=pod.id, container_id=ctr.id),
            self.adaptation.post_update_container(
                pb.PostUpdateContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            ),
        )
        return ctr

    async def stop_container(self, ctr: MockContainer | str) -> MockContainer:
        """Relay StopContainer and apply the updates plugins return for other containers.

        Stopping a stopped container does nothing (as in CRI, it is not an error).
        """
        ctr = self.container(ctr)
        if ctr.state == pb.CONTAINER_STOPPED:
            return ctr
        pod = self.pod(ctr.pod_id)
        ctr.state = pb.CONTAINER_STOPPED
        record = EventRecord("StopContainer", pod_id=pod.id, container_id=ctr.id)
        self.history.append(record)
        try:
            response = await self.adaptation.stop_container(
                pb.StopContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
            )
            record.changes = self._take_changes()
            self._apply_updates(response.update, record)
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            raise
        return ctr

    async def remove_container(self, ctr: MockContainer | str) -> None:
        """Relay RemoveContainer and forget the container."""
        ctr = self.container(ctr)
        pod = self.pod(ctr.pod_id)
        try:
            await self._recorded(
                EventRecord("RemoveContainer", pod_id=pod.id, container_id=ctr.id),
                self.adaptation.remove_container(
                    pb.RemoveContainerRequest(pod=pod.to_proto(), container=ctr.to_proto())
                ),
            )
        finally:
            self.containers.pop(ctr.id, None)


def _lookup(table: Mapping[str, Any], ref: str, kind: str) -> Any:
    found = table.get(ref)
    if found is not None:
        return found
    named = [obj for obj in table.values() if obj.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        raise KeyError(f"{kind} name {ref!r} is ambiguous: IDs {[o.id for o in named]}")
    raise KeyError(f"no {kind} {ref!r} (known: {[o.name for o in table.values()]})")


def _default_spec(pod: MockPod, ctr_id: str, name: str) -> dict[str, Any]:
    """A container spec like the one a CRI runtime generates, before any plugin."""
    return {
        "ociVersion": "1.3.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh"],
            "env": [DEFAULT_PATH_ENV, f"HOSTNAME={pod.name}"],
            "cwd": "/",
        },
        "root": {"path": "rootfs"},
        "hostname": pod.name,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
        ],
        "annotations": {
            "io.kubernetes.cri.container-name": name,
            "io.kubernetes.cri.sandbox-id": pod.id,
            "io.kubernetes.cri.sandbox-name": pod.name,
            "io.kubernetes.cri.sandbox-namespace": pod.namespace,
        },
        "linux": {
            "resources": {},
            "cgroupsPath": f"kubepods-pod{pod.uid}.slice:cri:{ctr_id}",
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "network"},
            ],
        },
    }


async def collect_stderr(
    process: asyncio.subprocess.Process,
    into: bytearray,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Read ``process``'s stderr until it closes: keep the last few KiB in ``into`` and pass
    each line to ``on_line`` (a line longer than 64 KiB is passed in pieces)."""
    stream = process.stderr
    if stream is None:
        return
    partial = b""
    while chunk := await stream.read(4096):
        into += chunk
        if len(into) > _STDERR_TAIL:
            del into[: len(into) - _STDERR_TAIL]
        if on_line is None:
            continue
        *lines, partial = (partial + chunk).split(b"\n")
        if len(partial) > _LONGEST_LINE:
            lines.append(partial)
            partial = b""
        on_line = _deliver(lines, on_line)
    if on_line is not None and partial:
        _deliver([partial], on_line)


def _deliver(
    lines: Iterable[bytes], on_line: Callable[[str], None]
) -> Callable[[str], None] | None:
    """Pass lines on; a failing callback is logged and gets nothing more."""
    try:
        for line in lines:
            on_line(line.decode("utf-8", "replace").rstrip("\r"))
    except Exception:
        logger.exception("the plugin output callback failed; no more lines are passed on")
        return None
    return on_line


def _tail(buf: bytearray) -> str:
    return bytes(buf).decode("utf-8", "replace")


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 2.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
