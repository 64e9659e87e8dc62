"""A mock NRI runtime: run and test plugins end to end without containerd or Kubernetes.

:class:`MockRuntime` keeps pods and containers in memory, each container with an OCI
runtime spec, and hosts plugins through the real :class:`~nri.adaptation.Adaptation`:
plugins get exactly the requests a runtime would send, and their adjustments, updates and
evictions are applied to the stored specs. Every event is recorded in
:attr:`MockRuntime.history` with which plugin changed what. :class:`SyncMockRuntime` drives
one from synchronous code (its event loop runs in a background thread). Scenario files
(:func:`load_scenario`) describe pods, containers, lifecycle steps and expectations; a
:class:`Player` plays them on a runtime, as ``nri-mock-runtime run`` does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nri.mock._player import Player, RunResult, StepResult
    from nri.mock._runtime import (
        DEFAULT_PATH_ENV,
        EventRecord,
        FieldChange,
        LifecycleError,
        MockContainer,
        MockPod,
        MockRuntime,
        PluginLaunchError,
        PluginProcess,
    )
    from nri.mock._scenario import Scenario, ScenarioError, load_scenario, parse_scenario
    from nri.mock._sync import SyncMockRuntime

_HOMES = {
    "DEFAULT_PATH_ENV": "nri.mock._runtime",
    "EventRecord": "nri.mock._runtime",
    "FieldChange": "nri.mock._runtime",
    "LifecycleError": "nri.mock._runtime",
    "MockContainer": "nri.mock._runtime",
    "MockPod": "nri.mock._runtime",
    "MockRuntime": "nri.mock._runtime",
    "PluginLaunchError": "nri.mock._runtime",
    "PluginProcess": "nri.mock._runtime",
    "SyncMockRuntime": "nri.mock._sync",
    "Player": "nri.mock._player",
    "RunResult": "nri.mock._player",
    "StepResult": "nri.mock._player",
    "Scenario": "nri.mock._scenario",
    "ScenarioError": "nri.mock._scenario",
    "load_scenario": "nri.mock._scenario",
    "parse_scenario": "nri.mock._scenario",
}

__all__ = [
    "DEFAULT_PATH_ENV",
    "EventRecord",
    "FieldChange",
    "LifecycleError",
    "MockContainer",
    "MockPod",
    "MockRuntime",
    "Player",
    "PluginLaunchError",
    "PluginProcess",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "StepResult",
    "SyncMockRuntime",
    "load_scenario",
    "parse_scenario",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: pytest loads nri.mock.pytest_plugin in every run of a project
    # that installs nri, and most of those runs never start a mock runtime.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nri.mock' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
