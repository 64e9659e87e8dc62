"""The default validator as a plugin of its own, for runtimes without it built in.

It subscribes to ValidateContainerAdjustment only and runs the runtime-side validator of
``nri.adaptation`` (:class:`~nri.adaptation.DefaultValidator`) on each request, so its
configuration keys, checks and rejection reasons are those of the built-in one (upstream's
``plugins/default-validator``). The runtime reports a rejection as ``validator
"NN-default-validator" rejected container adjustment, reason: validation error: ...``.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Mapping

from nri.adaptation import DefaultValidator, DefaultValidatorConfig
from nri.api import pb
from nri.decode import DecodeError, load_yaml
from nri.stub import Plugin, RequestError

__all__ = [
    "ConfigError",
    "DefaultValidatorPlugin",
    "Rejected",
    "describe",
    "parse_config",
]

log = logging.getLogger("nri.default_validator")


class ConfigError(ValueError):
    """An invalid validator configuration; the one-line message names the source."""


class Rejected(RequestError):
    """A rejected adjustment; the text is the reason the runtime reports."""


def parse_config(
    text: str, source: str = "default-validator configuration"
) -> DefaultValidatorConfig:
    """Parse YAML (or TOML) with the built-in validator's keys.

    Unlike the built-in validator, which the runtime starts only when ``enable`` is true,
    this plugin runs because it was started: ``enable`` defaults to true here, and
    ``enable: false`` makes it accept every adjustment. Empty text gives that default.
    """
    if not text.strip():
        return DefaultValidatorConfig(enable=True)
    try:
        data = load_yaml(text, source=source)
    except DecodeError as exc:
        data, problem = None, str(exc)
    else:
        problem = ""
    if not isinstance(data, Mapping):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            raise ConfigError(
                problem or f"{source}: expected a mapping of options, got {type(data).__name__}"
            ) from None
    try:
        config = DefaultValidatorConfig.from_dict(data, source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if "enable" not in data:
        config = dataclasses.replace(config, enable=True)
    return config


_RULES = (
    ("reject_oci_hook_adjustment", "rejectOCIHookAdjustment"),
    ("reject_runtime_default_seccomp_adjustment", "rejectRuntimeDefaultSeccompAdjustment"),
    ("reject_unconfined_seccomp_adjustment", "rejectUnconfinedSeccompAdjustment"),
    ("reject_custom_seccomp_adjustment", "rejectCustomSeccompAdjustment"),
    ("reject_namespace_adjustment", "rejectNamespaceAdjustment"),
    ("reject_sysctl_adjustment", "rejectSysctlAdjustment"),
)


def describe(config: DefaultValidatorConfig) -> str:
    """The rules in force, in upstream's keys, on one line."""
    parts = [key for name, key in _RULES if getattr(config, name)]
    if config.required_plugins:
        parts.append("requiredPlugins=" + ",".join(config.required_plugins))
    if config.tolerate_missing_annotation:
        parts.append("tolerateMissingPluginsAnnotation=" + config.tolerate_missing_annotation)
    return " ".join(parts) or "nothing restricted"


class DefaultValidatorPlugin(Plugin):
    """Reject the container adjustments the configured default validator rules forbid."""

    def __init__(self, config: DefaultValidatorConfig | None = None) -> None:
        """Start with ``config`` (default: enabled, nothing restricted)."""
        self.validator = DefaultValidator(config or DefaultValidatorConfig(enable=True))

    @property
    def config(self) -> DefaultValidatorConfig:
        """The configuration in force."""
        return self.validator.config

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            self.validator.config = parse_config(config)
        if not self.validator.enabled:
            log.warning("configured with enable: false; accepting every adjustment")
        else:
            log.info(
                "validating for %s %s: %s", runtime_name, runtime_version, describe(self.config)
            )

    def validate_container_adjustment(self, request: pb.ValidateContainerAdjustmentRequest) -> None:
        """Raise :class:`Rejected` with upstream's reason if a rule forbids the adjustment."""
        reason = self.validator.check(request)
        if reason is not None:
            raise Rejected(reason)
