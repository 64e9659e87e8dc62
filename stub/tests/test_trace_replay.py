"""End to end: record traffic with nri-trace, replay it against real plugin processes."""

from __future__ import annotations

import json
import sys
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

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
async def test_record_then_replay_same_and_different_plugin(tmp_path: Path) -> None:
    rec = tmp_path / "rec.json"
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:  # noqa: SIM117
        async with tracer(tmp_path / "t.sock", tmp_path / "nri.sock", "--record", rec) as traced:
            async with plugin_process([*ULIMIT, "--idx", "30", "--socket-path", traced.listen]):
                await rt.wait_for_plugins(1)
                await ulimit_lifecycle(rt)
    doc = json.loads(rec.read_text())
    assert doc["sessions"] == [{"session": 0, "plugin": "30-ulimit-adjuster"}]
    assert {c["dir"] for c in doc["chunks"]} == {"plugin->runtime", "runtime->plugin"}

    status, out, err = await run_command(*TRACE, "replay", rec, "--plugin", " ".join(ULIMIT))
    assert (status, err) == (0, ""), out
    assert out.strip().endswith("0 difference(s)")
    status, out, _ = await run_command(
        *TRACE, "replay", rec, "--socket", tmp_path / "r.sock",
        "--plugin", " ".join([*ULIMIT, "--idx", "30", "--socket-path", "{socket}"]),
    )  # fmt: skip
    assert status == 0, out
    status, out, _ = await run_command(
        *TRACE, "replay", rec, "--plugin", f"{sys.executable} -m nri_template"
    )
    assert status == 1
    assert "Configure stream 1: reply differs: events: recorded 8, got" in out
    assert "CreateContainer stream 5: reply differs: adjust.rlimits" in out


@pytest.mark.timeout(60)
async def test_replay_upstream_capture_against_our_plugin() -> None:
    capture = CAPTURES / "template.json"
    plugin = f"{sys.executable} -m nri_template"
    status, out, _ = await run_command(*TRACE, "replay", capture, "--plugin", plugin)
    assert (
        status == 1
        and "RegisterPlugin stream 1: request from the plugin differs: NRIVersion" in out
    )
    status, out, _ = await run_command(
        *TRACE, "replay", capture, "--plugin", plugin, "--ignore", "RegisterPlugin.NRIVersion"
    )
    assert status == 0, out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON recording: line 1 column 1"),
        ('{"x": 1}', "not a recording: no 'chunks' list"),
        ('{"chunks": [{"dir": "up", "hex": ""}]}', "chunk #0: 'dir' must be"),
        (
            '{"chunks": [{"dir": "plugin->runtime", "hex": "zz"}]}',
            "chunk #0: 'hex' is not valid hex",
        ),
    ],
)
async def test_bad_recordings_are_one_line_errors(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    status, out, err = await run_command(*TRACE, "replay", bad, "--plugin", "true")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and str(bad) in err
