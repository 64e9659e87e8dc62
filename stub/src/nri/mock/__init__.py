"""A mock NRI runtime: run and test plugins end to end without containerd or Kubernetes.

:class:`MockRuntime` keeps pods and containers in memory, each container with an OCI
runtime spec, and hosts plugins through the real :class:`~nri.adaptation.Adaptation`:
plugins get exactly the requests a runtime would send, and their adjustments, updates and
evictions are applied to the stored specs. Every event is recorded in
:attr:`MockRuntime.history` with which plugin changed what.
"""

from nri.mock._runtime import (
    DEFAULT_PATH_ENV,
    EventRecord,
    FieldChange,
    MockContainer,
    MockPod,
    MockRuntime,
    PluginLaunchError,
    PluginProcess,
)

__all__ = [
    "DEFAULT_PATH_ENV",
    "EventRecord",
    "FieldChange",
    "MockContainer",
    "MockPod",
    "MockRuntime",
    "PluginLaunchError",
    "PluginProcess",
]
