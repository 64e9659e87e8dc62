"""WASM plugins: WebAssembly modules in the plugin directory, run in-process by wasmtime.

The modules are built here from WAT text and implement the go-plugin ABI upstream's WASM
plugins use: exports ``memory``, ``malloc``, ``free``, ``plugin_api_version`` and one
``plugin_<method>(ptr, size) -> ptr << 32 | size`` per Plugin method, import ``env.log``.
Their replies are fixed protobuf bytes in data segments.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from _adaptation_helpers import FakeRuntime, config_for, create_request, env_of, install_plugin

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb

EXPORTS = {
    "Configure": "plugin_configure",
    "Synchronize": "plugin_synchronize",
    "Shutdown": "plugin_shutdown",
    "RunPodSandbox": "plugin_run_pod_sandbox",
    "UpdatePodSandbox": "plugin_update_pod_sandbox",
    "PostUpdatePodSandbox": "plugin_post_update_pod_sandbox",
    "StopPodSandbox": "plugin_stop_pod_sandbox",
    "RemovePodSandbox": "plugin_remove_pod_sandbox",
    "CreateContainer": "plugin_create_container",
    "PostCreateContainer": "plugin_post_create_container",
    "StartContainer": "plugin_start_container",
    "PostStartContainer": "plugin_post_start_container",
    "UpdateContainer": "plugin_update_container",
    "PostUpdateContainer": "plugin_post_update_container",
    "StopContainer": "plugin_stop_container",
    "RemoveContainer": "plugin_remove_container",
    "StateChange": "plugin_state_change",
    "ValidateContainerAdjustment": "plugin_validate_container_adjustment",
}
# Answered with an empty reply unless told otherwise; any other method traps if called.
ANSWERED = {"Configure", "Synchronize", "Shutdown"}
INSTALL_HINT = "pip install 'nri[wasm]'"


def subscribe(*events: int) -> bytes:
    mask = 0
    for event in events:
        mask |= 1 << (event - 1)
    return pb.ConfigureResponse(events=mask).SerializeToString()


def add_env(key: str, value: str) -> bytes:
    adjust = pb.ContainerAdjustment(env=[pb.KeyValue(key=key, value=value)])
    return pb.CreateContainerResponse(adjust=adjust).SerializeToString()


def wat_string(data: bytes) -> str:
    """``data`` as the text of a WAT string literal."""
    return "".join(f"\\{b:02x}" for b in data)


def plugin_wat(
    replies: dict[str, bytes],
    *,
    errors: dict[str, bytes] | None = None,
    spin: frozenset[str] = frozenset(),
    log: pb.LogRequest | None = None,
    stdout: bytes = b"",
    api_version: int = 1,
) -> str:
    """A module answering each method in ``replies`` (or ``errors``) with fixed bytes.

    Methods in ``spin`` loop forever; with ``log``, CreateContainer first calls the host's
    Log with it, with ``stdout`` it first writes that to WASI stdout.
    """
    errors = errors or {}
    segments: list[str] = []
    offset = 1024

    def place(data: bytes) -> tuple[int, int]:
        nonlocal offset
        at = offset
        segments.append(f'(data (i32.const {at}) "{wat_string(data)}")')
        offset += len(data) + 16
        return at, len(data)

    log_call = ""
    if log is not None:
        at, size = place(log.SerializeToString())
        log_call = f"(drop (call $log (i32.const {at}) (i32.const {size})))"
    if stdout:
        at, size = place(stdout)
        # One iovec (ptr, len) at 512; fd_write(fd 1, iovs 512, 1 iovec, written at 520).
        log_call += (
            f"(i32.store (i32.const 512) (i32.const {at}))"
            f"(i32.store (i32.const 516) (i32.const {size}))"
            "(drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520)))"
        )
    funcs = []
    for method, export in EXPORTS.items():
        body = []
        if method in spin:
            body.append("(loop $forever (br $forever))")
        if method in errors:
            at, size = place(errors[method])
            body.append(f"(i64.const {at << 32 | size | 1 << 31})")
        elif method in replies:
            at, size = place(replies[method])
            if method == "CreateContainer":
                body.append(log_call)
            body.append(f"(i64.const {at << 32 | size})")
        elif method in ANSWERED or method in spin:
            body.append("(i64.const 0)")
        else:
            body.append("(unreachable)")
        funcs.append(f'(func (export "{export}") (param i32 i32) (result i64) {" ".join(body)})')
    return f"""(module
  (import "env" "log" (func $log (param i32 i32) (result i64)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "malloc") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $at))
  (func (export "free") (param i32))
  (func (export "plugin_api_version") (result i64) (i64.const {api_version}))
  {" ".join(segments)}
  {" ".join(funcs)}
)"""


def install_module(plugin_dir: Path, filename: str, binary: bytes, mode: int = 0o755) -> Path:
    plugin_dir.mkdir(parents=True, exist_ok=True)
    plugin_dir.chmod(0o755)
    path = plugin_dir / filename
    path.write_bytes(binary)
    path.chmod(mode)
    return path


def wasm(wat: str) -> bytes:
    wasmtime = pytest.importorskip("wasmtime")
    binary: bytes = wasmtime.wat2wasm(wat)
    return binary


def problems(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and text in r.getMessage()
    ]


@pytest.mark.timeout(30)
async def test_wasm_plugin_gets_its_events_and_its_adjustment_is_merged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="nri.adaptation")
    plugins = tmp_path / "plugins"
    log = pb.LogRequest(msg="hello from wasm", level=pb.LogRequest.LEVEL_WARN)
    replies = {
        "Configure": subscribe(pb.CREATE_CONTAINER),
        "CreateContainer": add_env("ADDED_BY_WASM", "10-wasm"),
    }
    stdout = b"printed by wasm\n"
    install_module(plugins, "10-wasm", wasm(plugin_wat(replies, log=log, stdout=stdout)))
    install_plugin(plugins, "20-second")
    nri = FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True))
    await nri.start()
    try:
        infos = nri.plugins
        assert [(i.full_name, i.external, i.pid) for i in infos[:1]] == [("10-wasm", False, None)]
        assert [i.full_name for i in infos] == ["10-wasm", "20-second"]
        assert infos[0].events == 1 << (pb.CREATE_CONTAINER - 1)
        # Not subscribed: a call would reach (unreachable) and close the plugin.
        await nri.run_pod_sandbox(pb.RunPodSandboxRequest(pod=pb.PodSandbox(id="pod0")))
        response = await nri.create_container(create_request())
        assert env_of(response) == {"ADDED_BY_WASM": "10-wasm", "ADDED_BY_20": "20-second"}
        assert [i.full_name for i in nri.plugins] == ["10-wasm", "20-second"]
    finally:
        await nri.close()
    logged = [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if "by wasm" in r.getMessage() or "from wasm" in r.getMessage()
    ]
    assert logged == [
        ("nri.adaptation.plugin", logging.WARNING, "[10-wasm] hello from wasm"),
        ("nri.adaptation.plugin", logging.INFO, "[10-wasm] printed by wasm"),
    ]


@pytest.mark.timeout(30)
async def test_wasm_error_reply_fails_the_event_and_the_plugin_stays(tmp_path: Path) -> None:
    replies = {"Configure": subscribe(pb.CREATE_CONTAINER, pb.REMOVE_CONTAINER)}
    errors = {"CreateContainer": b"no such device"}
    install_module(tmp_path / "plugins", "10-refuser", wasm(plugin_wat(replies, errors=errors)))
    nri = FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True))
    await nri.start()
    try:
        with pytest.raises(PluginError, match="10-refuser.*no such device"):
            await nri.create_container(create_request())
        assert [i.full_name for i in nri.plugins] == ["10-refuser"]
    finally:
        await nri.close()


@pytest.mark.timeout(30)
async def test_wasm_plugin_in_an_endless_loop_times_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    replies = {"Configure": subscribe(pb.CREATE_CONTAINER)}
    install_module(
        plugins, "10-spinner", wasm(plugin_wat(replies, spin=frozenset({"CreateContainer"})))
    )
    install_module(plugins, "20-stuck", wasm(plugin_wat({}, spin=frozenset({"Configure"}))))
    closed: list[str] = []
    config = config_for(
        tmp_path, disable_connections=True, request_timeout=0.5, registration_timeout=0.5
    )
    nri = FakeRuntime().adaptation(config, on_plugin_closed=lambda i: closed.append(i.full_name))
    await nri.start()
    try:
        assert [i.full_name for i in nri.plugins] == ["10-spinner"]
        response = await nri.create_container(create_request())
        assert env_of(response) == {}
        assert nri.plugins == []
        assert closed == ["10-spinner"]
    finally:
        await nri.close()
    assert len(problems(caplog, "20-stuck")) == 1
    assert any("timed out" in line for line in problems(caplog, "10-spinner"))


@pytest.mark.timeout(30)
async def test_broken_wasm_modules_are_skipped_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    good = {"Configure": subscribe(pb.CREATE_CONTAINER), "CreateContainer": add_env("OK", "1")}
    install_module(plugins, "10-garbage", b"\0asm\x01\0\0\0not a module at all")
    install_module(plugins, "20-empty", b"\0asm\x01\0\0\0")  # valid, but exports nothing
    install_module(plugins, "30-newer", wasm(plugin_wat(good, api_version=2)))
    install_module(plugins, "40-notexec", wasm(plugin_wat(good)), mode=0o644)
    bad_reply = {"Configure": good["Configure"], "CreateContainer": b"\xff\xff\xff\xff"}
    install_module(plugins, "50-babbler", wasm(plugin_wat(bad_reply)))
    install_module(plugins, "60-good", wasm(plugin_wat(good)))
    nri = FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True))
    await nri.start()
    try:
        assert [i.full_name for i in nri.plugins] == ["50-babbler", "60-good"]
        response = await nri.create_container(create_request())
        assert env_of(response) == {"OK": "1"}
        assert [i.full_name for i in nri.plugins] == ["60-good"]
    finally:
        await nri.close()
    for name, why in [
        ("10-garbage", "invalid WebAssembly module"),
        ("20-empty", "memory is not exported"),
        ("30-newer", "API version mismatch"),
        ("50-babbler", "not a valid CreateContainerResponse"),
    ]:
        lines = problems(caplog, name)
        assert len(lines) == 1, lines
        assert why in lines[0]
    assert problems(caplog, "40-notexec") == []
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.timeout(30)
async def test_without_wasmtime_a_wasm_plugin_is_skipped_with_a_hint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wasmtime", None)  # import wasmtime raises ImportError
    path = install_module(tmp_path / "plugins", "10-wasm", b"\0asm\x01\0\0\0")
    install_plugin(tmp_path / "plugins", "20-second")
    nri = FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True))
    await nri.start()
    try:
        assert [i.full_name for i in nri.plugins] == ["20-second"]
    finally:
        await nri.close()
    lines = problems(caplog, "10-wasm")
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and INSTALL_HINT in lines[0]


@pytest.mark.timeout(30)
async def test_wasm_reply_larger_than_the_message_limit_closes_the_plugin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = add_env("BIG", "x" * 3000)
    replies = {"Configure": subscribe(pb.CREATE_CONTAINER), "CreateContainer": big}
    install_module(tmp_path / "plugins", "10-big", wasm(plugin_wat(replies)))
    config = config_for(tmp_path, disable_connections=True, max_message_size=2048)
    async with FakeRuntime().adaptation(config) as nri:
        assert [i.full_name for i in nri.plugins] == ["10-big"]
        assert env_of(await nri.create_container(create_request())) == {}
        assert nri.plugins == []
    lines = problems(caplog, "10-big")
    assert len(lines) == 1, lines
    assert f"answered {len(big)} bytes, more than 2048" in lines[0]
