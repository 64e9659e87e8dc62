"""Playing scenarios on a MockRuntime: events per step, expectations, rendering, JSON."""

from __future__ import annotations

import importlib.util
import io
import json
import re

import pytest
import yaml
from mock_scenarios.scenario_plugin import ScenarioPlugin

from nri.mock import MockRuntime
from nri.mock._history import EventRecord
from nri.mock._player import Player, RunResult, StepResult
from nri.mock._render import (
    Printer,
    render_step,
    render_summary,
    run_data,
    spec_diff,
    use_color,
)
from nri.mock._scenario import parse_scenario

SCENARIO = """
name: play
pods:
  web: {name: web-0}
  old: {}
containers:
  app: {pod: web, args: [sleep, inf], env: {A: "1"}}
  doomed: {pod: web}
  legacy: {pod: old}
existing: {pods: [old], containers: [legacy]}
steps:
  - run-pod: web
  - create-container: app
    expect:
      spec:
        - {path: /process/env, contains: FOO=bar}
        - {path: /process/env, contains: FOO=baz}
      containers:
        legacy: [{path: /linux/resources/cpu/shares, equals: 256}]
      changed-by: {Env:FOO: envs, Env:A: envs}
  - create-container: doomed
    expect: {error: refusing to create container doomed}
  - create-container: doomed
  - sleep: 0.3
    expect:
      containers:
        app: [{path: /linux/resources/cpu/shares, equals: 300}]
  - remove-container: app
  - stop-container: app
    expect:
      spec: [{path: /process/args/0, equals: sleep}]
"""


async def play(text: str) -> RunResult:
    scenario = parse_scenario(yaml.safe_load(text), "play.yaml")
    async with MockRuntime() as runtime:
        player = Player(runtime, scenario)
        player.add_existing(scenario)
        plugin = ScenarioPlugin(["FOO=bar"], "doomed", sync_shares=256, later_shares=300)
        await runtime.add_plugin(plugin, name="envs", idx="10")
        result = RunResult(scenario, runtime.plugins)
        result.connected = player.since_last("plugins connected")
        for step in scenario.steps:
            result.steps.append(await player.play(step))
        result.names = dict(player.names)
    return result


async def test_steps_record_events_and_check_expectations() -> None:
    result = await play(SCENARIO)
    assert result.connected is not None
    [sync] = result.connected.records
    assert sync.event == "UpdateContainers"
    assert [result.names[c] for c in sync.specs] == ["old/legacy"]

    run_pod, create, doomed, doomed_again, sleep, remove, stop = result.steps
    assert [r.event for r in run_pod.records] == ["RunPodSandbox"]
    assert run_pod.passed and not run_pod.outcomes

    assert [r.event for r in create.records] == ["CreateContainer", "PostCreateContainer"]
    assert [(o.where, o.passed, o.detail) for o in create.outcomes] == [
        ("steps[1].expect.spec[0]", True, None),
        (
            "steps[1].expect.spec[1]",
            False,
            'it is ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", '
            '"HOSTNAME=web-0", "A=1", "FOO=bar"]',
        ),
        ("steps[1].expect.containers.legacy[0]", True, None),
        ("steps[1].expect.changed-by.Env:FOO", True, None),
        ("steps[1].expect.changed-by.Env:A", False, "no plugin set it"),
    ]
    changes = [(c.field, c.key, c.plugin) for c in create.records[0].changes]
    assert changes == [("Env", "FOO", "10-envs")]

    assert doomed.error is not None and "refusing to create container doomed" in doomed.error
    assert [(o.description, o.passed) for o in doomed.outcomes] == [
        ("fails with an error containing 'refusing to create container doomed'", True)
    ]
    assert doomed.records[0].error is not None
    assert result.names[doomed.records[0].container_id or ""] == "web-0/doomed"
    [unexpected] = doomed_again.outcomes
    assert (unexpected.description, unexpected.where, unexpected.passed) == (
        "succeeds",
        "steps[3]",
        False,
    )

    # The plugin's unsolicited update arrives during the sleep.
    assert [r.event for r in sleep.records] == ["UpdateContainers"]
    assert sleep.passed

    assert remove.passed
    [gone, spec_check] = stop.outcomes
    assert not gone.passed and gone.detail is not None and "no longer exists" in gone.detail
    assert spec_check.passed  # the removed container's last spec is still checked
    assert not result.passed
    assert [o.passed for o in result.outcomes].count(False) == 4


async def test_rendering_shows_changes_diffs_and_failures() -> None:
    result = await play(SCENARIO)
    create = result.steps[1]
    text = [line for line, _ in render_step(create, result.names, 2)]
    assert text[0] == "[2] create-container app  (steps[1])"
    assert "  CreateContainer web-0/app" in text
    assert "    10-envs set Env FOO" in text
    assert "      --- web-0/app (before)" in text
    assert '      +      "FOO=bar"' in text
    assert '  ok    app: /process/env contains "FOO=bar"' in text
    assert any(
        line.startswith('  FAIL  steps[1].expect.spec[1]: app: /process/env contains "FOO=baz": ')
        for line in text
    )
    summary = [line for line, _ in render_summary(result)]
    assert summary[1] == "play: 7 steps, 10 expectations, 6 passed, 4 failed"
    assert summary[2].startswith("  FAIL  play.yaml: steps[1].expect.spec[1]: ")


async def test_json_document() -> None:
    result = await play(SCENARIO)
    data = json.loads(json.dumps(run_data(result)))
    assert data["scenario"] == {"name": "play", "file": "play.yaml", "description": ""}
    assert data["plugins"] == [
        {
            "name": "envs",
            "idx": "10",
            "full_name": "10-envs",
            "external": True,
            "events": "CreateContainer",
        }
    ]
    assert data["summary"] == {
        "steps": 7,
        "expectations": 10,
        "passed": 6,
        "failed": 4,
        "ok": False,
    }
    create = data["steps"][1]
    assert create["step"] == "create-container app" and create["where"] == "steps[1]"
    event = create["events"][0]
    assert event["container"] == "web-0/app"
    [(spec_id, specs)] = event["specs"].items()
    assert spec_id == event["container_id"]
    assert "FOO=bar" in specs["after"]["process"]["env"]
    assert "FOO=bar" not in specs["before"]["process"]["env"]
    assert '+      "FOO=bar"' in specs["diff"]
    assert data["connected"]["events"][0]["event"] == "UpdateContainers"


def test_rendering_of_evictions() -> None:
    record = EventRecord(
        "CreateContainer",
        container_id="c2",
        evicted=[("c0", "gone")],
        ignored_evictions=[("c1", "make room")],
    )
    lines = render_step(StepResult("create-container app", records=[record]), {"c1": "web/db"})
    assert ("    evicted c0: gone", "error") in lines
    assert ("    eviction of web/db asked (make room): ignored, as runtimes do", "note") in lines


def test_spec_diff_is_empty_for_equal_specs() -> None:
    assert spec_diff({"a": 1}, {"a": 1}, "x") == []
    assert spec_diff({"a": 1}, {"a": 2}, "x") == [
        "--- x (before)",
        "+++ x (after)",
        "@@ -1,3 +1,3 @@",
        " {",
        '-  "a": 1',
        '+  "a": 2',
        " }",
    ]


def test_spec_diff_compares_mounts_by_destination() -> None:
    proc = {"destination": "/proc", "type": "proc", "source": "proc"}
    dev = {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}
    logs = {"destination": "/logs", "type": "bind", "source": "/var/log"}
    # A mount inserted, and the mounts re-sorted by the runtime: /proc moves to the end.
    diff = spec_diff({"mounts": [proc, dev]}, {"mounts": [dev, logs, proc]}, "x")
    removed = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    assert removed == []
    assert '+    "/logs": {' in diff
    assert '+      "source": "/var/log",' in diff
    assert diff[-1] == "@@ mount order: /dev, /logs, /proc (before: /proc, /dev) @@"
    # Only an option changed: one changed line, no order line.
    ro = {**logs, "options": ["ro"]}
    diff = spec_diff({"mounts": [dev, logs]}, {"mounts": [dev, ro]}, "x")
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ['+      "options": [', '+        "ro"', "+      ],"]
    assert not diff[-1].startswith("@@ mount order")
    # The same destination twice: the list is diffed as it is.
    diff = spec_diff({"mounts": [dev]}, {"mounts": [dev, dev]}, "x")
    assert '+      "destination": "/dev",' in diff


LINES = [("[1] run-pod web  (steps[0])", "heading"), ("  ok    x", "pass"), ('  +  "a": 1', "diff")]


def test_plain_printer_and_colour_choice() -> None:
    stream = io.StringIO()
    Printer(stream).print(LINES)
    assert stream.getvalue() == '[1] run-pod web  (steps[0])\n  ok    x\n  +  "a": 1\n'
    assert use_color("never", stream) is False
    assert use_color("auto", stream) is False  # not a terminal
    assert use_color("always", stream) is (importlib.util.find_spec("rich") is not None)


def test_coloured_printer_shows_the_same_text() -> None:
    pytest.importorskip("rich")
    stream = io.StringIO()
    Printer(stream, color=True).print(LINES)
    coloured = stream.getvalue()
    assert "\x1b[32m" in coloured  # green for passes and added lines
    plain = re.sub(r"\x1b\[[0-9;]*m", "", coloured).splitlines()
    assert plain[0].startswith("[1] run-pod web  (steps[0]) ─")
    assert plain[1:] == ["  ok    x", '  +  "a": 1']
