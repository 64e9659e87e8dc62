"""NRI v0.1.0's data, sans I/O: its configuration file, requests and results, in JSON.

The v0.1.0 client (upstream ``client.go`` and ``types/v1``, which the v010-adapter pins at
v0.10.0) reads ``/etc/nri/conf.json``, then runs each configured plugin binary as
``TYPE invoke`` with one JSON request on stdin and reads one JSON result from stdout. The
request is rebuilt here from the NRI event, and encoded byte for byte as Go's
``encoding/json`` would: fields in struct order, empty optional fields left out, map keys
sorted, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from nri.api import pb
from nri.decode import DecodeError, Map, Str, Struct, load_json, unmarshal_json

__all__ = [
    "CREATE",
    "DEFAULT_BINARY_PATH",
    "DEFAULT_CONF_PATH",
    "DELETE",
    "VERSION",
    "V010Config",
    "V010ConfigError",
    "V010Plugin",
    "V010Result",
    "V010ResultError",
    "build_request",
    "go_compact",
    "go_json",
    "parse_config",
    "parse_result",
    "resources_to_oci_json",
    "spec_from_container",
    "spec_from_pod",
]

DEFAULT_BINARY_PATH = "/opt/nri/bin"
"""Where v0.1.0 plugin binaries are looked up (after ``$PATH``, as upstream)."""
DEFAULT_CONF_PATH = "/etc/nri/conf.json"
"""The v0.1.0 configuration file."""
VERSION = "0.1"
"""The request version when no configuration file exists."""
CREATE = "create"
"""Request state of RunPodSandbox and StartContainer."""
DELETE = "delete"
"""Request state of StopPodSandbox and StopContainer."""

MAX_CONFIG_BYTES = 1 << 20


class V010ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message names file and place."""


class V010ResultError(ValueError):
    """A plugin's output is not a v0.1.0 result (the message is upstream's wording)."""


# -- Go's JSON encoding -----------------------------------------------------------------------


def go_json(value: Any) -> str:
    """Encode ``value`` (str, bool, int, None, list, dict with str keys) as Go's
    ``json.Marshal`` does for the same Go value: compact, keys in the given order."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _html_escape(text)


def _html_escape(text: str) -> str:
    # These characters appear in JSON text only inside strings, where Go escapes them.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def go_compact(raw: str) -> str:
    """Compact raw JSON text as Go does when it marshals a ``json.RawMessage``: whitespace
    between tokens dropped, strings kept as written but for the HTML escapes."""
    out: list[str] = []
    in_string = escaped = False
    start = 0
    for i, ch in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in " \t\n\r":
            out.append(raw[start:i])
            start = i + 1
    out.append(raw[start:])
    return _html_escape("".join(out))


def _sorted_map(values: Mapping[str, str]) -> dict[str, str]:
    return {key: values[key] for key in sorted(values)}


# -- the configuration file -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class V010Plugin:
    """One configured plugin: the binary (``type``) and its raw JSON ``conf``, if any."""

    type: str
    conf: str | None = None
    """The plugin's configuration as compacted JSON text, None when absent."""


@dataclass(frozen=True, slots=True)
class V010Config:
    """The v0.1.0 configuration list (``conf.json``)."""

    version: str = VERSION
    plugins: tuple[V010Plugin, ...] = ()


_WS = " \t\n\r"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _position(text: str, i: int) -> str:
    line = text.count("\n", 0, i) + 1
    return f"line {line} column {i - (text.rfind(chr(10), 0, i) + 1) + 1}"


_DECODER = json.JSONDecoder()
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
MAX_DEPTH = 64


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before any parser recurses into it."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise V010ConfigError(f"{source}: nesting deeper than {MAX_DEPTH} levels")
        elif token in ("]", "}"):
            depth -= 1


def _value_end(text: str, i: int, source: str) -> int:
    try:
        _, end = _DECODER.raw_decode(text, i)
    except json.JSONDecodeError as exc:
        raise V010ConfigError(f"{source}: {_position(text, exc.pos)}: {exc.msg}") from None
    except RecursionError:
        raise V010ConfigError(f"{source}: JSON nested too deeply") from None
    return int(end)


def _members(text: str, i: int, source: str) -> tuple[list[tuple[str, int, int]], int]:
    """The (key, value start, value end) of the object at ``text[i]``, and its end."""
    members: list[tuple[str, int, int]] = []
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return members, i + 1
    while True:
        if text[i : i + 1] != '"':
            raise V010ConfigError(f"{source}: {_position(text, i)}: expected a key")
        key, i = scanstring(text, i + 1)
        i = _skip(text, i)
        if text[i : i + 1] != ":":
            raise V010ConfigError(f"{source}: {_position(text, i)}: expected ':'")
        start = _skip(text, i + 1)
        end = _value_end(text, start, source)
        members.append((key, start, end))
        i = _skip(text, end)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
            continue
        if text[i : i + 1] == "}":
            return members, i + 1
        raise V010ConfigError(f"{source}: {_position(text, i)}: expected ',' or '}}'")


def _items(text: str, i: int, source: str) -> list[tuple[int, int]]:
    """The (start, end) of each element of the array at ``text[i]``."""
    items: list[tuple[int, int]] = []
    i = _skip(text, i + 1)
    if text[i : i + 1] == "]":
        return items
    while True:
        end = _value_end(text, i, source)
        items.append((i, end))
        i = _skip(text, end)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
            continue
        if text[i : i + 1] == "]":
            return items
        raise V010ConfigError(f"{source}: {_position(text, i)}: expected ',' or ']'")


def _field(key: str, name: str) -> bool:
    # encoding/json matches struct fields case-insensitively
    return key == name or key.lower() == name


def _kind(text: str, start: int) -> str:
    ch = text[start]
    return {"{": "an object", "[": "an array", '"': "a string", "t": "a boolean",
            "f": "a boolean", "n": "null"}.get(ch, "a number")  # fmt: skip


def _string_field(text: str, start: int, end: int, source: str, where: str) -> str:
    if text[start] == "n":
        return ""
    if text[start] != '"':
        raise V010ConfigError(f"{source}: {where} must be a string, got {_kind(text, start)}")
    value: str = json.loads(text[start:end])
    return value


def parse_config(text: str | bytes, source: str = DEFAULT_CONF_PATH) -> V010Config:
    """Parse ``conf.json`` as the v0.1.0 client does (first JSON value, keys matched
    case-insensitively, unknown keys ignored); raises V010ConfigError."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise V010ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = text if isinstance(text, str) else text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise V010ConfigError(f"{source}: not UTF-8 (byte {exc.start})") from None
    _check_depth(data, source)
    start = _skip(data, 0)
    if start == len(data):
        raise V010ConfigError(f"{source}: empty file (expected a JSON object)")
    end = _value_end(data, start, source)
    # Go's Decoder reads the first JSON value only; check its nesting like every input
    try:
        load_json(data[start:end], source=source, max_bytes=MAX_CONFIG_BYTES)
    except DecodeError as exc:
        raise V010ConfigError(str(exc)) from None
    if data[start] == "n":
        return V010Config(version="")
    if data[start] != "{":
        raise V010ConfigError(f"{source}: expected a JSON object, got {_kind(data, start)}")
    version = ""
    plugins: list[V010Plugin] = []
    members, _ = _members(data, start, source)
    for key, vstart, vend in members:
        if _field(key, "version"):
            version = _string_field(data, vstart, vend, source, "version")
        elif _field(key, "plugins"):
            plugins = _plugins(data, vstart, vend, source)
    return V010Config(version=version, plugins=tuple(plugins))


def _plugins(text: str, start: int, end: int, source: str) -> list[V010Plugin]:
    if text[start] == "n":
        return []
    if text[start] != "[":
        raise V010ConfigError(f"{source}: plugins must be an array, got {_kind(text, start)}")
    plugins = []
    for index, (istart, _iend) in enumerate(_items(text, start, source)):
        where = f"plugins[{index}]"
        if text[istart] != "{":
            # upstream would crash on null here
            raise V010ConfigError(f"{source}: {where} must be an object, got {_kind(text, istart)}")
        type_ = ""
        conf: str | None = None
        members, _ = _members(text, istart, source)
        for key, vstart, vend in members:
            if _field(key, "type"):
                type_ = _string_field(text, vstart, vend, source, f"{where}.type")
            elif _field(key, "conf"):
                conf = go_compact(text[vstart:vend])
        plugins.append(V010Plugin(type_, conf))
    return plugins


# -- the request ------------------------------------------------------------------------------


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name).value if message.HasField(name) else None


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def resources_to_oci_json(resources: pb.LinuxResources | None) -> dict[str, Any] | None:
    """The OCI ``LinuxResources`` the v0.10.0 ``ToOCI`` makes, as JSON-ready dict in Go's
    field order (memory and cpu are always there; block I/O and RDT classes are not)."""
    if resources is None:
        return None
    out: dict[str, Any] = {}
    devices = []
    for rule in resources.devices:
        device: dict[str, Any] = {"allow": rule.allow}
        if rule.type:
            device["type"] = rule.type
        _put(device, "major", _opt(rule, "major"))
        _put(device, "minor", _opt(rule, "minor"))
        if rule.access:
            device["access"] = rule.access
        devices.append(device)
    if devices:
        out["devices"] = devices
    memory: dict[str, Any] = {}
    if resources.HasField("memory"):
        mem = resources.memory
        for key, name in (
            ("limit", "limit"),
            ("reservation", "reservation"),
            ("swap", "swap"),
            ("kernel", "kernel"),
            ("kernelTCP", "kernel_tcp"),
            ("swappiness", "swappiness"),
            ("disableOOMKiller", "disable_oom_killer"),
            ("useHierarchy", "use_hierarchy"),
        ):
            _put(memory, key, _opt(mem, name))
    out["memory"] = memory
    cpu: dict[str, Any] = {}
    if resources.HasField("cpu"):
        c = resources.cpu
        for key, name in (
            ("shares", "shares"),
            ("quota", "quota"),
            ("period", "period"),
            ("realtimeRuntime", "realtime_runtime"),
            ("realtimePeriod", "realtime_period"),
        ):
            _put(cpu, key, _opt(c, name))
        if c.cpus:
            cpu["cpus"] = c.cpus
        if c.mems:
            cpu["mems"] = c.mems
    out["cpu"] = cpu
    if resources.HasField("pids"):
        out["pids"] = {"limit": resources.pids.limit}
    hugepages = [{"pageSize": h.page_size, "limit": h.limit} for h in resources.hugepage_limits]
    if hugepages:
        out["hugepageLimits"] = hugepages
    if resources.unified:
        out["unified"] = _sorted_map(resources.unified)
    return out


@dataclass(frozen=True, slots=True)
class V010Spec:
    """The part of an OCI spec the v0.1.0 request carries."""

    annotations: Mapping[str, str]
    namespaces: Sequence[pb.LinuxNamespace]
    resources: pb.LinuxResources | None
    cgroups_path: str

    def to_json(self) -> dict[str, Any]:
        """The request's ``spec`` (``types/v1.Spec``) as a JSON-ready dict in Go's order."""
        out: dict[str, Any] = {"resources": resources_to_oci_json(self.resources)}
        namespaces: dict[str, str] = {}
        for ns in self.namespaces:
            namespaces[ns.type] = ns.path
        if namespaces:
            out["namespaces"] = _sorted_map(namespaces)
        if self.cgroups_path:
            out["cgroupsPath"] = self.cgroups_path
        if self.annotations:
            out["annotations"] = _sorted_map(self.annotations)
        return out


def _spec(
    annotations: Mapping[str, str], linux: pb.LinuxPodSandbox | pb.LinuxContainer
) -> V010Spec:
    return V010Spec(
        annotations=annotations,
        namespaces=linux.namespaces,
        resources=linux.resources if linux.HasField("resources") else None,
        cgroups_path=linux.cgroups_path,
    )


def spec_from_pod(pod: pb.PodSandbox) -> V010Spec:
    """The spec upstream reconstructs for a pod sandbox."""
    return _spec(pod.annotations, pod.linux)


def spec_from_container(ctr: pb.Container) -> V010Spec:
    """The spec upstream reconstructs for a container."""
    return _spec(ctr.annotations, ctr.linux)


@dataclass
class V010Result:
    """A plugin's result (``types/v1.Result``)."""

    plugin: str = ""
    version: str = ""
    error: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict in Go's field order (metadata left out when empty)."""
        out: dict[str, Any] = {"plugin": self.plugin, "version": self.version, "error": self.error}
        if self.metadata:
            out["metadata"] = _sorted_map(self.metadata)
        return out


def build_request(
    *,
    version: str,
    state: str,
    id: str,
    pid: int,
    spec: V010Spec,
    sandbox_id: str = "",
    labels: Mapping[str, str] | None = None,
    results: Iterable[V010Result] = (),
    conf: str | None = None,
) -> str:
    """The JSON request (``types/v1.Request``) for one plugin, as the v0.1.0 client sends."""
    parts = []
    if conf:
        parts.append(f'"conf":{conf}')
    head: dict[str, Any] = {"version": version, "state": state, "id": id}
    if sandbox_id:
        head["sandboxID"] = sandbox_id
    if pid:
        head["pid"] = pid
    head["spec"] = spec.to_json()
    if labels:
        head["labels"] = _sorted_map(labels)
    result_list = [r.to_json() for r in results]
    if result_list:
        head["results"] = result_list
    parts.append(go_json(head)[1:-1])
    return "{" + ",".join(parts) + "}"


_RESULT = Struct(
    "v1.Result", {"plugin": Str(), "version": Str(), "error": Str(), "metadata": Map(Str())}
)


def parse_result(output: bytes) -> V010Result:
    """Decode a plugin's stdout like ``json.Unmarshal`` into ``types/v1.Result`` (keys
    matched case-insensitively, unknown keys ignored, ``null`` a zero result).

    Raises V010ResultError (``unexpected end of JSON input`` for no output, as Go says).
    """
    text = output.decode("utf-8", "replace")  # Go substitutes U+FFFD as well
    if not text.strip(_WS):
        raise V010ResultError("unexpected end of JSON input")
    try:
        _check_depth(text, "plugin output")
        # the size is bounded by whoever read the output
        value = unmarshal_json(
            text, _RESULT, source="plugin output", max_bytes=len(text.encode()) + 1
        )
    except (V010ConfigError, DecodeError) as exc:
        raise V010ResultError(str(exc).removeprefix("plugin output: ")) from None
    return V010Result(value["plugin"], value["version"], value["error"], value["metadata"])
