"""The rdt plugin: a container's Intel RDT settings from pod annotations.

As upstream, only container-scoped keys exist, ``FIELD.rdt.noderesource.dev/container.NAME``
with FIELD one of ``closid`` (a string), ``schemata`` (strings separated by ``,``) and
``enablemonitoring`` (a Go boolean). There is no older key prefix and no pod-wide key.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nri.adaptation import go_quote
from nri.api import Adjustment, pb
from nri.stub import Allowlist, Plugin, load_config_with_allowlist

__all__ = [
    "FIELDS",
    "RDT_KEY_DOMAIN",
    "Config",
    "RdtAnnotationError",
    "RdtPlugin",
    "RdtSettings",
    "build_adjustment",
    "go_parse_bool",
    "parse_config",
    "parse_rdt",
    "requested_keys",
]

log = logging.getLogger("nri.rdt")

RDT_KEY_DOMAIN = "rdt.noderesource.dev"
"""Keys are ``<field>.rdt.noderesource.dev/container.<container name>``."""

FIELDS = ("closid", "schemata", "enablemonitoring")
"""The fields upstream knows; other ``*.rdt.noderesource.dev`` fields are logged and ignored."""

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass
class Config:
    """Configuration of the rdt plugin (YAML); the default is upstream's behaviour."""

    allow: Allowlist = field(default_factory=Allowlist)
    """Which namespaces and pods may request RDT settings (default: all)."""


def parse_config(text: str, source: str) -> Config:
    """Parse a YAML configuration (``allow`` included); ConfigError naming ``source``."""
    return load_config_with_allowlist(text, Config, source=source)


class RdtAnnotationError(ValueError):
    """An annotation value upstream rejects; the message names the key and ends with Go's
    error text (``strconv.ParseBool: parsing "x": invalid syntax``)."""

    def __init__(self, key: str, value: str, problem: str) -> None:
        self.key = key
        self.value = value
        self.problem = problem
        super().__init__(f"annotation {key}={go_quote(value)}: {problem}")


def go_parse_bool(value: str) -> bool:
    """Parse ``value`` like Go's ``strconv.ParseBool``; ValueError carries Go's message."""
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(value)}: invalid syntax")


@dataclass
class RdtSettings:
    """The RDT fields annotated for one container (None: not annotated)."""

    clos_id: str | None = None
    schemata: list[str] | None = None
    enable_monitoring: bool | None = None
    unknown: list[str] = field(default_factory=list)
    """Field names of ``*.rdt.noderesource.dev/container.NAME`` keys upstream does not know."""

    def __bool__(self) -> bool:
        return (
            self.clos_id is not None
            or self.schemata is not None
            or self.enable_monitoring is not None
        )


def requested_keys(annotations: Mapping[str, str], container: str) -> list[str]:
    """The ``*.rdt.noderesource.dev/container.NAME`` keys annotated for ``container``."""
    suffix = f".{RDT_KEY_DOMAIN}/container.{container}"
    return sorted(key for key in annotations if key.endswith(suffix))


def parse_rdt(annotations: Mapping[str, str], container: str) -> RdtSettings:
    """Collect the RDT settings annotated for ``container``; raises RdtAnnotationError."""
    suffix = f".{RDT_KEY_DOMAIN}/container.{container}"
    settings = RdtSettings()
    for key, value in annotations.items():
        if not key.endswith(suffix):
            continue
        name = key[: -len(suffix)]
        if name == "closid":
            settings.clos_id = value
        elif name == "schemata":
            settings.schemata = value.split(",")
        elif name == "enablemonitoring":
            try:
                settings.enable_monitoring = go_parse_bool(value)
            except ValueError as exc:
                raise RdtAnnotationError(key, value, str(exc)) from None
        else:
            settings.unknown.append(name)
    return settings


def build_adjustment(settings: RdtSettings) -> Adjustment:
    """The adjustment setting every annotated field (empty when none is)."""
    adjust = Adjustment()
    if settings.clos_id is not None:
        adjust.set_linux_rdt_clos_id(settings.clos_id)
    if settings.schemata is not None:
        adjust.set_linux_rdt_schemata(settings.schemata)
    if settings.enable_monitoring is not None:
        adjust.set_linux_rdt_enable_monitoring(settings.enable_monitoring)
    return adjust


class RdtPlugin(Plugin):
    """Set ``linux.intelRdt`` of created containers from ``*.rdt.noderesource.dev`` keys."""

    def __init__(self, config: Config | None = None, **overrides: Any) -> None:
        """Create the plugin; ``overrides`` win over any configuration received later."""
        self.overrides = overrides
        self.config = dataclasses.replace(config or Config(), **overrides)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            parsed = parse_config(config, "rdt configuration")
            self.config = dataclasses.replace(parsed, **self.overrides)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        """Return the annotated RDT settings; an invalid boolean fails the creation.

        A pod outside the ``allow`` list that annotates RDT settings is refused, or gets
        none (``on-denied: ignore``).
        """
        where = f"{pod.namespace}/{pod.name}/{container.name}"
        log.debug("%s: create container", where)
        if not self.config.allow.allows_all:
            keys = requested_keys(pod.annotations, container.name)
            if keys and not self.config.allow.check(pod, f"annotation {keys[0]!r}", log):
                return Adjustment()
        # an RdtAnnotationError (a ValueError) fails the request; the stub logs it
        settings = parse_rdt(pod.annotations, container.name)
        for name in settings.unknown:
            log.info("%s: unknown rdt field %r", where, name)
        if settings.clos_id is not None:
            log.info("%s: adjusting closid to %r", where, settings.clos_id)
        if settings.schemata is not None:
            log.info("%s: adjusting schemata to %s", where, settings.schemata)
        if settings.enable_monitoring is not None:
            log.info(
                "%s: adjusting enablemonitoring to %s",
                where,
                str(settings.enable_monitoring).lower(),
            )
        # Upstream replies with an (possibly empty) adjustment in every case.
        return build_adjustment(settings)
