"""Config.client_interceptors / server_interceptors reach every plugin connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _adaptation_helpers import FakeRuntime, config_for, create_request, env_of, stub_plugin

from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.stub import Plugin
from nri.ttrpc import (
    CallInfo,
    Metadata,
    TraceContext,
    client_trace_interceptor,
    current_trace_context,
    server_trace_interceptor,
    use_trace_context,
)

TRACE = TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


class Traced(Plugin):
    def __init__(self) -> None:
        self.traces: list[str | None] = []

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Any:
        trace = current_trace_context()
        self.traces.append(trace.traceparent if trace is not None else None)
        return Adjustment().add_env("TRACED", "yes")


@pytest.mark.timeout(30)
async def test_runtime_trace_context_reaches_the_plugin_handler(tmp_path: Path) -> None:
    seen_by_runtime: list[str] = []

    async def runtime_side(info: CallInfo, request: Any, metadata: Metadata, call_next: Any) -> Any:
        seen_by_runtime.append(info.method)
        return await call_next(request, metadata)

    config = config_for(
        tmp_path,
        client_interceptors=[client_trace_interceptor],
        server_interceptors=[runtime_side],
    )
    plugin = Traced()
    async with (
        FakeRuntime().adaptation(config) as nri,
        stub_plugin(
            plugin,
            config.socket_path,
            "10",
            "traced",
            server_interceptors=[server_trace_interceptor],
        ),
    ):
        await nri.wait_for_plugins(names=["10-traced"])
        with use_trace_context(TRACE):
            created = await nri.create_container(create_request("c1"))
        untraced = await nri.create_container(create_request("c2"))
    assert env_of(created) == {"TRACED": "yes"} == env_of(untraced)
    assert plugin.traces == [TRACE.traceparent, None]
    # The runtime's server interceptor saw the plugin's own request.
    assert "RegisterPlugin" in seen_by_runtime
