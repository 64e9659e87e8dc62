"""W3C trace context (``traceparent``/``tracestate``) carried in ttRPC request metadata.

containerd and CRI-O send the trace context of a call in its metadata (their otelttrpc
interceptors); :func:`server_trace_interceptor` makes it the handler's
:func:`current_trace_context` and :func:`client_trace_interceptor` sends the current one
on. When ``opentelemetry`` is importable (extra ``nri[otel]``) the server side also makes
the remote span the current OpenTelemetry context, and the client side sends the current
OpenTelemetry span's context in preference to the plain one.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import Message as ProtoMessage

from nri.ttrpc._interceptors import CallInfo, Next
from nri.ttrpc._metadata import Metadata

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "TraceContext",
    "client_trace_interceptor",
    "current_trace_context",
    "server_trace_interceptor",
    "use_trace_context",
]

logger = logging.getLogger("nri.ttrpc.trace")

TRACEPARENT = "traceparent"
"""Metadata key of the W3C trace parent."""
TRACESTATE = "tracestate"
"""Metadata key of the W3C trace state."""

_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")

_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "nri_ttrpc_trace_context", default=None
)


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A W3C trace context: the ``traceparent`` value and the (maybe empty) ``tracestate``."""

    traceparent: str
    tracestate: str = ""

    @classmethod
    def parse(cls, traceparent: str, tracestate: str = "") -> TraceContext | None:
        """The trace context, or None if ``traceparent`` is not a valid W3C one."""
        match = _TRACEPARENT_RE.fullmatch(traceparent)
        if match is None:
            return None
        version, trace_id, parent_id, rest = match.groups()
        if version == "ff" or (version == "00" and rest is not None):
            return None
        if trace_id == "0" * 32 or parent_id == "0" * 16:
            return None
        return cls(traceparent, tracestate)

    @classmethod
    def from_metadata(cls, metadata: Metadata) -> TraceContext | None:
        """The trace context in ``metadata``, or None if absent or invalid.

        Several ``tracestate`` values are joined with commas, as W3C prescribes; several
        ``traceparent`` values make the context invalid.
        """
        parents = metadata.get_all(TRACEPARENT)
        if not parents:
            return None
        found = cls.parse(parents[0], ",".join(metadata.get_all(TRACESTATE)))
        if found is None or len(parents) > 1:
            logger.debug("ignoring invalid traceparent metadata %r", parents)
            return None
        return found

    def inject(self, metadata: Metadata) -> None:
        """Set ``traceparent`` (and ``tracestate`` if not empty) in ``metadata``."""
        metadata.set(TRACEPARENT, self.traceparent)
        if self.tracestate:
            metadata.set(TRACESTATE, self.tracestate)
        else:
            metadata.delete(TRACESTATE)


def current_trace_context() -> TraceContext | None:
    """The trace context of the call being handled (or set by :func:`use_trace_context`)."""
    return _current.get()


@contextlib.contextmanager
def use_trace_context(context: TraceContext | None) -> Iterator[None]:
    """Make ``context`` the current trace context inside the ``with`` block."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


async def server_trace_interceptor(
    info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
) -> ProtoMessage:
    """Server interceptor: the request's trace context becomes the handler's current one."""
    context = TraceContext.from_metadata(metadata)
    if context is None:
        return await call_next(request, metadata)
    with use_trace_context(context), _otel_attached(context):
        return await call_next(request, metadata)


async def client_trace_interceptor(
    info: CallInfo, request: ProtoMessage, metadata: Metadata, call_next: Next
) -> ProtoMessage:
    """Client interceptor: send the current trace context, unless the metadata has one."""
    if TRACEPARENT not in metadata:
        context = _otel_current() or current_trace_context()
        if context is not None:
            context.inject(metadata)
    return await call_next(request, metadata)


class _OpenTelemetry:
    """The parts of ``opentelemetry`` used here, imported on first use: importing it costs
    a plugin's start-up about 9 ms whether or not any trace is ever seen."""

    def __init__(self) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.context = context
        self.trace = trace
        self.propagator = TraceContextTextMapPropagator()


@functools.cache
def _opentelemetry() -> _OpenTelemetry | None:
    try:
        return _OpenTelemetry()
    except ImportError:  # the optional extra is not installed
        return None


@contextlib.contextmanager
def _otel_attached(context: TraceContext) -> Iterator[None]:
    otel = _opentelemetry()
    if otel is None:
        yield
        return
    carrier = {TRACEPARENT: context.traceparent}
    if context.tracestate:
        carrier[TRACESTATE] = context.tracestate
    token = otel.context.attach(otel.propagator.extract(carrier))
    try:
        yield
    finally:
        otel.context.detach(token)


def _otel_current() -> TraceContext | None:
    otel = _opentelemetry()
    if otel is None or not otel.trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    otel.propagator.inject(carrier)
    parent = carrier.get(TRACEPARENT)
    return None if parent is None else TraceContext(parent, carrier.get(TRACESTATE, ""))
