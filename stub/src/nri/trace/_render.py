"""Turn decoded :class:`~nri.trace._tap.Record` objects into text lines or JSON objects."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message as ProtoMessage

from nri.api import api_pb2, format_event_mask
from nri.trace._tap import Record
from nri.ttrpc import Code

__all__ = ["MAX_SUMMARY", "EventFilter", "record_data", "render_record", "summarize"]

#: Longest one-line summary of a payload; longer ones are cut with an ellipsis.
MAX_SUMMARY = 240


def _norm(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _all_methods() -> dict[str, str]:
    names: dict[str, str] = {}
    for svc in api_pb2.DESCRIPTOR.services_by_name.values():
        if svc.name == "HostFunctions":
            continue
        for method in svc.methods:
            names[_norm(method.name)] = method.name
    return names


class EventFilter:
    """Which methods to show: ``--events`` names, matched case-insensitively.

    Method names (``CreateContainer``, ``RegisterPlugin``, ``UpdateContainers``) and event
    names (``CREATE_CONTAINER``, ``create-container``) both work; no names shows everything.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        """Accept ``names`` (items may be comma-separated); raise ValueError for unknown ones."""
        known = _all_methods()
        chosen: set[str] = set()
        for spec in names:
            for item in spec.split(","):
                key = _norm(item.strip())
                if not key:
                    continue
                if key not in known:
                    raise ValueError(
                        f"unknown event or method {item.strip()!r} in --events "
                        f"(known: {', '.join(sorted(known.values()))})"
                    )
                chosen.add(known[key])
        self.methods = frozenset(chosen)

    def __call__(self, rec: Record) -> bool:
        """Whether ``rec`` is shown (decode errors always are)."""
        if not self.methods or rec.kind == "error":
            return True
        return rec.method in self.methods


def _time(t_ns: int, *, full: bool) -> str:
    stamp = datetime.fromtimestamp(t_ns / 1e9, UTC)
    if full:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.strftime("%H:%M:%S.%f")


def _status_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return str(code)


def _pod_ref(pod: api_pb2.PodSandbox) -> str:
    return f"pod={pod.namespace}/{pod.name}" if pod.namespace else f"pod={pod.name or pod.id}"


def _ctr_ref(ctr: api_pb2.Container) -> str:
    return f"container={ctr.name or ctr.id}"


def _fields(msg: ProtoMessage, depth: int = 2) -> str:
    """``a=1 b[2] c{d e}``: the fields set in ``msg``, nested ``depth`` levels deep."""
    parts: list[str] = []
    for fd, value in msg.ListFields():
        name = fd.name
        if fd.is_repeated:  # maps too
            parts.append(f"{name}[{len(value)}]")
        elif fd.message_type is not None:
            wrapper = fd.message_type.name.startswith("Optional") and "value" in (
                f.name for f in fd.message_type.fields
            )
            if wrapper:
                parts.append(f"{name}={_scalar(value.value)}")
            elif depth > 1:
                inner = _fields(value, depth - 1)
                parts.append(f"{name}{{{inner}}}" if inner else f"{name}{{}}")
            else:
                parts.append(f"{name}{{…}}")
        elif fd.enum_type is not None:
            enum_value = fd.enum_type.values_by_number.get(value)
            parts.append(f"{name}={enum_value.name if enum_value else value}")
        else:
            parts.append(f"{name}={_scalar(value)}")
    return " ".join(parts)


def _scalar(value: Any) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "…"
        return json.dumps(text, ensure_ascii=False) if (not text or " " in text) else text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _updates(msg: Any) -> str:
    parts = []
    if len(msg.update):
        parts.append(f"update[{len(msg.update)}]")
    if len(msg.evict):
        parts.append(f"evict[{len(msg.evict)}]")
    return " ".join(parts)


def summarize(payload: ProtoMessage) -> str:
    """A one-line summary of an NRI payload naming what matters for its type."""
    m: Any = payload
    if isinstance(payload, api_pb2.RegisterPluginRequest):
        return f"name={m.plugin_name} idx={m.plugin_idx} nri={m.NRI_version or '-'}"
    if isinstance(payload, api_pb2.ConfigureRequest):
        return (
            f"runtime={m.runtime_name} {m.runtime_version} config={len(m.config)}B "
            f"registration_timeout={m.registration_timeout}ms "
            f"request_timeout={m.request_timeout}ms"
        )
    if isinstance(payload, api_pb2.ConfigureResponse):
        return f"events={format_event_mask(m.events) if m.events else 'all'} ({m.events:#x})"
    if isinstance(payload, api_pb2.SynchronizeRequest):
        return f"pods={len(m.pods)} containers={len(m.containers)} more={_scalar(m.more)}"
    if isinstance(payload, api_pb2.SynchronizeResponse):
        return f"update[{len(m.update)}] more={_scalar(m.more)}"
    if isinstance(payload, api_pb2.StateChangeEvent):
        event = api_pb2.Event.Name(m.event) if m.event in api_pb2.Event.values() else m.event
        refs = [f"event={event}"]
        if m.HasField("pod"):
            refs.append(_pod_ref(m.pod))
        if m.HasField("container"):
            refs.append(_ctr_ref(m.container))
        return " ".join(refs)
    if isinstance(payload, api_pb2.CreateContainerResponse):
        adjust = _fields(m.adjust, 1) if m.HasField("adjust") else ""
        rest = _updates(m)
        text = f"adjust{{{adjust}}}" if m.HasField("adjust") else "no adjustment"
        return f"{text} {rest}".strip()
    if isinstance(payload, api_pb2.ValidateContainerAdjustmentResponse):
        return f"rejected: {m.reason}" if m.reject else "accepted"
    if isinstance(payload, api_pb2.ValidateContainerAdjustmentRequest):
        plugins = ",".join(f"{p.index}-{p.name}" for p in m.plugins)
        return f"{_pod_ref(m.pod)} {_ctr_ref(m.container)} plugins={plugins or '-'}"
    fields = {fd.name for fd, _ in payload.ListFields()}
    if "pod" in fields or "container" in fields:
        refs = []
        if "pod" in fields:
            refs.append(_pod_ref(m.pod))
        if "container" in fields:
            refs.append(_ctr_ref(m.container))
        other = [fd for fd, _ in payload.ListFields() if fd.name not in ("pod", "container")]
        if other:
            remainder = payload.__class__()
            remainder.CopyFrom(payload)
            for name in ("pod", "container"):
                if name in fields:
                    remainder.ClearField(name)
            refs.append(_fields(remainder, 2))
        return " ".join(refs)
    if hasattr(m, "update") and hasattr(m, "evict"):
        return _updates(m) or "no changes"
    return _fields(payload) or "empty"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def render_record(rec: Record, *, verbose: bool = False) -> list[str]:
    """Text lines for ``rec``: one summary line, plus the payload as YAML if ``verbose``."""
    head = f"{_time(rec.t_ns, full=False)} {rec.direction} {rec.plugin}"
    if rec.kind == "error":
        where = f" conn {rec.conn_id}" if rec.conn_id else ""
        return [f"{head} decode error{where}: {rec.error}"]
    method = rec.method or "?"
    kind = "request" if rec.kind == "request" else "reply"
    head = f"{head} {method} {kind} stream={rec.stream_id}"
    if rec.kind == "response":
        if rec.latency_ns is not None:
            head += f" {rec.latency_ns / 1e6:.2f}ms"
        if rec.status_code:
            head += f" ERROR {_status_name(rec.status_code)}: {rec.status_message}"
    if rec.error:
        lines = [_cut(f"{head} ({rec.error})")]
    elif rec.payload is not None and not rec.status_code:
        lines = [_cut(f"{head} {summarize(rec.payload)}")]
    else:
        lines = [_cut(head)]
    if verbose and rec.payload is not None:
        data = json_format.MessageToDict(rec.payload)
        if data:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            lines.extend("    " + line for line in text.rstrip("\n").splitlines())
    return lines


def record_data(rec: Record) -> dict[str, Any]:
    """``rec`` as one JSON object (the payload in protojson form)."""
    data: dict[str, Any] = {
        "time": _time(rec.t_ns, full=True),
        "t_ns": rec.t_ns,
        "dir": rec.direction,
        "plugin": rec.plugin,
        "kind": rec.kind,
    }
    if rec.kind != "error" or rec.conn_id:
        data["conn_id"] = rec.conn_id
    if rec.kind != "error":
        data.update(stream_id=rec.stream_id, service=rec.service, method=rec.method, size=rec.size)
    if rec.kind == "request" and rec.timeout_nano:
        data["timeout_nano"] = rec.timeout_nano
    if rec.kind == "response":
        if rec.latency_ns is not None:
            data["latency_ms"] = round(rec.latency_ns / 1e6, 3)
        if rec.status_code:
            data["status"] = {
                "code": _status_name(rec.status_code),
                "message": rec.status_message,
            }
    if rec.error:
        data["error"] = rec.error
    if rec.payload is not None:
        data["payload"] = json_format.MessageToDict(rec.payload)
    return data
