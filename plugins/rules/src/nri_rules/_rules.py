"""The rules file: parsing and load-time validation.

A rules file is a YAML mapping with one key, ``rules``: an ordered list of rules, each with
a ``name``, an optional ``match`` (every condition given must hold; none matches every
container), and what to do: ``adjust`` (at CreateContainer) and/or ``update`` (resources at
UpdateContainer). Keys are checked strictly; every error is one line naming the file, the
rule (index and name) and the field, e.g.
``rules.yaml: rule #2 (gpu): adjust.env.FOO: expected a string, got a boolean (quote it)``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nri_device_injector import AnnotationError, DeviceEntry, MountEntry
from nri_device_injector import parse_devices as _parse_devices
from nri_device_injector import parse_mounts as _parse_mounts
from nri_ulimit_adjuster import Ulimit, normalize_type

from nri.api import HOOK_KINDS, make_hook, pb
from nri.decode import DecodeError, describe, load_yaml
from nri_rules._fields import (
    _INT64,
    _UINT64,
    _absolute,
    _bytes,
    _check_keys,
    _id_list,
    _integer,
    _list,
    _mapping,
    _name_list,
    _Problem,
    _string,
    _string_list,
    _string_map,
)
from nri_rules._linux import LINUX_KEYS, LinuxSettings, parse_linux
from nri_rules._match import (
    QOS_CLASSES,
    ContainerFacts,
    KeyMatcher,
    Pattern,
    PatternError,
    disjoint_patterns,
)

__all__ = [
    "MAX_RULES",
    "Match",
    "ResourceSettings",
    "Rule",
    "RuleActions",
    "RuleSet",
    "RulesError",
    "read_rules",
]

MAX_RULES = 500
"""Most rules a file may hold (every pair of rules is checked for conflicts at load time)."""

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")
_CDI_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9._-]*=[A-Za-z0-9_.:-]+")
_HOOK_STAGES = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}
assert set(_HOOK_STAGES.values()) == set(HOOK_KINDS)


class RulesError(ValueError):
    """An invalid rules file: one line naming the file, the rule and the field."""

    def __init__(
        self, source: str, problem: str, rule: str | None = None, where: str | None = None
    ) -> None:
        self.source = source
        self.rule = rule
        self.where = where
        self.problem = problem
        parts = [source, *(p for p in (rule, where) if p), problem]
        super().__init__(": ".join(parts))


# -- matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A rule's conditions; every condition given must hold."""

    namespace: tuple[Pattern, ...] | None = None
    pod: tuple[Pattern, ...] | None = None
    container: tuple[Pattern, ...] | None = None
    image: tuple[Pattern, ...] | None = None
    runtime_handler: tuple[Pattern, ...] | None = None
    qos_class: frozenset[str] | None = None
    pod_labels: tuple[KeyMatcher, ...] = ()
    pod_annotations: tuple[KeyMatcher, ...] = ()
    container_labels: tuple[KeyMatcher, ...] = ()
    container_annotations: tuple[KeyMatcher, ...] = ()

    _NAMES = (
        ("namespace", "namespace"),
        ("pod", "pod"),
        ("container", "container"),
        ("image", "image"),
        ("runtime_handler", "runtimeHandler"),
    )
    _KEYS = (
        ("pod_labels", "podLabels"),
        ("pod_annotations", "podAnnotations"),
        ("container_labels", "containerLabels"),
        ("container_annotations", "containerAnnotations"),
    )

    @property
    def matches_all(self) -> bool:
        """Whether the rule has no condition at all."""
        return not self._names and self.qos_class is None and not self._keys

    @functools.cached_property
    def _names(self) -> dict[str, tuple[Pattern, ...]]:
        return {a: getattr(self, a) for a, _ in self._NAMES if getattr(self, a) is not None}

    @functools.cached_property
    def _keys(self) -> dict[tuple[str, str], list[KeyMatcher]]:
        found: dict[tuple[str, str], list[KeyMatcher]] = {}
        for attr, _ in self._KEYS:
            for matcher in getattr(self, attr):
                found.setdefault((attr, matcher.key), []).append(matcher)
        return found

    def mismatch(self, facts: ContainerFacts) -> str | None:
        """None if ``facts`` (a ContainerFacts) match, else the first failed condition."""
        for attr, key in self._NAMES:
            patterns: tuple[Pattern, ...] | None = getattr(self, attr)
            if patterns is None:
                continue
            value = getattr(facts, attr)
            if not any(p.matches(value) for p in patterns):
                wanted = ", ".join(map(str, patterns))
                return f"{key} {value!r} does not match {wanted}"
        if self.qos_class is not None and facts.qos_class not in self.qos_class:
            wanted = ", ".join(sorted(self.qos_class))
            return f"qosClass {facts.qos_class or 'unknown'} is not {wanted}"
        for attr, key in self._KEYS:
            values = getattr(facts, attr)
            for matcher in getattr(self, attr):
                if not matcher.matches(values):
                    return f"{key}: not {matcher.describe()}"
        return None

    def disjoint(self, other: Match) -> bool:
        """Whether no container can match both (as far as can be told without one)."""
        theirs_names = other._names
        for attr, mine in self._names.items():
            theirs = theirs_names.get(attr)
            if theirs is not None and disjoint_patterns(mine, theirs):
                return True
        qos, other_qos = self.qos_class, other.qos_class
        if qos is not None and other_qos is not None and not qos & other_qos:
            return True
        theirs_keys = other._keys
        for where, matchers in self._keys.items():
            for theirs_key in theirs_keys.get(where, ()):
                if any(mine_key.disjoint(theirs_key) for mine_key in matchers):
                    return True
        return False


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceSettings:
    """CPU and memory settings, as calls of the shared Adjustment/Update resource setters."""

    calls: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def apply(self, builder: Any) -> None:
        """Call the setters on an :class:`~nri.api.Adjustment` or :class:`~nri.api.Update`."""
        for setter, args in self.calls:
            getattr(builder, setter)(*args)

    def __bool__(self) -> bool:
        return bool(self.calls)


@dataclass(frozen=True)
class RuleActions:
    """What a rule does to a container being created."""

    env: tuple[tuple[str, str], ...] = ()
    remove_env: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    remove_annotations: tuple[str, ...] = ()
    mounts: tuple[MountEntry, ...] = ()
    remove_mounts: tuple[str, ...] = ()
    devices: tuple[DeviceEntry, ...] = ()
    remove_devices: tuple[str, ...] = ()
    cdi_devices: tuple[str, ...] = ()
    rlimits: tuple[Ulimit, ...] = ()
    hooks: pb.Hooks | None = field(default=None, compare=False)
    oom_score_adj: int | None = None
    sysctls: tuple[tuple[str, str], ...] = ()
    remove_sysctls: tuple[str, ...] = ()
    resources: ResourceSettings = ResourceSettings()
    linux: LinuxSettings = field(default_factory=LinuxSettings)
    """Command line, scheduler, I/O priority, memory policy, namespaces, network devices,
    seccomp policy and Intel RDT."""


@dataclass(frozen=True)
class Rule:
    """One rule of a rules file."""

    index: int
    name: str
    match: Match
    adjust: RuleActions | None = None
    update: ResourceSettings | None = None

    @property
    def label(self) -> str:
        """How messages name the rule: ``rule #2 (gpu)``."""
        return f"rule #{self.index} ({self.name})"


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in order, with what load-time checks found."""

    rules: tuple[Rule, ...] = ()
    source: str = "rules"
    warnings: tuple[str, ...] = ()
    """Possible conflicts: rules that set the same field and might match one container."""


# -- match ----------------------------------------------------------------------------------


def _patterns(value: Any, where: str) -> tuple[Pattern, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _Problem(where, "empty list (it would match nothing)")
    patterns = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]" if isinstance(value, list) else where
        if isinstance(item, dict):
            _check_keys(item, at, ("glob", "regex"))
            if len(item) != 1:
                raise _Problem(at, "expected exactly one of glob, regex")
            kind, text = next(iter(item.items()))
            text = _string(text, f"{at}.{kind}")
            try:
                patterns.append(Pattern.re(text) if kind == "regex" else Pattern.glob(text))
            except PatternError as exc:
                raise _Problem(f"{at}.{kind}", str(exc)) from None
        else:
            patterns.append(Pattern.glob(_string(item, at, numbers=True)))
    return tuple(patterns)


def _key_matchers(value: Any, where: str) -> tuple[KeyMatcher, ...]:
    matchers = []
    for key, condition in _mapping(value, where, "key: condition").items():
        at = f"{where}.{key}"
        if not isinstance(condition, dict):
            matchers.append(KeyMatcher(key, equals=_string(condition, at, numbers=True)))
            continue
        _check_keys(condition, at, ("exists", "equals", "regex"))
        if len(condition) != 1:
            raise _Problem(at, "expected exactly one of exists, equals, regex")
        kind, arg = next(iter(condition.items()))
        if kind == "exists":
            if not isinstance(arg, bool):
                raise _Problem(f"{at}.exists", f"expected true or false, got {describe(arg)}")
            matchers.append(KeyMatcher(key, exists=arg))
        elif kind == "equals":
            matchers.append(KeyMatcher(key, equals=_string(arg, f"{at}.equals", numbers=True)))
        else:
            try:
                pattern = Pattern.re(_string(arg, f"{at}.regex"))
            except PatternError as exc:
                raise _Problem(f"{at}.regex", str(exc)) from None
            matchers.append(KeyMatcher(key, regex=pattern))
    return tuple(matchers)


def _match(value: Any) -> Match:
    if value is None:
        return Match()
    spec = _mapping(value, "match", "conditions")
    names = dict(Match._NAMES)
    keys = dict(Match._KEYS)
    _check_keys(spec, "match", [*names.values(), "qosClass", *keys.values()])
    fields: dict[str, Any] = {}
    for attr, key in names.items():
        if key in spec:
            fields[attr] = _patterns(spec[key], f"match.{key}")
    if "qosClass" in spec:
        raw = spec["qosClass"]
        classes = raw if isinstance(raw, list) else [raw]
        for i, qos in enumerate(classes):
            at = f"match.qosClass[{i}]" if isinstance(raw, list) else "match.qosClass"
            if qos not in QOS_CLASSES:
                raise _Problem(at, f"expected one of {', '.join(QOS_CLASSES)}, got {qos!r}")
        if not classes:
            raise _Problem("match.qosClass", "empty list (it would match nothing)")
        fields["qos_class"] = frozenset(classes)
    for attr, key in keys.items():
        if key in spec:
            fields[attr] = _key_matchers(spec[key], f"match.{key}")
    return Match(**fields)


# -- adjust ---------------------------------------------------------------------------------

_DEVICE_KEYS = ("path", "type", "major", "minor", "file_mode", "uid", "gid", "host_path", "match")
_MOUNT_KEYS = ("destination", "source", "type", "options")


def _delegate(
    value: Any, where: str, known: Sequence[str], parse: Callable[[str, str], list[Any]]
) -> tuple[Any, ...]:
    """Check keys strictly, then parse entries with the device-injector's own parser."""
    items = _list(value, where, "entries")
    for i, item in enumerate(items):
        _check_keys(_mapping(item, f"{where}[{i}]", "an entry"), f"{where}[{i}]", known)
    try:
        return tuple(parse(where, json.dumps(items)))
    except AnnotationError as exc:
        at = f"{where}[{exc.entry}]" if exc.entry is not None else where
        raise _Problem(at, exc.problem) from None


_RLIM_INFINITY = (1 << 64) - 1


def _rlimit_value(value: Any, where: str) -> int:
    """A limit: an integer, or ``unlimited`` (also ``-1``) for RLIM_INFINITY."""
    if value == "unlimited" or (value == -1 and not isinstance(value, bool)):
        return _RLIM_INFINITY
    if isinstance(value, str):
        raise _Problem(where, f"expected an integer or 'unlimited', got {value!r}")
    return _integer(value, where, _UINT64)


def _rlimits(value: Any, where: str) -> tuple[Ulimit, ...]:
    limits: dict[str, Ulimit] = {}
    for i, item in enumerate(_list(value, where, "rlimits")):
        at = f"{where}[{i}]"
        entry = _mapping(item, at, "type, soft, hard")
        _check_keys(entry, at, ("type", "soft", "hard"))
        for key in ("type", "hard"):
            if key not in entry:
                raise _Problem(f"{at}.{key}", "missing")
        kind = normalize_type(_string(entry["type"], f"{at}.type"))
        if kind is None:
            raise _Problem(f"{at}.type", f"unknown rlimit {entry['type']!r}")
        hard = _rlimit_value(entry["hard"], f"{at}.hard")
        soft = _rlimit_value(entry.get("soft", hard), f"{at}.soft")
        if hard < soft:
            raise _Problem(at, f"hard limit {hard} is below soft limit {soft}")
        if kind in limits:
            raise _Problem(at, f"{kind} is given twice")
        limits[kind] = Ulimit(kind, hard, soft)
    return tuple(limits.values())


def _hooks(value: Any, where: str) -> pb.Hooks:
    hooks = pb.Hooks()
    spec = _mapping(value, where, "stage: list of hooks")
    _check_keys(spec, where, list(_HOOK_STAGES))
    for stage, entries in spec.items():
        for i, item in enumerate(_list(entries, f"{where}.{stage}", "hooks")):
            at = f"{where}.{stage}[{i}]"
            hook = _mapping(item, at, "path, args, env, timeout")
            _check_keys(hook, at, ("path", "args", "env", "timeout"))
            if "path" not in hook:
                raise _Problem(f"{at}.path", "missing")
            path = _absolute(_string(hook["path"], f"{at}.path"), f"{at}.path")
            timeout = hook.get("timeout")
            message = make_hook(
                path,
                _string_list(hook.get("args", []), f"{at}.args", "arguments"),
                _string_list(hook.get("env", []), f"{at}.env", "KEY=value"),
                None if timeout is None else _integer(timeout, f"{at}.timeout", (1, 1 << 31)),
            )
            getattr(hooks, _HOOK_STAGES[stage]).append(message)
    return hooks


_CPU = {
    "shares": ("set_linux_cpu_shares", (2, 262144)),
    "quota": ("set_linux_cpu_quota", (-1, _INT64[1])),
    "period": ("set_linux_cpu_period", (1000, 1_000_000)),
    "realtimeRuntime": ("set_linux_cpu_realtime_runtime", _INT64),
    "realtimePeriod": ("set_linux_cpu_realtime_period", _UINT64),
}
_MEMORY = {
    "limit": ("set_linux_memory_limit", (-1, _INT64[1])),
    "reservation": ("set_linux_memory_reservation", (-1, _INT64[1])),
    "swap": ("set_linux_memory_swap", (-1, _INT64[1])),
    "kernel": ("set_linux_memory_kernel", (-1, _INT64[1])),
    "kernelTcp": ("set_linux_memory_kernel_tcp", (-1, _INT64[1])),
}
_RESOURCE_KEYS = (
    "cpu",
    "memory",
    "pidsLimit",
    "hugepageLimits",
    "unified",
    "blockioClass",
    "rdtClass",
)


def _resources(value: Any, where: str) -> ResourceSettings:
    spec = _mapping(value, where, "cpu, memory, ...")
    _check_keys(spec, where, _RESOURCE_KEYS)
    calls: list[tuple[str, tuple[Any, ...]]] = []
    if "cpu" in spec:
        cpu = _mapping(spec["cpu"], f"{where}.cpu", "CPU settings")
        _check_keys(cpu, f"{where}.cpu", [*_CPU, "cpus", "mems"])
        for key, (setter, bounds) in _CPU.items():
            if key in cpu:
                calls.append((setter, (_integer(cpu[key], f"{where}.cpu.{key}", bounds),)))
        for key, setter in (("cpus", "set_linux_cpuset_cpus"), ("mems", "set_linux_cpuset_mems")):
            if key in cpu:
                calls.append((setter, (_id_list(cpu[key], f"{where}.cpu.{key}"),)))
    if "memory" in spec:
        memory = _mapping(spec["memory"], f"{where}.memory", "memory settings")
        known = [*_MEMORY, "swappiness", "disableOomKiller", "useHierarchy"]
        _check_keys(memory, f"{where}.memory", known)
        for key, (setter, bounds) in _MEMORY.items():
            if key in memory:
                calls.append((setter, (_bytes(memory[key], f"{where}.memory.{key}", bounds),)))
        if "swappiness" in memory:
            swappiness = _integer(memory["swappiness"], f"{where}.memory.swappiness", (0, 100))
            calls.append(("set_linux_memory_swappiness", (swappiness,)))
        for key, setter in (
            ("disableOomKiller", "set_linux_memory_disable_oom_killer"),
            ("useHierarchy", "set_linux_memory_use_hierarchy"),
        ):
            if key in memory:
                if memory[key] is not True:
                    raise _Problem(f"{where}.memory.{key}", "can only be set to true")
                calls.append((setter, ()))
    if "pidsLimit" in spec:
        calls.append(
            (
                "set_linux_pids_limit",
                (_integer(spec["pidsLimit"], f"{where}.pidsLimit", (-1, _INT64[1])),),
            )
        )
    if "hugepageLimits" in spec:
        at = f"{where}.hugepageLimits"
        for size, limit in _mapping(spec["hugepageLimits"], at, "page size: bytes").items():
            calls.append(
                ("add_linux_hugepage_limit", (size, _bytes(limit, f"{at}.{size}", _UINT64)))
            )
    if "unified" in spec:
        for key, text in _string_map(
            spec["unified"], f"{where}.unified", "cgroup v2 key: value", numbers=True, names=False
        ):
            calls.append(("add_linux_unified", (key, text)))
    for key, setter in (
        ("blockioClass", "set_linux_blockio_class"),
        ("rdtClass", "set_linux_rdt_class"),
    ):
        if key in spec:
            calls.append((setter, (_string(spec[key], f"{where}.{key}", empty=False),)))
    if not calls:
        raise _Problem(where, "sets nothing")
    return ResourceSettings(tuple(calls))


_ADJUST_KEYS = (
    "env",
    "removeEnv",
    "annotations",
    "removeAnnotations",
    "mounts",
    "removeMounts",
    "devices",
    "removeDevices",
    "cdiDevices",
    "rlimits",
    "hooks",
    "oomScoreAdj",
    "sysctls",
    "removeSysctls",
    "resources",
    *LINUX_KEYS,
)


def _adjust(value: Any) -> RuleActions:
    spec = _mapping(value, "adjust", "what to change")
    _check_keys(spec, "adjust", _ADJUST_KEYS)
    fields: dict[str, Any] = {}
    if "env" in spec:
        fields["env"] = tuple(_string_map(spec["env"], "adjust.env", "NAME: value", numbers=True))
    if "annotations" in spec:
        fields["annotations"] = tuple(
            _string_map(spec["annotations"], "adjust.annotations", "key: value")
        )
    if "sysctls" in spec:
        fields["sysctls"] = tuple(
            _string_map(spec["sysctls"], "adjust.sysctls", "name: value", numbers=True)
        )
    for key, attr in (
        ("removeEnv", "remove_env"),
        ("removeAnnotations", "remove_annotations"),
        ("removeSysctls", "remove_sysctls"),
    ):
        if key in spec:
            fields[attr] = tuple(_name_list(spec[key], f"adjust.{key}", "names"))
    if "cdiDevices" in spec:
        cdi = _string_list(spec["cdiDevices"], "adjust.cdiDevices", "CDI device names")
        fields["cdi_devices"] = tuple(cdi)
    for i, name in enumerate(fields.get("cdi_devices", ())):
        if not _CDI_NAME.fullmatch(name):
            raise _Problem(
                f"adjust.cdiDevices[{i}]", f"expected vendor.com/class=name, got {name!r}"
            )
    for key, attr in (("removeMounts", "remove_mounts"), ("removeDevices", "remove_devices")):
        if key in spec:
            paths = _string_list(spec[key], f"adjust.{key}", "container paths")
            fields[attr] = tuple(_absolute(p, f"adjust.{key}[{i}]") for i, p in enumerate(paths))
    if "mounts" in spec:
        fields["mounts"] = _delegate(spec["mounts"], "adjust.mounts", _MOUNT_KEYS, _parse_mounts)
    if "devices" in spec:
        fields["devices"] = _delegate(
            spec["devices"], "adjust.devices", _DEVICE_KEYS, _parse_devices
        )
    if "rlimits" in spec:
        fields["rlimits"] = _rlimits(spec["rlimits"], "adjust.rlimits")
    if "hooks" in spec:
        fields["hooks"] = _hooks(spec["hooks"], "adjust.hooks")
    if "oomScoreAdj" in spec:
        fields["oom_score_adj"] = _integer(spec["oomScoreAdj"], "adjust.oomScoreAdj", (-1000, 1000))
    if "resources" in spec:
        fields["resources"] = _resources(spec["resources"], "adjust.resources")
    fields["linux"] = parse_linux(spec, "adjust")
    actions = RuleActions(**fields)
    if actions == RuleActions() and actions.hooks is None and not actions.linux:
        raise _Problem("adjust", "changes nothing")
    return actions


def _update(value: Any) -> ResourceSettings:
    spec = _mapping(value, "update", "resources")
    _check_keys(spec, "update", ("resources",))
    if "resources" not in spec:
        raise _Problem("update.resources", "missing")
    return _resources(spec["resources"], "update.resources")


# -- the file -------------------------------------------------------------------------------


def _rule(index: int, raw: Any, source: str, names: dict[str, int]) -> Rule:
    label = f"rule #{index}"
    if not isinstance(raw, dict):
        raise RulesError(source, f"expected a mapping, got {describe(raw)}", label)
    name = raw.get("name")
    if isinstance(name, str) and _NAME.fullmatch(name):
        label = f"rule #{index} ({name})"
    try:
        _check_keys(raw, "rule", ("name", "match", "adjust", "update"))
        if name is None:
            raise _Problem("name", "missing")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise _Problem(
                "name", f"expected letters, digits, '.', '_', '-' (at most 128), got {name!r}"
            )
        if name in names:
            raise _Problem("name", f"already used by rule #{names[name]}")
        if raw.get("adjust") is None and raw.get("update") is None:
            raise _Problem("adjust", "missing (a rule needs adjust, update or both)")
        rule = Rule(
            index=index,
            name=name,
            match=_match(raw.get("match")),
            adjust=_adjust(raw["adjust"]) if raw.get("adjust") is not None else None,
            update=_update(raw["update"]) if raw.get("update") is not None else None,
        )
    except _Problem as exc:
        raise RulesError(source, exc.problem, label, exc.where) from None
    names[name] = index
    return rule


def read_rules(text: str | bytes, source: str = "rules") -> tuple[Rule, ...]:
    """Parse and check every rule of a rules file; raises RulesError (one line) for the
    first problem. Conflicts between rules are checked by :func:`nri_rules.parse_rules`."""
    try:
        document = load_yaml(text, source=source)
    except DecodeError as exc:
        raise RulesError(source, exc.problem) from None
    if document is None:
        document = {"rules": []}
    if not isinstance(document, dict):
        raise RulesError(source, f"expected a mapping with key 'rules', got {describe(document)}")
    unknown = [k for k in document if k != "rules"]
    if unknown:
        raise RulesError(source, f"unknown key {unknown[0]!r} (known: rules)")
    raw_rules = document.get("rules") or []
    if not isinstance(raw_rules, list):
        raise RulesError(
            source, f"expected a list of rules, got {describe(raw_rules)}", None, "rules"
        )
    if len(raw_rules) > MAX_RULES:
        raise RulesError(source, f"{len(raw_rules)} rules, more than the limit of {MAX_RULES}")
    names: dict[str, int] = {}
    return tuple(_rule(i, raw, source, names) for i, raw in enumerate(raw_rules))
