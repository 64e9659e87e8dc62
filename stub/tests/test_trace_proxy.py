"""End to end: mock runtime <- nri-trace <- a real plugin process, over real sockets."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import pytest
from _trace_helpers import (
    CAPTURES,
    TRACE,
    ULIMIT,
    plugin_process,
    run_command,
    tracer,
    ulimit_lifecycle,
)

from nri.mock import MockRuntime
from nri.net import FrameDecoder

pytestmark = pytest.mark.slow


@pytest.mark.timeout(60)
async def test_plugin_sees_no_difference_and_every_message_is_printed(tmp_path: Path) -> None:
    direct_sock, runtime_sock = tmp_path / "direct.sock", tmp_path / "nri.sock"
    async with MockRuntime(socket_path=direct_sock) as rt:  # noqa: SIM117
        async with plugin_process([*ULIMIT, "--idx", "30", "--socket-path", direct_sock]):
            await rt.wait_for_plugins(1)
            direct = await ulimit_lifecycle(rt)
            direct_names = [p.full_name for p in rt.plugins]

    async with MockRuntime(socket_path=runtime_sock) as rt:  # noqa: SIM117
        async with tracer(tmp_path / "trace.sock", runtime_sock) as traced:
            async with plugin_process([*ULIMIT, "--idx", "30", "--socket-path", traced.listen]):
                await rt.wait_for_plugins(1)
                through = await ulimit_lifecycle(rt)
                assert [p.full_name for p in rt.plugins] == direct_names == ["30-ulimit-adjuster"]
                assert rt.plugins[0].events == 0x8

    assert through == direct
    assert direct[0][1] is not None and len(direct[0][1].rlimits) == 2
    assert "RLIMIT_FOO" in direct[2][2]

    stamp = r"\d\d:\d\d:\d\d\.\d{6}"
    lines = traced.lines
    expected = [
        rf"{stamp} plugin->runtime 30-ulimit-adjuster RegisterPlugin request stream=1 "
        r"name=ulimit-adjuster idx=30 nri=v\S+",
        rf"{stamp} runtime->plugin 30-ulimit-adjuster RegisterPlugin reply stream=1 "
        r"[\d.]+ms empty",
        rf"{stamp} runtime->plugin 30-ulimit-adjuster Configure request stream=1 "
        r"runtime=nri-mock-runtime \S+ config=0B registration_timeout=5000ms "
        r"request_timeout=2000ms",
        rf"{stamp} plugin->runtime 30-ulimit-adjuster Configure reply stream=1 [\d.]+ms "
        r"events=CreateContainer \(0x8\)",
        rf"{stamp} runtime->plugin 30-ulimit-adjuster Synchronize request stream=3 "
        "pods=0 containers=0 more=false",
        rf"{stamp} plugin->runtime 30-ulimit-adjuster Synchronize reply stream=3 [\d.]+ms "
        r"update\[0\] more=false",
        rf"{stamp} runtime->plugin 30-ulimit-adjuster CreateContainer request stream=5 "
        "pod=ns/p container=c0",
        rf"{stamp} plugin->runtime 30-ulimit-adjuster CreateContainer reply stream=5 [\d.]+ms "
        r"adjust\{rlimits\[2\]\}",
        r".* CreateContainer request stream=7 pod=ns/p container=other",
        r".* CreateContainer reply stream=7 [\d.]+ms adjust\{\}",
        r".* CreateContainer request stream=9 pod=ns/p container=bad",
        r".* CreateContainer reply stream=9 [\d.]+ms ERROR UNKNOWN: .*RLIMIT_FOO.*",
    ]
    # RegisterPlugin's reply and Configure may pass in either order (they race upstream too)
    assert len(lines) == len(expected), traced.stdout
    for pattern in expected:
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, traced.stdout)
    assert lines[0].split(" ", 1)[1].startswith("plugin->runtime 30-ulimit-adjuster Register")
    assert "connection #0: plugin connected" in traced.stderr
    assert "Traceback" not in traced.stderr


@pytest.mark.timeout(60)
async def test_json_events_filter_and_verbose(tmp_path: Path) -> None:
    sock1, sock2 = tmp_path / "nri1.sock", tmp_path / "nri2.sock"
    async with (
        MockRuntime(socket_path=sock1) as rt,
        MockRuntime(socket_path=sock2) as rt2,
        tracer(tmp_path / "t1.sock", sock1, "--json", "--events", "create_container") as as_json,
        tracer(
            tmp_path / "t2.sock", sock2, "-v", "--events", "RegisterPlugin,Configure"
        ) as verbose,
        plugin_process([*ULIMIT, "--idx", "30", "--socket-path", as_json.listen]),
        plugin_process([*ULIMIT, "--idx", "31", "--socket-path", verbose.listen]),
    ):
        await rt.wait_for_plugins(1)
        await rt2.wait_for_plugins(1)
        await ulimit_lifecycle(rt)
        await ulimit_lifecycle(rt2)

    objects = [json.loads(line) for line in as_json.lines]
    assert [(o["kind"], o["method"]) for o in objects] == [
        ("request", "CreateContainer"),
        ("response", "CreateContainer"),
    ] * 3
    first, reply = objects[0], objects[1]
    assert first["dir"] == "runtime->plugin" and reply["dir"] == "plugin->runtime"
    assert first["plugin"] == reply["plugin"] == "30-ulimit-adjuster"
    assert first["service"] == "nri.pkg.api.v1alpha1.Plugin"
    assert first["conn_id"] == 1 and first["stream_id"] == reply["stream_id"] == 5
    assert first["timeout_nano"] > 1e9
    assert first["payload"]["container"]["name"] == "c0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["time"])
    assert reply["latency_ms"] >= 0
    assert reply["payload"]["adjust"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": "4096", "soft": "1024"},
        {"type": "RLIMIT_MEMLOCK", "hard": "2", "soft": "1"},
    ]
    assert objects[5]["status"]["code"] == "UNKNOWN"
    assert "RLIMIT_FOO" in objects[5]["status"]["message"]

    text = verbose.stdout
    assert " CreateContainer request" not in text and "Synchronize" not in text
    heads = [line for line in verbose.lines if not line.startswith("    ")]
    assert [h.split()[3:5] for h in heads] == [
        ["RegisterPlugin", "request"],
        ["RegisterPlugin", "reply"],
        ["Configure", "request"],
        ["Configure", "reply"],
    ] or [h.split()[3:5] for h in heads] == [
        ["RegisterPlugin", "request"],
        ["Configure", "request"],
        ["RegisterPlugin", "reply"],
        ["Configure", "reply"],
    ]
    assert "    pluginName: ulimit-adjuster\n    pluginIdx: '31'\n" in text
    assert "    runtimeName: nri-mock-runtime\n" in text
    assert "    events: 8\n" in text


def _chunks(name: str) -> list[tuple[str, bytes]]:
    capture = json.loads((CAPTURES / name).read_text())
    return [(c["dir"], bytes.fromhex(c["hex"])) for c in capture["chunks"]]


async def _read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(size), 10)


@pytest.mark.timeout(60)
async def test_bytes_pass_unchanged_including_the_go_framing(tmp_path: Path) -> None:
    """A Go runtime's 4096 + remainder frames reach the plugin as they were sent."""
    runtime_sock = tmp_path / "nri.sock"
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await accepted.put((r, w))

    server = await asyncio.start_unix_server(on_connect, path=str(runtime_sock))
    chunks = _chunks("bigsync-gobench.json")
    garbage = b"\x00\x00\x00\x00\x00\x00\x00\x04oops" + b"\x01" * 100
    async with server, tracer(tmp_path / "trace.sock", runtime_sock, "--json") as traced:
        plugin_r, plugin_w = await asyncio.open_unix_connection(str(traced.listen))
        runtime_r, runtime_w = await asyncio.wait_for(accepted.get(), 10)
        to_plugin = bytearray()
        for direction, data in chunks:
            if direction == "plugin->runtime":
                plugin_w.write(data)
                assert await _read_exactly(runtime_r, len(data)) == data
            else:
                runtime_w.write(data)
                got = await _read_exactly(plugin_r, len(data))
                assert got == data
                to_plugin += got
        # bytes that break the mux framing are still passed on
        plugin_w.write(garbage)
        assert await _read_exactly(runtime_r, len(garbage)) == garbage
        runtime_w.write(b"still open")
        assert await _read_exactly(plugin_r, 10) == b"still open"
        plugin_w.close()
        assert await asyncio.wait_for(runtime_r.read(), 10) == b""
        runtime_w.close()

    sizes = [len(f.payload) for f in FrameDecoder().frames(bytes(to_plugin))]
    assert [s for s in sizes if s > 1000][:2] == [4096, 17144]
    objects = [json.loads(line) for line in traced.lines]
    sync = next(o for o in objects if o.get("method") == "Synchronize" and o["kind"] == "request")
    assert sync["size"] > 4096 and len(sync["payload"]["containers"]) == 40
    assert sync["plugin"] == "50-gobench"
    errors = [o for o in objects if o["kind"] == "error" and o["dir"] == "plugin->runtime"]
    assert len(errors) == 1 and "reserved conn id 0" in errors[0]["error"]


@pytest.mark.timeout(30)
async def test_runtime_not_reachable_closes_only_that_connection(tmp_path: Path) -> None:
    stale = tmp_path / "nri.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()  # a socket file nobody listens on
    async with tracer(tmp_path / "trace.sock", stale) as traced:
        for _ in range(2):
            reader, writer = await asyncio.open_unix_connection(str(traced.listen))
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        assert traced.process.returncode is None
    errors = [line for line in traced.stderr.splitlines() if "not reachable" in line]
    assert errors == [
        f"nri-trace: connection #{n}: runtime {stale} not reachable: Connection refused; "
        "closing the plugin's connection"
        for n in range(2)
    ]
    assert "Traceback" not in traced.stderr


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            None,
            ["--runtime", "{tmp}/missing.sock"],
            "runtime socket {tmp}/missing.sock does not exist",
        ),
        ("file", ["--runtime", "{tmp}/file"], "runtime socket {tmp}/file is not a socket"),
        (
            "socket",
            ["--runtime", "{tmp}/rt.sock", "--listen", "{tmp}/nodir/t.sock"],
            "cannot listen on {tmp}/nodir/t.sock: directory {tmp}/nodir does not exist",
        ),
        (
            "socket",
            ["--runtime", "{tmp}/rt.sock", "--listen", "{tmp}/file"],
            "cannot listen on {tmp}/file: it exists and is not a socket",
        ),
        (
            "socket",
            ["--runtime", "{tmp}/rt.sock", "--events", "CreateContainer,Bogus"],
            "unknown event or method 'Bogus' in --events",
        ),
        (
            "socket",
            ["--runtime", "{tmp}/rt.sock", "--record", "{tmp}/nodir/rec.json"],
            "cannot write recording {tmp}/nodir/rec.json: No such file or directory",
        ),
    ],
)
async def test_expected_failures_are_one_line(
    tmp_path: Path, setup: str | None, args: list[str], message: str
) -> None:
    (tmp_path / "file").write_text("x")
    if setup == "socket":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(tmp_path / "rt.sock"))
        listener.listen()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--listen" not in argv:
        argv += ["--listen", str(tmp_path / "t.sock")]
    status, out, err = await run_command(*TRACE, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("nri-trace: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in err
