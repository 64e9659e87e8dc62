"""WASM plugins: pre-installed plugin files that are WebAssembly modules.

Upstream loads a plugin file starting with ``\\0asm`` into wazero through the
``knqyf263/go-plugin`` ABI; :class:`WasmPlugin` runs the same modules in-process with
wasmtime (the optional extra ``nri[wasm]``). The ABI:

- the module exports ``memory``, ``malloc(size i32) -> i32``, ``free(ptr i32)``,
  ``plugin_api_version() -> i64`` (must be 1) and, for each method of the ``Plugin``
  service, ``plugin_<method in snake case>(ptr i32, size i32) -> i64``;
- a request is its protobuf bytes, written into memory the module allocates with
  ``malloc`` (no allocation for an empty request: ptr 0, size 0) and freed after the call;
- the result packs ``ptr << 32 | size``; bit 31 of the size marks an error, whose text is
  the bytes; the host frees ``ptr`` when it is not 0;
- the host provides WASI preview 1 and ``env.log(ptr i32, size i32) -> i64`` taking a
  ``LogRequest``; it answers the empty ``Empty`` message as 0 (ptr 0, size 0);
- ``_initialize`` runs once after instantiation, if exported (Go's ``c-shared`` reactors).

Each module runs in its own engine and store, on a worker thread of its own, one call at a
time; every call gets the request timeout, enforced by epoch interruption so a module stuck
in a loop traps and is closed like a plugin that timed out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import DecodeError, Message

from nri.adaptation._output import MAX_LINE, printable
from nri.adaptation._plugin import PluginConnection, PluginError
from nri.api import api_pb2 as pb
from nri.ttrpc import ClosedError, Code, DeadlineExceededError, StatusError

if TYPE_CHECKING:
    import wasmtime

__all__ = ["WASM_MAGIC", "WasmPlugin", "WasmTrapError", "is_wasm"]

logger = logging.getLogger("nri.adaptation")
plugin_logger = logging.getLogger("nri.adaptation.plugin")

#: The first 8 bytes of a binary WebAssembly module (magic and version 1).
WASM_MAGIC = b"\0asm\x01\0\0\0"
#: The go-plugin API version of the ``Plugin`` service a module must report.
API_VERSION = 1
INSTALL_HINT = "pip install 'nri[wasm]'"

#: The Plugin service's methods, in schema order: a module exports one function for each.
METHODS = tuple(m.name for m in pb.DESCRIPTOR.services_by_name["Plugin"].methods)

_ERROR_BIT = 1 << 31
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
# Once a call is interrupted, how long to wait for the module to get back into wasm code
# (a blocking WASI call is not interrupted) before giving up on it.
_INTERRUPT_GRACE = 1.0

_LOG_LEVELS = {
    pb.LogRequest.LEVEL_INFO: logging.INFO,
    pb.LogRequest.LEVEL_WARN: logging.WARNING,
    pb.LogRequest.LEVEL_ERROR: logging.ERROR,
}

T = TypeVar("T")
M = TypeVar("M", bound=Message)


def export_name(method: str) -> str:
    """The export of ``method``: ``CreateContainer`` -> ``plugin_create_container``."""
    return "plugin_" + re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()


def is_wasm(path: str) -> bool:
    """Whether the file at ``path`` starts like a binary WebAssembly module."""
    try:
        with open(path, "rb") as f:
            return f.read(len(WASM_MAGIC)) == WASM_MAGIC
    except OSError:
        return False


class WasmTrapError(ClosedError):
    """The module trapped, broke the ABI or answered garbage: it is not called again."""


class WasmCallError(Exception):
    """The module answered a request with an error (fails the event, like an error reply)."""


def _trap_text(exc: Exception) -> str:
    """One line of a wasmtime error (its messages carry a multi-line backtrace)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("wasm trap:"):
            return line
    return lines[-1] if lines else type(exc).__name__


class _Module:
    """One instantiated module; every method but ``__init__`` runs on the plugin's thread."""

    def __init__(self, path: str, name: str) -> None:
        import wasmtime

        self.name = name
        config = wasmtime.Config()
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        with open(path, "rb") as f:
            binary = f.read()
        try:
            self.module = wasmtime.Module(self.engine, binary)
        except wasmtime.WasmtimeError as exc:
            raise WasmTrapError(f"invalid WebAssembly module: {_trap_text(exc)}") from exc
        self.store = wasmtime.Store(self.engine)
        # Module-level callbacks that hold only the name: wasmtime keeps them in global
        # tables until the store goes, which a reference to self would prevent.
        wasi = wasmtime.WasiConfig()
        wasi.stdout_custom = functools.partial(_output, name)
        wasi.stderr_custom = functools.partial(_output, name)
        self.store.set_wasi(wasi)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        self.linker.define_func(
            "env",
            "log",
            wasmtime.FuncType([i32, i32], [i64]),
            functools.partial(_log, name),
            access_caller=True,
        )
        self.funcs: dict[str, wasmtime.Func] = {}
        self.memory: wasmtime.Memory | None = None

    def guarded(self, expired: threading.Event, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` until the engine's epoch moves on (the caller's timer expired)."""
        import wasmtime

        self.store.set_epoch_deadline(1)
        if expired.is_set():
            raise DeadlineExceededError(f"{what} timed out")
        try:
            return fn()
        except wasmtime.Trap as exc:
            if exc.trap_code is wasmtime.TrapCode.INTERRUPT:
                raise DeadlineExceededError(f"{what} timed out") from exc
            raise WasmTrapError(f"{what} failed: {_trap_text(exc)}") from exc
        except wasmtime.ExitTrap as exc:
            raise WasmTrapError(f"{what} failed: module exited with status {exc.code}") from exc
        except wasmtime.WasmtimeError as exc:
            raise WasmTrapError(f"{what} failed: {_trap_text(exc)}") from exc

    def instantiate(self) -> None:
        """Instantiate, run ``_initialize`` and check the exports and API version."""
        import wasmtime

        instance = self.linker.instantiate(self.store, self.module)
        exports = instance.exports(self.store)
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

        def func(name: str, params: list[wasmtime.ValType], results: list[wasmtime.ValType]) -> Any:
            item = exports.get(name)
            if not isinstance(item, wasmtime.Func):
                raise WasmTrapError(f"{name} is not exported")
            ty = item.type(self.store)
            if ty.params != params or ty.results != results:
                raise WasmTrapError(f"{name} has the wrong signature")
            return item

        memory = exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise WasmTrapError("memory is not exported")
        init = exports.get("_initialize")
        if isinstance(init, wasmtime.Func):
            try:
                init(self.store)
            except wasmtime.ExitTrap as exc:
                if exc.code != 0:
                    raise
        version = func("plugin_api_version", [], [i64])(self.store)
        if version != API_VERSION:
            raise WasmTrapError(f"API version mismatch, host: {API_VERSION}, plugin: {version}")
        self.funcs = {m: func(export_name(m), [i32, i32], [i64]) for m in METHODS}
        self.funcs["malloc"] = func("malloc", [i32], [i32])
        self.funcs["free"] = func("free", [i32], [])
        self.memory = memory

    def call(self, method: str, data: bytes, max_reply: int) -> bytes:
        """Call ``method`` with a serialized request; the serialized reply (refused if
        larger than ``max_reply`` bytes, as a ttRPC plugin's would be)."""
        memory, store = self.memory, self.store
        assert memory is not None
        ptr = 0
        if data:
            ptr = self.funcs["malloc"](store, len(data)) & _U32
            if ptr + len(data) > memory.data_len(store):
                raise WasmTrapError(f"malloc({len(data)}) returned {ptr}, outside memory")
            memory.write(store, data, ptr)
        packed = self.funcs[method](store, ptr, len(data)) & _U64
        if ptr:
            self.funcs["free"](store, ptr)
        res_ptr, size = packed >> 32, packed & _U32
        failed = bool(size & _ERROR_BIT)
        size &= ~_ERROR_BIT
        if res_ptr + size > memory.data_len(store):
            raise WasmTrapError(f"{method} answered {size} bytes at {res_ptr}, outside memory")
        if size > max_reply:
            raise WasmTrapError(f"{method} answered {size} bytes, more than {max_reply}")
        reply = bytes(memory.read(store, res_ptr, res_ptr + size))
        if res_ptr:
            self.funcs["free"](store, res_ptr)
        if failed:
            raise WasmCallError(printable(reply[:MAX_LINE]) or "unknown error")
        return reply


def _log(name: str, caller: wasmtime.Caller, ptr: int, size: int) -> int:
    """The host's ``env.log``: log the module's LogRequest; answer an empty ``Empty``."""
    import wasmtime

    request = pb.LogRequest()
    try:
        memory = caller["memory"]
        if not isinstance(memory, wasmtime.Memory):
            raise ValueError("memory is not exported")
        ptr &= _U32
        size &= _U32
        if ptr + size > memory.data_len(caller):
            raise ValueError(f"{size} bytes at {ptr} are outside memory")
        request.ParseFromString(bytes(memory.read(caller, ptr, ptr + size)))
    except Exception as exc:  # whatever the module passes, the host carries on
        logger.warning("WASM plugin %s sent an unreadable Log request: %s", name, exc)
        return 0
    level = _LOG_LEVELS.get(request.level, logging.DEBUG)
    plugin_logger.log(level, "[%s] %s", name, printable(request.msg.encode()[:MAX_LINE]))
    return 0


def _output(name: str, data: bytes) -> None:
    """Log what the module writes to stdout or stderr, line by line."""
    for line in data.splitlines():
        if line.strip():
            plugin_logger.info("[%s] %s", name, printable(line[:MAX_LINE]))


class WasmPlugin(PluginConnection):
    """A pre-installed WASM plugin: the adaptation's interface, calls into wasmtime.

    It is named after its file (``NN-name``) as a launched plugin is, has no process, no
    RegisterPlugin and no UpdateContainers; Configure and the events work as for any
    plugin. A module that cannot be loaded fails :meth:`start`; one that traps, breaks the
    ABI or runs out of time is closed.
    """

    def __init__(self, *, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self._module: _Module | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def external(self) -> bool:
        """Never: the runtime loaded it."""
        return False

    @property
    def qualified_name(self) -> str:
        """Kind and name, for logs (upstream qualifiedName)."""
        return f"pre-connected-wasm:{self.name}"

    async def start(self, runtime_name: str, runtime_version: str) -> None:
        """Load and instantiate the module, then Configure it.

        Raises PluginError naming the file (the plugin is closed) when wasmtime is missing,
        the module cannot be loaded or instantiated within the registration timeout, or
        Configure fails.
        """
        logger.info("found WASM plugin %s", self.path)
        try:
            import wasmtime  # noqa: F401
        except ImportError as exc:
            self.close()
            raise PluginError(
                f"cannot load WASM plugin {self.path}: wasmtime is not installed ({INSTALL_HINT})"
            ) from exc
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"nri-wasm-{self.name}"
        )
        try:
            loop = asyncio.get_running_loop()
            self._module = await loop.run_in_executor(self._executor, _Module, self.path, self.name)
            await self._run("instantiate", self._module.instantiate, self.registration_timeout)
        except Exception as exc:  # whatever the file holds, one line and the runtime goes on
            self.close()
            raise PluginError(f"failed to load WASM plugin {self.path}: {exc}") from exc
        self._set_registered(None)
        logger.info("plugin %s loaded from %s", self.qualified_name, self.path)
        try:
            await self._configure(runtime_name, runtime_version)
        except BaseException:
            self.close()
            raise

    async def _run(self, what: str, fn: Callable[[], T], timeout: float) -> T:  # noqa: ASYNC109
        """Run ``fn`` on the plugin's thread; interrupt it after ``timeout`` seconds."""
        module, executor = self._module, self._executor
        if module is None or executor is None or self._closed:
            raise ClosedError(f"WASM plugin {self.name} is closed")
        loop = asyncio.get_running_loop()
        expired = threading.Event()

        def interrupt() -> None:
            expired.set()
            module.engine.increment_epoch()

        future = loop.run_in_executor(executor, module.guarded, expired, what, fn)
        timer = loop.call_later(max(timeout, 0.0), interrupt)
        try:
            done, _ = await asyncio.wait({future}, timeout=max(timeout, 0.0) + _INTERRUPT_GRACE)
        except BaseException:
            interrupt()
            self._module = None
            raise
        finally:
            timer.cancel()
        if not done:
            interrupt()
            self._module = None
            raise DeadlineExceededError(f"{what} timed out (module does not return)")
        try:
            return future.result()
        except WasmTrapError:
            self._module = None
            raise

    async def _call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> M:
        if method not in METHODS:
            raise StatusError(Code.UNIMPLEMENTED, f"{method} is not a WASM plugin method")
        module = self._module
        if module is None or self._closed:
            raise ClosedError(f"WASM plugin {self.name} is closed")
        data = request.SerializeToString()
        limit = self.request_timeout if timeout is None else timeout
        started, error = time.monotonic(), None
        try:
            reply = await self._run(
                method, lambda: module.call(method, data, self.max_message_size), limit
            )
            response = response_type()
            try:
                response.ParseFromString(reply)
            except DecodeError as exc:
                self._module = None
                raise WasmTrapError(
                    f"{method} reply is not a valid {response_type.__name__}: {exc}"
                ) from exc
            return response
        except TimeoutError:
            error = "timeout"
            raise
        except BaseException:
            error = "error"
            raise
        finally:
            if self._observer is not None:
                self._observer.request_done(self.name, method, time.monotonic() - started, error)

    def close(self) -> None:
        """Close (idempotent): interrupt a running call and drop the instance."""
        module, executor = self._module, self._executor
        self._module = None
        if module is not None:
            module.engine.increment_epoch()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        super().close()

    async def stop(self) -> None:
        """Close; there is no process to stop."""
        self.close()
