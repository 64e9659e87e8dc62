"""Interceptors: code run around every unary call, on the client or the server side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message as ProtoMessage

from nri.ttrpc._metadata import Metadata

__all__ = ["CallInfo", "Interceptor", "Next", "chain_interceptors"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Which method a call is for."""

    service: str
    method: str

    @property
    def full_method(self) -> str:
        """``/service/method``, as containerd/ttrpc's ``FullMethod`` spells it."""
        return f"/{self.service}/{self.method}"


Next = Callable[[ProtoMessage, Metadata], Awaitable[ProtoMessage]]
"""The rest of the chain: call it with the (possibly changed) request and metadata."""

Interceptor = Callable[[CallInfo, ProtoMessage, Metadata, Next], Awaitable[ProtoMessage]]
"""``async def (info, request, metadata, call_next) -> response``.

On a :class:`~nri.ttrpc.Client` the metadata is what will be sent (the interceptor may
change it before ``call_next``); on a :class:`~nri.ttrpc.Server` it is the request's
metadata, and what is passed to ``call_next`` is what the handler sees as
:func:`~nri.ttrpc.current_metadata`. An interceptor may also answer without calling
``call_next``, or raise (a :class:`~nri.ttrpc.StatusError` on the server becomes the
response's status).
"""


def chain_interceptors(interceptors: Sequence[Interceptor], info: CallInfo, final: Next) -> Next:
    """Bind ``interceptors`` around ``final``: the first one given runs outermost."""
    call = final
    for interceptor in reversed(interceptors):
        call = _bind(interceptor, info, call)
    return call


def _bind(interceptor: Interceptor, info: CallInfo, call_next: Next) -> Next:
    def call(request: ProtoMessage, metadata: Metadata) -> Awaitable[ProtoMessage]:
        return interceptor(info, request, metadata, call_next)

    return call
