"""A blocking front of :class:`MockRuntime`, its event loop running in a background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from nri.adaptation import (
    AdaptationError,
    AdjustmentError,
    PluginError,
    PluginInfo,
    ValidationError,
)
from nri.mock._history import EventRecord
from nri.mock._hosting import PluginLaunchError, PluginProcess
from nri.mock._profiles import RuntimeProfile
from nri.mock._runtime import MockRuntime
from nri.mock._state import LifecycleError, MockContainer, MockPod, UpdateError
from nri.oci import SpecError
from nri.stub import Plugin, Stub

__all__ = ["DEFAULT_CALL_TIMEOUT", "SyncMockRuntime"]

DEFAULT_CALL_TIMEOUT = 30.0
"""Seconds any call may take (on top of its own ``timeout``) before it fails as stuck."""

_TOLD_ERRORS = (
    PluginError,
    AdjustmentError,
    ValidationError,
    AdaptationError,
    PluginLaunchError,
    LifecycleError,
    UpdateError,
    SpecError,
    TimeoutError,
    LookupError,
)
"""Errors whose message tells what went wrong: raised without the runtime's inner frames."""

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[MockRuntime, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncMockRuntime, P], R]:
    """Turn a coroutine method of MockRuntime into a blocking method of SyncMockRuntime."""

    def call(self: SyncMockRuntime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True
        own_timeout = kwargs.get("timeout")
        extra = float(own_timeout) if isinstance(own_timeout, int | float) else None
        coro = method(self.runtime, *args, **kwargs)
        # Named after the public class, not the base class that defines the method.
        coro.__qualname__ = f"MockRuntime.{method.__name__}"  # type: ignore[attr-defined]
        return self.run_coroutine(coro, timeout=extra)

    return _named_like(call, method)


def _in_loop(
    method: Callable[Concatenate[MockRuntime, P], R],
) -> Callable[Concatenate[SyncMockRuntime, P], R]:
    """Run a plain method of MockRuntime in the runtime's thread (it touches shared state)."""

    def call(self: SyncMockRuntime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True

        async def invoke() -> R:
            return method(self.runtime, *args, **kwargs)

        invoke.__qualname__ = f"MockRuntime.{method.__name__}"
        return self.run_coroutine(invoke())

    return _named_like(call, method)


def _named_like(wrapper: Callable[P, R], method: Callable[..., Any]) -> Callable[P, R]:
    wrapper.__name__ = method.__name__
    wrapper.__qualname__ = f"SyncMockRuntime.{method.__name__}"
    wrapper.__doc__ = method.__doc__
    return wrapper


class SyncMockRuntime:
    """A :class:`MockRuntime` driven from synchronous code, such as plain pytest tests.

    The runtime's event loop runs in a background thread, started by :meth:`start` (or
    ``with``) and stopped by :meth:`close`. Methods mirror :class:`MockRuntime`'s, block
    until done and return the same objects (:class:`MockPod`, :class:`MockContainer`,
    :class:`PluginProcess`, ...); exceptions (PluginError, ConflictError,
    PluginLaunchError, ...) are raised in the caller, those with a telling message without the
    runtime's inner frames and causes. A call that takes longer than its own
    ``timeout`` plus ``call_timeout`` raises TimeoutError instead of hanging::

        from nri.mock import SyncMockRuntime

        with SyncMockRuntime() as runtime:
            runtime.launch_plugin("nri-ulimit-adjuster --idx 10")
            pod = runtime.run_pod("web")
            ctr = runtime.create_container(pod, "app")
            assert runtime.last("PostCreateContainer").container_id == ctr.id

    Pass a configured :class:`MockRuntime` for other runtime options, e.g.
    ``SyncMockRuntime(MockRuntime(request_timeout=0.5))``. :meth:`launch_plugin` and
    :meth:`add_plugin` wait for registration as long as that runtime's
    ``registration_timeout`` by default. In-process plugins run in the background thread:
    a handler that blocks (``time.sleep``) blocks the whole runtime, so prefer ``async def``
    handlers there. :meth:`close` stops in-process plugins and terminates plugin commands;
    if the runtime cannot be closed in time, it kills the commands it started.
    """

    def __init__(
        self, runtime: MockRuntime | None = None, *, call_timeout: float = DEFAULT_CALL_TIMEOUT
    ) -> None:
        self.runtime = runtime if runtime is not None else MockRuntime()
        """The wrapped runtime; touch its state only between calls."""
        self.call_timeout = call_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return (
            f"<SyncMockRuntime {state} at {self.runtime.socket_path}: pods={len(self.pods)} "
            f"containers={len(self.containers)} plugin_commands={len(self.processes)}>"
        )

    # -- the background loop -----------------------------------------------------------------

    def start(self) -> None:
        """Start the event loop thread and the runtime (listening on its socket)."""
        if self._thread is not None:
            raise RuntimeError("the mock runtime was already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name="nri-mock-runtime", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self.run_coroutine(self.runtime.start())
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        """Close the runtime and its plugins, then stop the event loop thread.

        Raises TimeoutError if the loop is stuck (a plugin handler blocking it); plugin
        commands are killed in any case.
        """
        if self._loop is None:
            return
        try:
            self.run_coroutine(self.runtime.close())
        finally:
            self._kill_plugin_processes()
            self._stop_loop()

    def __enter__(self) -> SyncMockRuntime:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run_coroutine(self, coro: Coroutine[Any, Any, R], *, timeout: float | None = None) -> R:
        """Run ``coro`` in the runtime's event loop and return its result.

        For anything asynchronous not mirrored here, e.g. an in-process plugin's unsolicited
        update: ``runtime.run_coroutine(stub.update_containers([...]))``. Raises TimeoutError
        (and cancels ``coro``) after ``timeout`` plus :attr:`call_timeout` seconds.
        """
        __tracebackhide__ = True
        what = getattr(coro, "__qualname__", "the call")
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            coro.close()
            raise RuntimeError(
                f"cannot run {what}: the mock runtime is not running "
                "(use it inside 'with SyncMockRuntime() as runtime:' or the nri_runtime fixture)"
            )
        if threading.current_thread() is thread:
            coro.close()
            raise RuntimeError(
                f"cannot run {what} from the mock runtime's own thread (from a plugin handler?); "
                "await the MockRuntime method there instead"
            )
        limit = self.call_timeout + (timeout or 0.0)
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        done, _ = concurrent.futures.wait([future], limit)
        if not done:
            future.cancel()
            raise TimeoutError(
                f"{what} did not finish within {limit:g}s: the mock runtime is stuck "
                "(an in-process plugin handler blocking its event loop?)"
            )
        try:
            return future.result()
        except _TOLD_ERRORS as exc:
            raise exc.with_traceback(None) from None

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self.call_timeout)
        if thread.is_alive():
            raise TimeoutError(
                f"the mock runtime's event loop did not stop within {self.call_timeout:g}s "
                "(a plugin handler blocking it?)"
            )
        self._loop = None

    def _kill_plugin_processes(self) -> None:
        # Normally closing the runtime already terminated them; this covers a stuck loop.
        for handle in self.runtime.processes:
            if handle.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(handle.pid, signal.SIGKILL)

    # -- plugins -----------------------------------------------------------------------------

    def launch_plugin(
        self,
        command: str | Sequence[str],
        *,
        name: str | None = None,
        idx: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> PluginProcess:
        """Start a plugin command and return once it registered; see
        :meth:`MockRuntime.launch_plugin`. ``timeout`` defaults to the runtime's
        registration timeout.
        """
        __tracebackhide__ = True
        limit = self._registration_timeout(timeout)
        coro = self.runtime.launch_plugin(command, name=name, idx=idx, env=env, timeout=limit)
        return self.run_coroutine(coro, timeout=limit)

    def add_plugin(
        self,
        plugin: Plugin,
        *,
        name: str,
        idx: str,
        config: str | None = None,
        timeout: float | None = None,
    ) -> Stub:
        """Run an in-process plugin object, registered; see :meth:`MockRuntime.add_plugin`.
        ``timeout`` defaults to the runtime's registration timeout.
        """
        __tracebackhide__ = True
        limit = self._registration_timeout(timeout)
        coro = self.runtime.add_plugin(plugin, name=name, idx=idx, config=config, timeout=limit)
        return self.run_coroutine(coro, timeout=limit)

    def _registration_timeout(self, timeout: float | None) -> float:
        if timeout is not None:
            return timeout
        return self.runtime.adaptation.config.registration_timeout

    wait_for_plugins = _blocking(MockRuntime.wait_for_plugins)
    idle = _blocking(MockRuntime.idle)

    # -- lifecycle, lookups and state ----------------------------------------------------------

    run_pod = _blocking(MockRuntime.run_pod)
    update_pod = _blocking(MockRuntime.update_pod)
    stop_pod = _blocking(MockRuntime.stop_pod)
    remove_pod = _blocking(MockRuntime.remove_pod)
    create_container = _blocking(MockRuntime.create_container)
    start_container = _blocking(MockRuntime.start_container)
    update_container = _blocking(MockRuntime.update_container)
    stop_container = _blocking(MockRuntime.stop_container)
    remove_container = _blocking(MockRuntime.remove_container)
    pod = _in_loop(MockRuntime.pod)
    container = _in_loop(MockRuntime.container)
    last = _in_loop(MockRuntime.last)

    def add_existing_pod(self, name: str, **fields: Any) -> MockPod:
        """Add a ready pod without relaying events (plugins see it in Synchronize)."""
        return self.run_coroutine(_value(lambda: self.runtime.add_existing_pod(name, **fields)))

    def add_existing_container(self, pod: MockPod | str, name: str, **fields: Any) -> MockContainer:
        """Add a running container without relaying events (seen in Synchronize)."""
        return self.run_coroutine(
            _value(lambda: self.runtime.add_existing_container(pod, name, **fields))
        )

    @property
    def plugins(self) -> list[PluginInfo]:
        """The registered plugins in invocation order."""
        return self.run_coroutine(_value(lambda: self.runtime.plugins))

    @property
    def pods(self) -> dict[str, MockPod]:
        """Pod ID -> pod (the runtime's own dict)."""
        return self.runtime.pods

    @property
    def containers(self) -> dict[str, MockContainer]:
        """Container ID -> container (the runtime's own dict)."""
        return self.runtime.containers

    @property
    def history(self) -> list[EventRecord]:
        """Every event so far with who changed what (the runtime's own list)."""
        return self.runtime.history

    @property
    def processes(self) -> list[PluginProcess]:
        """The plugin commands started by :meth:`launch_plugin`."""
        return self.runtime.processes

    @property
    def profile(self) -> RuntimeProfile:
        """The runtime the mock runtime behaves as (``containerd`` or ``cri-o``)."""
        return self.runtime.profile

    @property
    def socket_path(self) -> str:
        """Where the runtime listens for external plugins (``--socket-path``)."""
        return self.runtime.socket_path


async def _value(read: Callable[[], R]) -> R:
    return read()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
