"""A mock NRI runtime: run and test plugins end to end without containerd or Kubernetes.

:class:`MockRuntime` keeps pods and containers in memory, each container with an OCI
runtime spec, and hosts plugins through the real :class:`~nri.adaptation.Adaptation`:
plugins get exactly the requests a runtime would send, and their adjustments, updates and
evictions are applied to the stored specs. Every event is recorded in
:attr:`MockRuntime.history` with which plugin changed what. :class:`SyncMockRuntime` drives
one from synchronous code (its event loop runs in a background thread). Scenario files
(:func:`load_scenario`) describe pods, containers, lifecycle steps and expectations; a
:class:`Player` plays them on a runtime, as ``nri-mock-runtime run`` does. A runtime behaves
as containerd (the default) or, with ``MockRuntime(profile="cri-o")``, as CRI-O: the data it
sends, how it delivers events and how it treats plugins follow that runtime
(:class:`RuntimeProfile` lists every difference).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nri.mock._history import EventRecord, FieldChange
    from nri.mock._hosting import PluginLaunchError, PluginProcess, PreinstalledPlugin
    from nri.mock._player import Player, RunResult, StepResult
    from nri.mock._profiles import DEFAULT_PATH_ENV, PROFILES, RuntimeProfile
    from nri.mock._runtime import MockRuntime
    from nri.mock._scenario import Scenario, ScenarioError, load_scenario, parse_scenario
    from nri.mock._state import LifecycleError, MockContainer, MockPod, UpdateError
    from nri.mock._sync import SyncMockRuntime

_HOMES = {
    "DEFAULT_PATH_ENV": "nri.mock._profiles",
    "PROFILES": "nri.mock._profiles",
    "RuntimeProfile": "nri.mock._profiles",
    "EventRecord": "nri.mock._history",
    "FieldChange": "nri.mock._history",
    "LifecycleError": "nri.mock._state",
    "MockContainer": "nri.mock._state",
    "MockPod": "nri.mock._state",
    "MockRuntime": "nri.mock._runtime",
    "PluginLaunchError": "nri.mock._hosting",
    "PluginProcess": "nri.mock._hosting",
    "PreinstalledPlugin": "nri.mock._hosting",
    "SyncMockRuntime": "nri.mock._sync",
    "Player": "nri.mock._player",
    "RunResult": "nri.mock._player",
    "StepResult": "nri.mock._player",
    "UpdateError": "nri.mock._state",
    "Scenario": "nri.mock._scenario",
    "ScenarioError": "nri.mock._scenario",
    "load_scenario": "nri.mock._scenario",
    "parse_scenario": "nri.mock._scenario",
}

__all__ = [
    "DEFAULT_PATH_ENV",
    "PROFILES",
    "EventRecord",
    "FieldChange",
    "LifecycleError",
    "MockContainer",
    "MockPod",
    "MockRuntime",
    "Player",
    "PluginLaunchError",
    "PluginProcess",
    "PreinstalledPlugin",
    "RunResult",
    "RuntimeProfile",
    "Scenario",
    "ScenarioError",
    "StepResult",
    "SyncMockRuntime",
    "UpdateError",
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


def __dir__() -> list[str]:
    # The lazily imported names too, so that introspection (help(), Sphinx autodoc) sees them.
    return sorted({*globals(), *__all__})
