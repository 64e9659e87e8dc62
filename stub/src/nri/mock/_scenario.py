"""Scenario files: pods, containers and lifecycle steps to play through the mock runtime.

A scenario is a YAML document::

    name: demo                          # optional; defaults to the file name
    description: what it shows          # optional
    profile: cri-o                      # optional: behave as containerd (default) or cri-o
    runtime:                            # optional adaptation settings (flags override them)
      timeout-policy: skip              # close (default), skip or fail
      max-consecutive-timeouts: 3       # skip/fail: close a plugin after this many in a row
      plugins:                          # per plugin (NN-name or name)
        10-slow: {request-timeout: 0.5, registration-timeout: 5, timeout-policy: fail}
      required-plugins: [ulimit-adjuster]  # CreateContainer fails while one is missing
      replace-plugins: true             # a plugin re-registering takes over its name
      per-pod-concurrency: true         # events of different pods run concurrently
      shutdown-plugins: true            # send Shutdown to plugins when the runtime stops
      shutdown-timeout: 1               # seconds each plugin has to answer Shutdown
      restart-plugins: true             # relaunch pre-installed plugins that exit
    pods:                               # pod definitions, by key
      web:
        name: web-0                     # default: the key
        namespace: default              # default: default
        uid: 5f0c...                    # default: generated
        labels: {app: web}
        annotations: {example.com/x: "1"}
        runtime_handler: runc
        netns: /var/run/netns/cni-1     # network namespace path; default: host network
        ips: [10.244.1.22]              # the pod's IPs
    containers:                         # container definitions, by key
      nginx:
        pod: web                        # key of its pod (required)
        name: nginx                     # default: the key
        args: [nginx, -g, daemon off;]
        env: {A: "1"}                   # or a list: ["A=1"]
        mounts: [{destination: /data, source: /srv, type: bind, options: [rbind, ro]}]
        annotations: {}
        labels: {}
        resources:                      # OCI linux.resources
          cpu: {shares: 1024, quota: 100000, period: 100000, cpus: "0-1"}
          memory: {limit: 268435456}
        cdi_devices: [vendor.com/gpu=0] # CDI devices asked for (containerd passes the names)
    existing:                           # present before plugins connect (seen in Synchronize)
      pods: [db]                        # (defined like web and nginx above)
      containers: [postgres]
    steps:                              # played in order, one action per step
      - run-pod: web
      - create-container: nginx
        expect:
          spec:                         # checks on this step's container spec
            - {path: /process/env, contains: "FOO=bar"}
            - {path: /linux/resources/cpu/cpus, equals: "0-1"}
            - {path: /annotations/foo.bar~1x, absent: true}
          containers:                   # checks on other containers' specs, by key
            other: [{path: /process/args/0, matches: "^sleep"}]
          changed-by: {Env:FOO: 10-logger}   # field[:key] -> plugin that set it
          error: conflict               # the step must fail with an error containing this
      - start-container: nginx
      - update-container: {container: nginx, resources: {cpu: {shares: 512}}}
      - update-pod: {pod: web, resources: {cpu: {shares: 2048}}}
      - stop-container: nginx
      - remove-container: nginx
      - stop-pod: web
      - remove-pod: web
      - sleep: 0.2                      # let unsolicited updates arrive

Checks address the OCI spec with JSON pointers (RFC 6901: ``~1`` is ``/``, ``~0`` is ``~``)
and take exactly one of ``equals`` (any value), ``contains`` (substring of a string, item
of a list, or subset of a mapping; a mapping also matches a list item that contains it),
``matches`` (regular expression searched in a string) or ``absent`` (``true``: the path
does not exist, ``false``: it does). ``changed-by`` keys are upstream's field names
(``Env``, ``Mounts``, ``CPUShares``, ...), optionally with the entry (``Env:FOO``); a plugin
is given as ``NN-name`` or ``name``.

:func:`load_scenario` reads and checks a file; every problem is collected and reported in
one :class:`ScenarioError`, each as ``FILE: steps[3].expect.spec[0].path: expected ...``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from nri.api import api_pb2 as pb
from nri.mock._checks import CHECK_OPERATORS, Check
from nri.mock._profiles import PROFILES
from nri.mock._settings import RuntimeSettings, parse_runtime_section
from nri.oci import SpecError, linux_resources_from_oci

__all__ = [
    "ACTIONS",
    "ContainerDef",
    "Expectation",
    "PodDef",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_scenario",
    "parse_scenario",
    "parse_step",
    "parse_yaml",
]

POD_ACTIONS: Final = ("run-pod", "update-pod", "stop-pod", "remove-pod")
CONTAINER_ACTIONS: Final = (
    "create-container",
    "start-container",
    "update-container",
    "stop-container",
    "remove-container",
)
ACTIONS: Final = (*POD_ACTIONS, *CONTAINER_ACTIONS, "sleep")
"""Every step action, in lifecycle order."""

_FIELD_NAMES: Final = tuple(name for name in pb.Field.DESCRIPTOR.values_by_name if name != "None")

_RESOURCE_KEYS: Final = {
    "": (
        "cpu",
        "memory",
        "pids",
        "hugepageLimits",
        "devices",
        "unified",
        "blockIO",
        "network",
        "rdma",
    ),
    "cpu": ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"),
    "memory": (
        "limit",
        "reservation",
        "swap",
        "kernel",
        "kernelTCP",
        "swappiness",
        "disableOOMKiller",
        "useHierarchy",
        "checkBeforeUpdate",
    ),
    "pids": ("limit",),
}


class ScenarioError(ValueError):
    """A scenario file is invalid; ``problems`` lists every ``path: what was expected``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


@dataclasses.dataclass(frozen=True)
class PodDef:
    """A pod as the scenario defines it (``key`` is how steps refer to it)."""

    key: str
    name: str
    namespace: str = "default"
    uid: str | None = None
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    runtime_handler: str = ""
    netns: str = ""
    ips: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ContainerDef:
    """A container as the scenario defines it; ``pod`` is the key of its pod."""

    key: str
    pod: str
    name: str
    args: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] | list[str] = dataclasses.field(default_factory=dict)
    mounts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    resources: dict[str, Any] | None = None
    cdi_devices: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Expectation:
    """What a step must produce; every part is optional."""

    spec: tuple[Check, ...] = ()
    containers: dict[str, tuple[Check, ...]] = dataclasses.field(default_factory=dict)
    changed_by: dict[str, str] = dataclasses.field(default_factory=dict)
    """``Field`` or ``Field:key`` -> plugin (``NN-name`` or ``name``)."""
    error: str | None = None
    """Text the step's error must contain; the step must fail."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One lifecycle action of a scenario."""

    action: str
    """One of :data:`ACTIONS`."""
    target: str | None = None
    """Key (or runtime ID or name) of the pod or container; None for ``sleep``."""
    resources: dict[str, Any] | None = None
    """New OCI ``linux.resources`` of ``update-pod`` and ``update-container``."""
    seconds: float = 0.0
    """How long ``sleep`` waits."""
    expect: Expectation | None = None
    where: str = ""
    """Where the step is written, e.g. ``steps[3]``."""

    def describe(self) -> str:
        """The step in words, e.g. ``create-container nginx``."""
        if self.action == "sleep":
            return f"sleep {self.seconds:g}s"
        return f"{self.action} {self.target}"

    @property
    def container_step(self) -> bool:
        """Whether the step acts on a container (and so has a spec to check)."""
        return self.action in CONTAINER_ACTIONS


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A parsed, checked scenario."""

    name: str
    source: str
    description: str = ""
    profile: str | None = None
    """The runtime profile the scenario is written for (``containerd``, ``cri-o``), if any."""
    settings: RuntimeSettings = dataclasses.field(default_factory=RuntimeSettings)
    """The adaptation settings of its ``runtime`` section."""
    pods: dict[str, PodDef] = dataclasses.field(default_factory=dict)
    containers: dict[str, ContainerDef] = dataclasses.field(default_factory=dict)
    existing_pods: tuple[str, ...] = ()
    existing_containers: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()


# -- validation ----------------------------------------------------------------------------


class _Problems(list[str]):
    def add(self, at: str, message: str) -> None:
        self.append(f"{at}: {message}" if at else message)


def _got(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{value!r}"


def _string(value: Any, at: str, problems: _Problems) -> str | None:
    if isinstance(value, str):
        return value
    hint = " (quote it)" if isinstance(value, bool | int | float) else ""
    problems.add(at, f"expected a string, got {_got(value)}{hint}")
    return None


def _number(value: Any, at: str, problems: _Problems) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    problems.add(at, f"expected a number of seconds >= 0, got {_got(value)}")
    return None


def _mapping(value: Any, at: str, problems: _Problems) -> dict[Any, Any] | None:
    if isinstance(value, Mapping):
        return dict(value)
    problems.add(at, f"expected a mapping, got {_got(value)}")
    return None


def _list(value: Any, at: str, problems: _Problems) -> list[Any] | None:
    if isinstance(value, list):
        return value
    problems.add(at, f"expected a list, got {_got(value)}")
    return None


def _string_map(value: Any, at: str, problems: _Problems) -> dict[str, str] | None:
    raw = _mapping(value, at, problems)
    if raw is None:
        return None
    out = {}
    for key, item in raw.items():
        text = _string(item, f"{at}.{key}", problems)
        if text is not None:
            out[str(key)] = text
    return out


def _string_list(value: Any, at: str, problems: _Problems) -> list[str] | None:
    raw = _list(value, at, problems)
    if raw is None:
        return None
    out = [_string(item, f"{at}[{i}]", problems) for i, item in enumerate(raw)]
    return [text for text in out if text is not None]


def _env(value: Any, at: str, problems: _Problems) -> dict[str, str] | list[str] | None:
    if isinstance(value, list):
        entries = _string_list(value, at, problems)
        for i, entry in enumerate(entries or []):
            if "=" not in entry:
                problems.add(f"{at}[{i}]", f"expected NAME=VALUE, got {entry!r}")
        return entries
    if isinstance(value, Mapping):
        return _string_map(value, at, problems)
    problems.add(
        at, f"expected a mapping of NAME: VALUE or a list of NAME=VALUE, got {_got(value)}"
    )
    return None


def _mounts(value: Any, at: str, problems: _Problems) -> list[dict[str, Any]] | None:
    raw = _list(value, at, problems)
    if raw is None:
        return None
    out = []
    for i, item in enumerate(raw):
        fields = _fields(item, f"{at}[{i}]", _MOUNT_SCHEMA, problems, required=("destination",))
        if fields is not None:
            out.append(fields)
    return out


def _resources(value: Any, at: str, problems: _Problems) -> dict[str, Any] | None:
    raw = _mapping(value, at, problems)
    if raw is None:
        return None
    ok = True
    for section, known in _RESOURCE_KEYS.items():
        part = raw.get(section) if section else raw
        if not isinstance(part, Mapping):
            continue
        for key in part:
            if key not in known:
                problems.add(
                    f"{at}.{section}.{key}" if section else f"{at}.{key}",
                    f"unknown key (known keys: {', '.join(known)})",
                )
                ok = False
    try:
        linux_resources_from_oci(raw, at)
    except SpecError as exc:
        problems.append(str(exc))
        return None
    return raw if ok else None


def _pointer(value: Any, at: str, problems: _Problems) -> str | None:
    if not isinstance(value, str) or (value and not value.startswith("/")):
        problems.add(at, f"expected a JSON pointer string such as /process/env, got {_got(value)}")
        return None
    if re.search(r"~(?![01])", value):
        problems.add(at, f"invalid JSON pointer {value!r}: '~' must be followed by 0 or 1")
        return None
    return value


def _boolean(value: Any, at: str, problems: _Problems) -> bool | None:
    if isinstance(value, bool):
        return value
    problems.add(at, f"expected true or false, got {_got(value)}")
    return None


def _regex(value: Any, at: str, problems: _Problems) -> str | None:
    text = _string(value, at, problems)
    if text is None:
        return None
    try:
        re.compile(text)
    except re.error as exc:
        problems.add(at, f"invalid regular expression {text!r}: {exc}")
        return None
    return text


def _anything(value: Any, at: str, problems: _Problems) -> Any:
    return value


_Parser = Callable[[Any, str, _Problems], Any]

_MOUNT_SCHEMA: Final[dict[str, _Parser]] = {
    "destination": _string,
    "source": _string,
    "type": _string,
    "options": _string_list,
}
_POD_SCHEMA: Final[dict[str, _Parser]] = {
    "name": _string,
    "namespace": _string,
    "uid": _string,
    "labels": _string_map,
    "annotations": _string_map,
    "runtime_handler": _string,
    "netns": _string,
    "ips": _string_list,
}
_CONTAINER_SCHEMA: Final[dict[str, _Parser]] = {
    "pod": _string,
    "name": _string,
    "args": _string_list,
    "env": _env,
    "mounts": _mounts,
    "annotations": _string_map,
    "labels": _string_map,
    "resources": _resources,
    "cdi_devices": _string_list,
}
_CHECK_SCHEMA: Final[dict[str, _Parser]] = {
    "path": _pointer,
    "equals": _anything,
    "contains": _anything,
    "matches": _regex,
    "absent": _boolean,
}


def _fields(
    value: Any,
    at: str,
    schema: Mapping[str, _Parser],
    problems: _Problems,
    required: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Check a mapping against ``schema``; ``a-b`` is accepted for the key ``a_b``."""
    raw = _mapping(value, at, problems)
    if raw is None:
        return None
    out: dict[str, Any] = {}
    before = len(problems)
    for key, item in raw.items():
        name = str(key).replace("-", "_")
        parser = schema.get(name)
        if parser is None:
            known = ", ".join(schema)
            problems.add(f"{at}.{key}", f"unknown key (known keys: {known})")
            continue
        parsed = parser(item, f"{at}.{key}", problems)
        if parsed is not None:
            out[name] = parsed
    for name in required:
        if name not in raw:
            problems.add(at, f"missing required key {name!r}")
    return out if len(problems) == before else None


def _check(value: Any, at: str, problems: _Problems) -> Check | None:
    fields = _fields(value, at, _CHECK_SCHEMA, problems, required=("path",))
    if fields is None:
        return None
    operators = [op for op in CHECK_OPERATORS if op in fields]
    if len(operators) != 1:
        problems.add(
            at,
            f"expected exactly one of {', '.join(CHECK_OPERATORS)}, got "
            + (", ".join(operators) if operators else "none"),
        )
        return None
    return Check(fields["path"], operators[0], fields[operators[0]], at)


def _checks(value: Any, at: str, problems: _Problems) -> tuple[Check, ...]:
    raw = _list(value, at, problems) or []
    checks = [_check(item, f"{at}[{i}]", problems) for i, item in enumerate(raw)]
    return tuple(check for check in checks if check is not None)


def _changed_by(value: Any, at: str, problems: _Problems) -> dict[str, str]:
    owners = _string_map(value, at, problems) or {}
    for key in owners:
        field = key.partition(":")[0]
        if field not in _FIELD_NAMES:
            known = ", ".join(_FIELD_NAMES)
            problems.add(f"{at}.{key}", f"unknown field {field!r} (expected one of: {known})")
    return owners


def _expectation(
    value: Any, at: str, step_action: str, containers: Mapping[str, Any] | None, problems: _Problems
) -> Expectation | None:
    raw = _mapping(value, at, problems)
    if raw is None:
        return None
    known = ("spec", "containers", "changed-by", "error")
    for key in raw:
        if key not in known:
            problems.add(f"{at}.{key}", f"unknown key (known keys: {', '.join(known)})")
    spec = _checks(raw["spec"], f"{at}.spec", problems) if "spec" in raw else ()
    if spec and step_action not in CONTAINER_ACTIONS:
        problems.add(
            f"{at}.spec",
            f"a {step_action} step has no container spec to check; use expect.containers",
        )
    others: dict[str, tuple[Check, ...]] = {}
    raw_others = _mapping(raw.get("containers", {}), f"{at}.containers", problems) or {}
    for key, checks in raw_others.items():
        where = f"{at}.containers.{key}"
        if containers is not None and key not in containers:
            problems.add(where, f"unknown container {key!r} (defined: {_names(containers)})")
        others[str(key)] = _checks(checks, where, problems)
    changed_by = _changed_by(raw.get("changed-by", {}), f"{at}.changed-by", problems)
    error = _string(raw["error"], f"{at}.error", problems) if "error" in raw else None
    return Expectation(spec, others, changed_by, error)


def _names(table: Mapping[str, Any]) -> str:
    return ", ".join(table) or "none"


def parse_step(
    value: Any,
    source: str,
    at: str = "step",
    *,
    pods: Mapping[str, Any] | None = None,
    containers: Mapping[str, Any] | None = None,
) -> Step:
    """Parse one step (a mapping such as ``{run-pod: web}``); ScenarioError if invalid.

    With ``pods``/``containers`` given, the step's target must be one of their keys.
    """
    problems = _Problems()
    step = _parse_step(value, at, problems, pods, containers)
    if step is None:
        raise ScenarioError(source, problems)
    return step


def _parse_step(
    value: Any,
    at: str,
    problems: _Problems,
    pods: Mapping[str, Any] | None,
    containers: Mapping[str, Any] | None,
) -> Step | None:
    raw = _mapping(value, at, problems)
    if raw is None:
        return None
    actions = [key for key in raw if key != "expect"]
    if len(actions) != 1 or actions[0] not in ACTIONS:
        problems.add(
            at,
            f"expected exactly one action ({', '.join(ACTIONS)}) and optionally expect, got "
            + (", ".join(map(str, actions)) or "none"),
        )
        return None
    return _step(raw, actions[0], at, problems, pods=pods, containers=containers)


def _step(
    raw: dict[Any, Any],
    action: str,
    at: str,
    problems: _Problems,
    *,
    pods: Mapping[str, Any] | None,
    containers: Mapping[str, Any] | None,
) -> Step | None:
    where = f"{at}.{action}"
    argument = raw[action]
    before = len(problems)
    target: str | None = None
    resources = None
    seconds = 0.0
    if action == "sleep":
        seconds = _number(argument, where, problems) or 0.0
    else:
        kind, table = ("pod", pods) if action in POD_ACTIONS else ("container", containers)
        if action.startswith("update-"):
            fields = _fields(
                argument,
                where,
                {kind: _string, "resources": _resources},
                problems,
                required=(kind, "resources"),
            )
            if fields is not None:
                target, resources = fields[kind], fields["resources"]
        else:
            target = _string(argument, where, problems)
        if target is not None and table is not None and target not in table:
            problems.add(where, f"unknown {kind} {target!r} (defined: {_names(table)})")
    expect = (
        _expectation(raw["expect"], f"{at}.expect", action, containers, problems)
        if "expect" in raw
        else None
    )
    if len(problems) != before:
        return None
    return Step(action, target, resources, seconds, expect, at)


def _pod(key: str, value: Any, at: str, problems: _Problems) -> PodDef | None:
    fields = _fields({} if value is None else value, at, _POD_SCHEMA, problems)
    if fields is None:
        return None
    return PodDef(key=key, **{"name": key, **fields})


def _container(
    key: str, value: Any, at: str, pods: Mapping[str, Any], problems: _Problems
) -> ContainerDef | None:
    fields = _fields(value, at, _CONTAINER_SCHEMA, problems, required=("pod",))
    pod = value.get("pod") if isinstance(value, Mapping) else None
    if isinstance(pod, str) and pod not in pods:
        problems.add(f"{at}.pod", f"unknown pod {pod!r} (defined: {_names(pods)})")
        return None
    if fields is None:
        return None
    return ContainerDef(key=key, **{"name": key, **fields})


_TOP_LEVEL: Final = (
    "name",
    "description",
    "profile",
    "runtime",
    "pods",
    "containers",
    "existing",
    "steps",
)


def parse_scenario(document: Any, source: str = "<scenario>") -> Scenario:
    """Check a parsed YAML document and build the :class:`Scenario`.

    Raises :class:`ScenarioError` listing every problem found.
    """
    problems = _Problems()
    if not isinstance(document, Mapping):
        got = "an empty file" if document is None else _got(document)
        raise ScenarioError(source, [f"expected a mapping with pods, containers, steps; got {got}"])
    raw = dict(document)
    for key in raw:
        if key not in _TOP_LEVEL:
            problems.add(str(key), f"unknown key (known keys: {', '.join(_TOP_LEVEL)})")
    name = _string(raw.get("name", Path(source).stem), "name", problems) or ""
    description = _string(raw.get("description", ""), "description", problems) or ""
    profile = _string(raw.get("profile"), "profile", problems) if "profile" in raw else None
    if profile is not None and profile not in PROFILES:
        problems.add(
            "profile", f"unknown runtime profile {profile!r} (known: {', '.join(PROFILES)})"
        )
    settings, setting_problems = parse_runtime_section(raw.get("runtime"))
    problems.extend(setting_problems)

    raw_pods = _mapping(raw.get("pods") or {}, "pods", problems) or {}
    raw_containers = _mapping(raw.get("containers") or {}, "containers", problems) or {}
    pods: dict[str, PodDef] = {}
    for key, value in raw_pods.items():
        pod = _pod(str(key), value, f"pods.{key}", problems)
        if pod is not None:
            pods[pod.key] = pod
    containers: dict[str, ContainerDef] = {}
    for key, value in raw_containers.items():
        ctr = _container(str(key), value, f"containers.{key}", raw_pods, problems)
        if ctr is not None:
            containers[ctr.key] = ctr
    # References are checked against every defined key, valid or not, so that one broken
    # definition is reported once rather than at every step that uses it.
    existing_pods, existing_containers = _existing(
        raw.get("existing") or {}, raw_pods, raw_containers, containers, problems
    )
    steps = []
    for i, value in enumerate(_list(raw.get("steps", []), "steps", problems) or []):
        step = _parse_step(value, f"steps[{i}]", problems, raw_pods, raw_containers)
        if step is not None:
            steps.append(step)
    if problems:
        raise ScenarioError(source, problems)
    return Scenario(
        name=name,
        source=source,
        description=description,
        profile=profile,
        settings=settings,
        pods=pods,
        containers=containers,
        existing_pods=existing_pods,
        existing_containers=existing_containers,
        steps=tuple(steps),
    )


def _existing(
    value: Any,
    pods: Mapping[str, Any],
    raw_containers: Mapping[str, Any],
    containers: Mapping[str, ContainerDef],
    problems: _Problems,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    raw = _fields(value, "existing", {"pods": _string_list, "containers": _string_list}, problems)
    if raw is None:
        return (), ()
    pod_keys = tuple(raw.get("pods", []))
    ctr_keys = tuple(raw.get("containers", []))
    for i, key in enumerate(pod_keys):
        if key not in pods:
            problems.add(f"existing.pods[{i}]", f"unknown pod {key!r} (defined: {_names(pods)})")
    for i, key in enumerate(ctr_keys):
        at = f"existing.containers[{i}]"
        if key not in raw_containers:
            problems.add(at, f"unknown container {key!r} (defined: {_names(raw_containers)})")
        elif key in containers and containers[key].pod not in pod_keys:
            problems.add(
                at,
                f"container {key!r} is in pod {containers[key].pod!r}, "
                "which is not listed in existing.pods",
            )
    return pod_keys, ctr_keys


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base class reports it, with its place in the file
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; syntax errors raise :class:`ScenarioError` with line and column."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(source, [f"{where}invalid YAML: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [f"invalid YAML: {exc}"]) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; :class:`ScenarioError` lists every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(source, [f"cannot read the scenario: {reason}"]) from exc
    return parse_scenario(parse_yaml(text, source), source)
