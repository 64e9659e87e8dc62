"""Host NRI plugins in a container runtime (upstream ``pkg/adaptation``).

An :class:`Adaptation` launches the pre-installed plugins found in ``plugin_path``, accepts
external plugins on ``socket_path``, registers, configures and synchronizes each of them,
and relays the runtime's lifecycle events to the subscribed plugins in index order, merging
their adjustments and running the validators.

A runtime embeds it like this::

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
"""

from nri.adaptation._adaptation import (
    Adaptation,
    AdaptationError,
    Config,
    EvictFn,
    PluginHook,
    ResultHook,
    SyncFn,
    UpdateFn,
)
from nri.adaptation._owners import (
    COMPOUND_FIELDS,
    AdjustmentError,
    ConflictError,
    FieldOwners,
    field_name,
    go_quote,
)
from nri.adaptation._plugin import PluginError, PluginInfo
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
    ValidationError,
    effective_annotation,
    validation_result,
)

__all__ = [
    "ANNOTATION_DOMAIN",
    "COMPOUND_FIELDS",
    "DEFAULT_VALIDATOR_NAME",
    "REQUIRED_PLUGINS_ANNOTATION",
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
    "ResultHook",
    "StopResult",
    "SyncFn",
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
