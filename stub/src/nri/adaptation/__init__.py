"""Host NRI plugins in a container runtime (upstream ``pkg/adaptation``).

An :class:`Adaptation` launches the pre-installed plugins found in ``plugin_path``, accepts
external plugins on ``socket_path``, registers, configures and synchronizes each of them,
and relays the runtime's lifecycle events to the subscribed plugins in index order, merging
their adjustments and running the validators.

A runtime embeds it like this (a complete program is in the README's "Hosting plugins
in a runtime"):

.. code-block:: python
    :class: fragment


    from nri.adaptation import Adaptation, Config
    from nri.api import api_pb2 as pb


    async def sync():  # the runtime's current state, for newly registered plugins
        return list(my_pods.values()), list(my_containers.values())


    async def update(updates):  # apply container updates; return the failed ones
        return [u for u in updates if not my_runtime.apply(u)]


    async with Adaptation(
        Config(runtime_name="my-runtime", runtime_version="1.0"), sync=sync, update=update
    ) as nri:
        reply = await nri.create_container(pb.CreateContainerRequest(pod=pod, container=ctr))
        apply_adjustment(ctr, reply.adjust)

Failure handling follows upstream: a plugin whose connection breaks or that misses its
request deadline is closed and the event goes on without it; any other plugin error fails
the event (:class:`PluginError`); conflicting adjustments raise :class:`ConflictError`
and rejected ones :class:`ValidationError`.

Where upstream trusts its peers, the adaptation does not: a connection registers once,
under a name no other live plugin has (else an error, and the connection is closed);
only a registered, configured and synchronized plugin may call UpdateContainers (else
PERMISSION_DENIED and the connection is closed); at most
``Config.max_unregistered_connections`` connections are handshaking at once, and running
out of fds makes the listener back off, not stop; a peer that floods requests or does not
read its replies is paused and then dropped, with bounded memory. Only plugin files owned
by root or the runtime's user, not writable by others, in directories just as safe, are
launched; their output goes to the log (``nri.adaptation.plugin``). A drop-in
configuration file that cannot be read as UTF-8 text keeps only its plugin from starting.
"""

from nri.adaptation._adaptation import (
    Adaptation,
    EvictFn,
    PluginHook,
    ResultHook,
    SyncFn,
    UpdateFn,
)
from nri.adaptation._config import (
    TIMEOUT_POLICIES,
    AdaptationError,
    Config,
    PluginSettings,
    TimeoutPolicy,
)
from nri.adaptation._owners import (
    COMPOUND_FIELDS,
    AdjustmentError,
    ConflictError,
    FieldOwners,
    field_name,
    go_quote,
)
from nri.adaptation._plugin import PluginError, PluginInfo, PluginTimeoutError
from nri.adaptation._result import (
    CreateResult,
    StopResult,
    UpdateDuringCreationError,
    UpdateResult,
    merge_synchronize_updates,
)
from nri.adaptation._validator import (
    ANNOTATION_DOMAIN,
    DEFAULT_VALIDATOR_NAME,
    REQUIRED_PLUGINS_ANNOTATION,
    DefaultValidator,
    DefaultValidatorConfig,
    RequiredPluginError,
    ValidationError,
    effective_annotation,
    validation_result,
)

__all__ = [
    "ANNOTATION_DOMAIN",
    "COMPOUND_FIELDS",
    "DEFAULT_VALIDATOR_NAME",
    "REQUIRED_PLUGINS_ANNOTATION",
    "TIMEOUT_POLICIES",
    "Adaptation",
    "AdaptationError",
    "AdjustmentError",
    "Config",
    "ConflictError",
    "CreateResult",
    "DefaultValidator",
    "DefaultValidatorConfig",
    "EvictFn",
    "FieldOwners",
    "PluginError",
    "PluginHook",
    "PluginInfo",
    "PluginSettings",
    "PluginTimeoutError",
    "RequiredPluginError",
    "ResultHook",
    "StopResult",
    "SyncFn",
    "TimeoutPolicy",
    "UpdateDuringCreationError",
    "UpdateFn",
    "UpdateResult",
    "ValidationError",
    "effective_annotation",
    "field_name",
    "go_quote",
    "merge_synchronize_updates",
    "validation_result",
]
