"""The built-in default validator (upstream ``plugins/default-validator``).

Upstream runs it as the builtin plugin ``00-default-validator``. Its rejection reaches the
runtime as ``validator "00-default-validator" rejected container adjustment, reason:
validation error: ...``, which is what :class:`ValidationError` carries here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from nri.adaptation._owners import FieldOwners, go_quote
from nri.api import api_pb2 as pb

__all__ = [
    "ANNOTATION_DOMAIN",
    "DEFAULT_VALIDATOR_NAME",
    "REQUIRED_PLUGINS_ANNOTATION",
    "DefaultValidator",
    "DefaultValidatorConfig",
    "RequiredPluginError",
    "ValidationError",
    "effective_annotation",
    "missing_plugins",
    "validation_result",
]

logger = logging.getLogger("nri.adaptation")

#: Domain of NRI's own annotations.
ANNOTATION_DOMAIN = "noderesource.dev"
#: Pod annotation listing extra plugins required for a pod or container (a YAML list).
REQUIRED_PLUGINS_ANNOTATION = "required-plugins." + ANNOTATION_DOMAIN
#: Full name the default validator has as upstream's builtin plugin.
DEFAULT_VALIDATOR_NAME = "00-default-validator"

_ERR_VALIDATION = "validation error"


class ValidationError(Exception):
    """A validator rejected a container adjustment; CreateContainer fails.

    Built from upstream's pieces with :meth:`rejection`, or from a finished message.
    """

    def __init__(
        self, message: str, *, plugin: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.reason = reason

    @classmethod
    def rejection(cls, plugin: str, reason: str) -> ValidationError:
        """Return upstream's error for ``plugin`` rejecting with ``reason``."""
        reason = reason or "unknown rejection reason"
        return cls(
            f"validator {go_quote(plugin)} rejected container adjustment, reason: {reason}",
            plugin=plugin,
            reason=reason,
        )


def validation_result(
    plugin: str, response: pb.ValidateContainerAdjustmentResponse | None
) -> ValidationError | None:
    """Return the error for a validator's reply, None if it accepted (``ValidationResult``)."""
    if response is None or not response.reject:
        return None
    return ValidationError.rejection(plugin, response.reason)


_OPTIONS: dict[str, tuple[str, str]] = {
    # field name: (YAML key, TOML key), as upstream's struct tags.
    "enable": ("enable", "enable"),
    "reject_oci_hook_adjustment": ("rejectOCIHookAdjustment", "reject_oci_hook_adjustment"),
    "reject_runtime_default_seccomp_adjustment": (
        "rejectRuntimeDefaultSeccompAdjustment",
        "reject_runtime_default_seccomp_adjustment",
    ),
    "reject_unconfined_seccomp_adjustment": (
        "rejectUnconfinedSeccompAdjustment",
        "reject_unconfined_seccomp_adjustment",
    ),
    "reject_custom_seccomp_adjustment": (
        "rejectCustomSeccompAdjustment",
        "reject_custom_seccomp_adjustment",
    ),
    "reject_namespace_adjustment": ("rejectNamespaceAdjustment", "reject_namespace_adjustment"),
    "reject_sysctl_adjustment": ("rejectSysctlAdjustment", "reject_sysctl_adjustment"),
    "required_plugins": ("requiredPlugins", "required_plugins"),
    "tolerate_missing_annotation": (
        "tolerateMissingPluginsAnnotation",
        "tolerate_missing_plugins_annotation",
    ),
}
_KEYS = {key: name for name, keys in _OPTIONS.items() for key in keys}


@dataclasses.dataclass
class DefaultValidatorConfig:
    """Configuration of the default validator (upstream ``DefaultValidatorConfig``).

    In YAML/TOML the options use upstream's keys: ``enable``, ``rejectOCIHookAdjustment``,
    ``rejectRuntimeDefaultSeccompAdjustment``, ``rejectUnconfinedSeccompAdjustment``,
    ``rejectCustomSeccompAdjustment``, ``rejectNamespaceAdjustment``,
    ``rejectSysctlAdjustment``, ``requiredPlugins`` and ``tolerateMissingPluginsAnnotation``
    (or their snake_case TOML forms).
    """

    #: Run the validator at all.
    enable: bool = False
    #: Reject adjustments that inject OCI hooks.
    reject_oci_hook_adjustment: bool = False
    #: Reject seccomp policy adjustment of containers with the runtime default profile.
    reject_runtime_default_seccomp_adjustment: bool = False
    #: Reject seccomp policy adjustment of unconfined containers (or with no profile).
    reject_unconfined_seccomp_adjustment: bool = False
    #: Reject seccomp policy adjustment of containers with a custom (localhost) profile.
    reject_custom_seccomp_adjustment: bool = False
    #: Reject any Linux namespace adjustment.
    reject_namespace_adjustment: bool = False
    #: Reject any sysctl adjustment.
    reject_sysctl_adjustment: bool = False
    #: Plugins (``name`` or ``idx-name``) that must be present for every container.
    required_plugins: list[str] = dataclasses.field(default_factory=list)
    #: Annotation key that, set to true, lets a pod/container tolerate missing plugins.
    tolerate_missing_annotation: str = ""

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, source: str = "default validator config"
    ) -> DefaultValidatorConfig:
        """Build a config from upstream's keys; ValueError names a bad key or value."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a mapping, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for key, raw in data.items():
            value = raw
            name = _KEYS.get(key) if isinstance(key, str) else None
            if name is None:
                known = ", ".join(keys[0] for keys in _OPTIONS.values())
                raise ValueError(f"{source}: unknown option {key!r} (known: {known})")
            if name in values:
                raise ValueError(f"{source}: option {key!r} given twice")
            if name == "required_plugins":
                if value is None:
                    value = []
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{source}: {key} must be a list of plugin names")
                value = list(value)
            elif name == "tolerate_missing_annotation":
                if value is None:
                    value = ""
                if not isinstance(value, str):
                    raise ValueError(f"{source}: {key} must be a string, got {value!r}")
            elif not isinstance(value, bool):
                raise ValueError(f"{source}: {key} must be true or false, got {value!r}")
            values[name] = value
        return cls(**values)

    @classmethod
    def from_yaml(
        cls, text: str, source: str = "default validator config"
    ) -> DefaultValidatorConfig:
        """Parse YAML text with upstream's keys (empty text gives the defaults)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{source}: invalid YAML: {err}") from err
        return cls.from_dict(data, source)


def effective_annotation(pod: pb.PodSandbox, key: str, container: str) -> str | None:
    """Return the pod annotation applying to ``container`` (``GetEffectiveAnnotation``).

    ``<key>/container.<name>`` wins over ``<key>/pod``, which wins over plain ``<key>``.
    """
    for candidate in (f"{key}/container.{container}", f"{key}/pod", key):
        if candidate in pod.annotations:
            return pod.annotations[candidate]
    return None


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _parse_bool(key: str, value: str) -> bool:
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise _Rejected(
        f"invalid {key} annotation {go_quote(value)}: "
        f"strconv.ParseBool: parsing {go_quote(value)}: invalid syntax"
    )


def _parse_plugin_list(key: str, value: str) -> list[str]:
    try:
        # BaseLoader keeps every scalar as its source text, as Go's YAML does for strings.
        data = yaml.load(value, Loader=yaml.BaseLoader)
    except yaml.YAMLError as err:
        raise _Rejected(f"invalid {key} annotation {go_quote(value)}: {err}") from err
    if data is None or data == "":
        return []
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise _Rejected(
            f"invalid {key} annotation {go_quote(value)}: not a YAML list of plugin names"
        )
    return list(data)


class _Rejected(Exception):
    """Internal: the reason of a rejection."""


class RequiredPluginError(ValidationError):
    """A plugin of ``Config.required_plugins`` is not registered (or was just dropped), so
    the container is not created."""

    def __init__(self, message: str, *, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = list(missing)


def missing_plugins(
    required: Sequence[str],
    present: Sequence[tuple[str, str]],
    pod: pb.PodSandbox,
    container: str,
    *,
    tolerate_annotation: str = "",
) -> list[str]:
    """The names in ``required`` (``NN-name`` or ``name``) that none of the ``present``
    ``(idx, name)`` plugins has; none if the pod's ``tolerate_annotation`` is true for the
    container (an invalid value tolerates nothing)."""
    if tolerate_annotation:
        value = effective_annotation(pod, tolerate_annotation, container)
        if value is not None and value in _GO_TRUE:
            return []
    names = {base for _, base in present} | {f"{idx}-{base}" for idx, base in present}
    return [r for r in required if r not in names]


class DefaultValidator:
    """The default validator: rejects what its config restricts.

    ``validate`` does nothing when ``config.enable`` is false (upstream does not even
    start the builtin plugin then).
    """

    def __init__(self, config: DefaultValidatorConfig, name: str = DEFAULT_VALIDATOR_NAME) -> None:
        self.config = config
        self.name = name

    @property
    def enabled(self) -> bool:
        """Whether the validator runs."""
        return self.config.enable

    def validate(self, request: pb.ValidateContainerAdjustmentRequest) -> None:
        """Raise ValidationError if the merged adjustment breaks a configured rule."""
        reason = self.check(request)
        if reason is not None:
            raise ValidationError.rejection(self.name, reason)

    def check(self, request: pb.ValidateContainerAdjustmentRequest) -> str | None:
        """Return the rejection reason (upstream's error text), None if accepted."""
        if not self.config.enable:
            return None
        logger.debug(
            "validating adjustment of container %s/%s/%s",
            request.pod.namespace,
            request.pod.name,
            request.container.name,
        )
        owners = FieldOwners.from_proto(request.owners)
        try:
            self._oci_hooks(request, owners)
            self._seccomp(request, owners)
            self._namespaces(request, owners)
            self._required_plugins(request)
            self._sysctl(request, owners)
        except _Rejected as rejected:
            logger.error("rejecting adjustment: %s", rejected)
            return str(rejected)
        return None

    def _oci_hooks(self, req: pb.ValidateContainerAdjustmentRequest, owners: FieldOwners) -> None:
        if not req.HasField("adjust") or not self.config.reject_oci_hook_adjustment:
            return
        plugins = owners.owner(req.container.id, pb.Field.Value("OciHooks"))
        if plugins is None:
            return
        what = "plugins" if "," in plugins else "plugin"
        raise _Rejected(
            f"{_ERR_VALIDATION}: {what} {go_quote(plugins)} attempted restricted OCI hook injection"
        )

    def _seccomp(self, req: pb.ValidateContainerAdjustmentRequest, owners: FieldOwners) -> None:
        if not req.HasField("adjust"):
            return
        owner = owners.owner(req.container.id, pb.Field.Value("SeccompPolicy"))
        if owner is None:
            return
        linux = req.container.linux
        profile = linux.seccomp_profile if linux.HasField("seccomp_profile") else None
        kind = pb.SecurityProfile.UNCONFINED if profile is None else profile.profile_type
        # The odd double spaces are upstream's.
        if kind == pb.SecurityProfile.UNCONFINED:
            if self.config.reject_unconfined_seccomp_adjustment:
                raise _Rejected(
                    f"{_ERR_VALIDATION}: plugin {owner} attempted restricted "
                    " unconfined seccomp policy adjustment"
                )
        elif kind == pb.SecurityProfile.RUNTIME_DEFAULT:
            if self.config.reject_runtime_default_seccomp_adjustment:
                raise _Rejected(
                    f"{_ERR_VALIDATION}: plugin {owner} attempted restricted "
                    "runtime default seccomp policy adjustment"
                )
        elif kind == pb.SecurityProfile.LOCALHOST and self.config.reject_custom_seccomp_adjustment:
            raise _Rejected(
                f"{_ERR_VALIDATION}: plugin {owner} attempted restricted "
                " custom seccomp policy adjustment"
            )

    def _namespaces(self, req: pb.ValidateContainerAdjustmentRequest, owners: FieldOwners) -> None:
        if not req.HasField("adjust") or not self.config.reject_namespace_adjustment:
            return
        entries = owners.compound_owners(req.container.id, pb.Field.Value("Namespace"))
        if entries is None:
            return
        offenders = ", ".join(
            f"{go_quote(plugin)} (namespace {go_quote(ns)})" for ns, plugin in entries.items()
        )
        raise _Rejected(
            f"{_ERR_VALIDATION}: attempted restricted namespace adjustment by plugin(s) "
            + offenders
        )

    def _sysctl(self, req: pb.ValidateContainerAdjustmentRequest, owners: FieldOwners) -> None:
        if not req.HasField("adjust") or not req.adjust.HasField("linux"):
            return
        if not self.config.reject_sysctl_adjustment:
            return
        offenders = []
        for key in req.adjust.linux.sysctl:
            owner = owners.owner(req.container.id, pb.Field.Value("Sysctl"), key)
            if owner is not None:
                offenders.append(owner)
        if offenders:
            raise _Rejected(
                f"{_ERR_VALIDATION}: attempted restricted sysctl adjustment by plugin(s) "
                + ", ".join(offenders)
            )

    def _required_plugins(self, req: pb.ValidateContainerAdjustmentRequest) -> None:
        container = req.container.name
        required = list(self.config.required_plugins)
        tolerate_key = self.config.tolerate_missing_annotation
        if tolerate_key:
            value = effective_annotation(req.pod, tolerate_key, container)
            if value is not None and _parse_bool(tolerate_key, value):
                return
        value = effective_annotation(req.pod, REQUIRED_PLUGINS_ANNOTATION, container)
        if value is not None:
            required.extend(_parse_plugin_list(REQUIRED_PLUGINS_ANNOTATION, value))
        if not required:
            return
        present = [(plugin.index, plugin.name) for plugin in req.plugins]
        missing = missing_plugins(required, present, req.pod, container)
        if not missing:
            return
        if len(missing) == 1:
            offender = f"required plugin {go_quote(missing[0])}"
        else:
            offender = f"required plugins {go_quote(','.join(missing))}"
        raise _Rejected(f"{_ERR_VALIDATION}: {offender} not present")
