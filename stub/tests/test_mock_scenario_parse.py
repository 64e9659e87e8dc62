"""Scenario files: parsing, the validator's error reports, and expectation checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nri.mock._checks import Check, resolve_pointer
from nri.mock._scenario import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    parse_step,
    parse_yaml,
)

SCENARIOS = Path(__file__).parent / "mock_scenarios"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(yaml.safe_load(text), "s.yaml")
    assert info.value.source == "s.yaml"
    assert str(info.value).splitlines() == [f"s.yaml: {p}" for p in info.value.problems]
    return info.value.problems


def test_full_scenario_is_parsed_with_defaults() -> None:
    scenario = load_scenario(SCENARIOS / "passing.yaml")
    assert scenario.name == "passing"
    assert scenario.description == "every expectation holds"
    web = scenario.pods["web"]
    assert (web.name, web.namespace, web.labels) == ("web-0", "prod", {"app": "web"})
    assert scenario.pods["old"].name == "old"  # the key is the default name
    nginx = scenario.containers["nginx"]
    assert nginx.pod == "web" and nginx.name == "nginx"
    assert nginx.env == {"A": "1"}
    assert nginx.mounts[0]["options"] == ["rbind", "ro"]
    assert nginx.resources == {
        "cpu": {"shares": 1024, "cpus": "0-1"},
        "memory": {"limit": 268435456},
    }
    assert scenario.existing_pods == ("old",)
    assert scenario.existing_containers == ("legacy",)
    steps = scenario.steps
    assert [s.action for s in steps][:3] == ["run-pod", "create-container", "sleep"]
    assert steps[2].seconds == 0.3
    assert steps[4].resources == {"cpu": {"shares": 512}}
    assert steps[4].target == "nginx"
    expect = steps[1].expect
    assert expect is not None
    assert expect.spec[0] == Check("/process/env", "contains", "FOO=bar", "steps[1].expect.spec[0]")
    assert expect.containers["legacy"][0].expected == 256
    assert expect.changed_by == {"Env:FOO": "envs"}


def test_every_problem_is_reported_with_its_path() -> None:
    problems = problems_of(
        """
pods:
  web: {labels: {tier: 1}, color: red}
containers:
  app: {pod: nowhere, env: [NOEQUALS]}
  ok: {pod: web, mounts: [{source: /x}], resources: {cpu: {share: 2}, memory: {limit: x}}}
existing: {pods: [web], containers: [ok, ghost]}
steps:
  - run-pod: web
  - create-container: app
  - create-container: ok
  - create-container: ok
    expect:
      spec:
        - {path: 3, equals: 1}
        - {path: /a, equals: 1, absent: true}
        - {path: /a~2, absent: true}
        - {path: /a, matches: "("}
      containers: {ghost: []}
      changed-by: {Envv: x}
      errors: typo
  - jump: web
  - {run-pod: web, stop-pod: web}
  - update-container: {container: ok}
  - sleep: -1
  - stop-pod: web
    expect: {spec: [{path: /x, absent: true}]}
"""
    )
    assert problems == [
        "pods.web.labels.tier: expected a string, got 1 (quote it)",
        "pods.web.color: unknown key (known keys: name, namespace, uid, labels, annotations, "
        "runtime_handler, netns, ips)",
        "containers.app.env[0]: expected NAME=VALUE, got 'NOEQUALS'",
        "containers.app.pod: unknown pod 'nowhere' (defined: web)",
        "containers.ok.mounts[0]: missing required key 'destination'",
        "containers.ok.resources.cpu.share: unknown key (known keys: shares, quota, period, "
        "realtimeRuntime, realtimePeriod, cpus, mems)",
        "containers.ok.resources.memory.limit: expected an integer, got str",
        "existing.containers[1]: unknown container 'ghost' (defined: app, ok)",
        "steps[3].expect.errors: unknown key (known keys: spec, containers, changed-by, error)",
        "steps[3].expect.spec[0].path: expected a JSON pointer string such as /process/env, got 3",
        "steps[3].expect.spec[1]: expected exactly one of equals, contains, matches, absent, "
        "got equals, absent",
        "steps[3].expect.spec[2].path: invalid JSON pointer '/a~2': '~' must be followed by 0 or 1",
        "steps[3].expect.spec[3].matches: invalid regular expression '(': "
        "missing ), unterminated subpattern at position 0",
        "steps[3].expect.containers.ghost: unknown container 'ghost' (defined: app, ok)",
        problems[14],  # the long list of field names is checked below
        "steps[4]: expected exactly one action (run-pod, update-pod, stop-pod, remove-pod, "
        "create-container, start-container, update-container, stop-container, "
        "remove-container, sleep) and optionally expect, got jump",
        "steps[5]: expected exactly one action (run-pod, update-pod, stop-pod, remove-pod, "
        "create-container, start-container, update-container, stop-container, "
        "remove-container, sleep) and optionally expect, got run-pod, stop-pod",
        "steps[6].update-container: missing required key 'resources'",
        "steps[7].sleep: expected a number of seconds >= 0, got -1",
        "steps[8].expect.spec: a stop-pod step has no container spec to check; "
        "use expect.containers",
    ]
    assert problems[14].startswith("steps[3].expect.changed-by.Envv: unknown field 'Envv' ")
    assert "Env, Args," in problems[14]


def test_profile_and_cdi_devices() -> None:
    scenario = parse_scenario(
        {
            "profile": "cri-o",
            "pods": {"p": None},
            "containers": {"c": {"pod": "p", "cdi_devices": ["vendor.com/gpu=0"]}},
        }
    )
    assert scenario.profile == "cri-o"
    assert scenario.containers["c"].cdi_devices == ["vendor.com/gpu=0"]
    assert parse_scenario({"pods": {"p": None}}).profile is None
    problems = problems_of("pods: {p: }\ncontainers: {c: {pod: p, cdi_devices: gpu}}\n")
    assert problems == ["containers.c.cdi_devices: expected a list, got 'gpu'"]


def test_existing_container_needs_its_pod_existing() -> None:
    problems = problems_of(
        "pods: {web: }\ncontainers: {app: {pod: web}}\nexisting: {containers: [app]}\n"
    )
    assert problems == [
        "existing.containers[0]: container 'app' is in pod 'web', which is not listed in "
        "existing.pods"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected a mapping with pods, containers, steps; got an empty file"),
        ("- a\n- b\n", "expected a mapping with pods, containers, steps; got a list"),
        ("steps: 3\n", "steps: expected a list, got 3"),
        (
            "stages: []\n",
            "stages: unknown key (known keys: name, description, profile, runtime, pods, "
            "containers, existing, steps)",
        ),
        (
            "profile: docker\n",
            "profile: unknown runtime profile 'docker' (known: containerd, cri-o)",
        ),
        ("profile: 1\n", "profile: expected a string, got 1 (quote it)"),
        (
            "pods: {web: }\nsteps: [{run-pod: db}]\n",
            "steps[0].run-pod: unknown pod 'db' (defined: web)",
        ),
        (
            "steps: [{start-container: x}]\n",
            "steps[0].start-container: unknown container 'x' (defined: none)",
        ),
        ("steps: [sleep]\n", "steps[0]: expected a mapping, got 'sleep'"),
        ("pods: {web: {uid: [1]}}\n", "pods.web.uid: expected a string, got a list"),
        (
            "pods: {w: }\ncontainers: {c: {pod: w, env: 3}}\n",
            "containers.c.env: expected a mapping of NAME: VALUE or a list of NAME=VALUE, got 3",
        ),
    ],
)
def test_single_problems(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {problem}"


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("pods:\n  web: {name: [web\nsteps: []\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3, column 6: invalid YAML: ")


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_yaml("pods: {}\nsteps: []\npods: {}\n", "dup.yaml")
    assert str(info.value) == "dup.yaml: line 3, column 1: invalid YAML: found duplicate key 'pods'"


def test_unhashable_keys_are_reported_not_raised() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_yaml("pods:\n  [web]: {}\n", "keys.yaml")
    assert str(info.value) == "keys.yaml: line 2, column 3: invalid YAML: found unhashable key"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "missing.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'missing.yaml'}: cannot read the scenario: No such file or directory"
    )


def test_parse_step_alone_without_reference_checks() -> None:
    step = parse_step({"update-pod": {"pod": "any", "resources": {"pids": {"limit": 5}}}}, "cli")
    assert (step.action, step.target, step.resources) == (
        "update-pod",
        "any",
        {"pids": {"limit": 5}},
    )
    assert step.describe() == "update-pod any"
    with pytest.raises(ScenarioError) as info:
        parse_step({"update-pod": {"pod": "any", "resources": {"cpu": {"shares": "x"}}}}, "cli")
    assert (
        str(info.value) == "cli: step.update-pod.resources.cpu.shares: expected an integer, got str"
    )


def test_resolve_pointer() -> None:
    spec = {"a/b": {"c~d": [10, {"e": None}]}, "": 1}
    assert resolve_pointer(spec, "") == (True, spec)
    assert resolve_pointer(spec, "/a~1b/c~0d/0") == (True, 10)
    assert resolve_pointer(spec, "/a~1b/c~0d/1/e") == (True, None)
    assert resolve_pointer(spec, "/") == (True, 1)
    assert resolve_pointer(spec, "/a~1b/c~0d/2") == (False, None)
    assert resolve_pointer(spec, "/a~1b/c~0d/-") == (False, None)
    assert resolve_pointer(spec, "/a~1b/c~0d/0/x") == (False, None)
    assert resolve_pointer(spec, "a~1b") == (False, None)  # not a pointer


SPEC = {
    "process": {"env": ["A=1", "B=2"], "args": ["sleep", "inf"], "terminal": False},
    "mounts": [{"destination": "/data", "type": "bind", "options": ["ro"]}],
    "linux": {"resources": {"cpu": {"shares": 1, "cpus": "0-1"}}},
}


@pytest.mark.parametrize(
    ("path", "operator", "expected", "failure"),
    [
        ("/process/env", "contains", "A=1", None),
        ("/process/env", "contains", "A=", 'it is ["A=1", "B=2"]'),
        ("/process/args/0", "contains", "lee", None),
        ("/process/args", "equals", ["sleep", "inf"], None),
        ("/process/args", "equals", ["sleep"], 'it is ["sleep", "inf"]'),
        ("/mounts", "contains", {"destination": "/data"}, None),
        (
            "/mounts",
            "contains",
            {"destination": "/data", "type": "tmpfs"},
            'it is [{"destination": "/data", "options": ["ro"], "type": "bind"}]',
        ),
        ("/mounts/0", "contains", {"options": ["ro"]}, None),
        ("/linux/resources/cpu/shares", "equals", 1, None),
        ("/linux/resources/cpu/shares", "equals", True, "it is 1"),
        ("/process/terminal", "equals", 0, "it is false"),
        ("/linux/resources/cpu/cpus", "matches", r"^\d-\d$", None),
        ("/linux/resources/cpu/shares", "matches", "1", "it is not a string but 1"),
        ("/linux/resources/memory", "absent", True, None),
        ("/linux/resources/cpu", "absent", True, 'it is {"cpus": "0-1", "shares": 1}'),
        ("/linux/resources/cpu", "absent", False, None),
        ("/linux/resources/memory", "absent", False, "it is missing"),
        ("/linux/resources/memory/limit", "equals", 1, "it is missing"),
        ("/linux/resources/cpu/shares", "contains", 1, "it is 1"),
    ],
)
def test_check_failure(path: str, operator: str, expected: object, failure: str | None) -> None:
    assert Check(path, operator, expected).failure(SPEC) == failure


def test_check_descriptions() -> None:
    assert Check("/a", "contains", "x=1").describe() == '/a contains "x=1"'
    assert Check("/a", "absent", True).describe() == "/a is absent"
    assert Check("/a", "absent", False).describe() == "/a is present"
    assert Check("/a", "equals", {"b": [1]}).describe() == '/a equals {"b": [1]}'
