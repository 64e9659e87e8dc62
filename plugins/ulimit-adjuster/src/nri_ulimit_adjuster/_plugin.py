"""The ulimit-adjuster plugin: set a container's POSIX rlimits from a pod annotation.

Like upstream, only container-specific keys exist:
``ulimits.noderesource.dev/container.NAME``, then the deprecated
``ulimits.nri.containerd.io/container.NAME``. The value is a YAML list of
``{type, soft, hard}``; ``type`` may be upper or lower case, with or without ``RLIMIT_``.
Values are decoded with upstream's Go typing (:mod:`nri.decode`): ``soft: 1024.0`` and
``hard: 2e3`` are integers, ``type: 7`` is the string ``"7"``, ``1024.5`` is refused.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nri.api import Adjustment, pb
from nri.decode import (
    DecodeError,
    Int,
    Str,
    Struct,
    describe,
    from_yaml,
    load_annotation,
)
from nri.stub import Allowlist, Plugin, load_config_with_allowlist

__all__ = [
    "OLD_ULIMIT_KEY",
    "RLIMIT_PREFIX",
    "RLIMIT_TYPES",
    "ULIMIT_KEY",
    "Config",
    "ContainerUlimitError",
    "Ulimit",
    "UlimitAdjuster",
    "UlimitError",
    "annotation_keys",
    "build_adjustment",
    "normalize_type",
    "parse_config",
    "parse_ulimits",
]

log = logging.getLogger("nri.ulimit_adjuster")

ULIMIT_KEY = "ulimits.noderesource.dev"
OLD_ULIMIT_KEY = "ulimits.nri.containerd.io"
RLIMIT_PREFIX = "RLIMIT_"
RLIMIT_TYPES = frozenset(
    {
        "AS",
        "CORE",
        "CPU",
        "DATA",
        "FSIZE",
        "LOCKS",
        "MEMLOCK",
        "MSGQUEUE",
        "NICE",
        "NOFILE",
        "NPROC",
        "RSS",
        "RTPRIO",
        "RTTIME",
        "SIGPENDING",
        "STACK",
    }
)
"""Resource names upstream accepts, without the ``RLIMIT_`` prefix."""

_ULIMIT = Struct(
    "ulimit", {"type": Str(), "hard": Int(64, signed=False), "soft": Int(64, signed=False)}
)


class UlimitError(ValueError):
    """An invalid ulimit annotation; the message names the key, the entry and the problem."""

    def __init__(self, key: str, problem: str, entry: int | None = None) -> None:
        self.key = key
        self.problem = problem
        self.entry = entry
        where = f"annotation {key!r}" + (f", entry #{entry}" if entry is not None else "")
        super().__init__(f"{where}: {problem}")


class ContainerUlimitError(ValueError):
    """A container's creation fails: names pod, container, annotation key and problem."""


@dataclass(frozen=True, slots=True)
class Ulimit:
    """One rlimit: its normalized type (e.g. ``RLIMIT_NOFILE``) and limits."""

    type: str
    hard: int
    soft: int


@dataclass
class Config:
    """Configuration of the ulimit-adjuster (YAML)."""

    verbose: bool = False
    """Log parsed annotations and the resulting adjustment at info level."""
    allow: Allowlist = field(default_factory=Allowlist)
    """Which namespaces and pods may request rlimits (default: all)."""


def parse_config(text: str, source: str) -> Config:
    """Parse a YAML configuration (``allow`` included); ConfigError naming ``source``."""
    return load_config_with_allowlist(text, Config, source=source)


def annotation_keys(container: str) -> tuple[str, str]:
    """The keys looked up for ``container``, preferred first."""
    return f"{ULIMIT_KEY}/container.{container}", f"{OLD_ULIMIT_KEY}/container.{container}"


def normalize_type(name: str) -> str | None:
    """``RLIMIT_<NAME>`` for an accepted spelling of a resource name, else None."""
    bare = name.upper().removeprefix(RLIMIT_PREFIX)
    return RLIMIT_PREFIX + bare if bare in RLIMIT_TYPES else None


def _decode(key: str, text: str) -> Any:
    try:
        return load_annotation(key, text)
    except DecodeError as exc:
        raise UlimitError(key, f"invalid YAML: {exc.problem}") from None


def parse_ulimits(annotations: Mapping[str, str], container: str) -> list[Ulimit]:
    """The ulimits annotated for ``container`` (empty if none); raises UlimitError.

    Errors come in upstream's order: an invalid type in any entry, then hard < soft; a
    resource given twice is reported here (upstream's runtime refuses it as a conflict of
    the plugin with itself).
    """
    key = value = ""
    for key in annotation_keys(container):
        if key in annotations:
            value = annotations[key]
            break
    if not value:
        return []
    document = _decode(key, value)
    if document is None:
        return []
    if not isinstance(document, list):
        raise UlimitError(key, f"expected a YAML list of ulimits, got {describe(document)}")
    ulimits = []
    for index, item in enumerate(document):
        if item is not None and not isinstance(item, dict):
            raise UlimitError(key, f"expected a mapping, got {describe(item)}", index)
        try:
            fields = from_yaml(item, _ULIMIT, source=key)
        except DecodeError as exc:
            raise UlimitError(key, exc.problem, index) from None
        normalized = normalize_type(fields["type"])
        if normalized is None:
            raise UlimitError(key, f"failed to parse type: {fields['type']!r}", index)
        ulimits.append(Ulimit(normalized, fields["hard"], fields["soft"]))
    for index, ulimit in enumerate(ulimits):
        if ulimit.hard < ulimit.soft:
            raise UlimitError(
                key, f"ulimit {ulimit.type!r} must have hard limit >= soft limit", index
            )
    first: dict[str, int] = {}
    for index, ulimit in enumerate(ulimits):
        if ulimit.type in first:
            raise UlimitError(
                key, f"{ulimit.type} is given twice (entries #{first[ulimit.type]} and #{index})"
            )
        first[ulimit.type] = index
    return ulimits


def build_adjustment(ulimits: list[Ulimit]) -> Adjustment:
    """An adjustment adding every ulimit, in order."""
    adjust = Adjustment()
    for ulimit in ulimits:
        adjust.add_rlimit(ulimit.type, ulimit.hard, ulimit.soft)
    return adjust


class UlimitAdjuster(Plugin):
    """Adjust container rlimits from ``ulimits.noderesource.dev/container.NAME``."""

    def __init__(self, config: Config | None = None, **overrides: Any) -> None:
        """Create the plugin; ``overrides`` (command-line flags) win over any configuration."""
        self.overrides = overrides
        self.config = dataclasses.replace(config or Config(), **overrides)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            parsed = parse_config(config, "ulimit-adjuster configuration")
            self.config = dataclasses.replace(parsed, **self.overrides)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        """Return the annotated rlimits; an invalid annotation fails the creation."""
        if not self.config.allow.allows_all:
            requested = [k for k in annotation_keys(container.name) if k in pod.annotations]
            if requested and not self.config.allow.check(pod, f"annotation {requested[0]!r}", log):
                return Adjustment()
        try:
            ulimits = parse_ulimits(pod.annotations, container.name)
        except UlimitError as exc:
            raise ContainerUlimitError(
                f"pod {pod.namespace}/{pod.name}, container {container.name}: {exc}"
            ) from exc
        level = logging.INFO if self.config.verbose else logging.DEBUG
        for ulimit in ulimits:
            log.log(
                level,
                "%s/%s: adjusting %s: soft %d, hard %d",
                pod.name,
                container.name,
                ulimit.type,
                ulimit.soft,
                ulimit.hard,
            )
        return build_adjustment(ulimits)
