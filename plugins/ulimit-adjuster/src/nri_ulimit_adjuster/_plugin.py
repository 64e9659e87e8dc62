"""The ulimit-adjuster plugin: set a container's POSIX rlimits from a pod annotation.

Like upstream, only container-specific keys exist:
``ulimits.noderesource.dev/container.NAME``, then the deprecated
``ulimits.nri.containerd.io/container.NAME``. The value is a YAML list of
``{type, soft, hard}``; ``type`` may be upper or lower case, with or without ``RLIMIT_``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from nri.api import Adjustment, pb
from nri.stub import Plugin, load_config

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

_UINT64_MAX = (1 << 64) - 1


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


def annotation_keys(container: str) -> tuple[str, str]:
    """The keys looked up for ``container``, preferred first."""
    return f"{ULIMIT_KEY}/container.{container}", f"{OLD_ULIMIT_KEY}/container.{container}"


def normalize_type(name: str) -> str | None:
    """``RLIMIT_<NAME>`` for an accepted spelling of a resource name, else None."""
    bare = name.upper().removeprefix(RLIMIT_PREFIX)
    return RLIMIT_PREFIX + bare if bare in RLIMIT_TYPES else None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


def _limit(key: str, index: int, fields: Mapping[str, Any], name: str) -> int:
    value = fields.get(name)
    if value is None:  # upstream reads a missing limit as 0
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise UlimitError(
            key, f"{name!r} must be an unsigned integer, got {_describe(value)}", index
        )
    if not 0 <= value <= _UINT64_MAX:
        raise UlimitError(key, f"{name!r} is out of range for uint64: {value}", index)
    return value


def parse_ulimits(annotations: Mapping[str, str], container: str) -> list[Ulimit]:
    """The ulimits annotated for ``container`` (empty if none); raises UlimitError."""
    key = value = ""
    for key in annotation_keys(container):
        if key in annotations:
            value = annotations[key]
            break
    if not value:
        return []
    try:
        document = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise UlimitError(key, f"invalid YAML: {' '.join(str(exc).split())}") from exc
    if document is None:
        return []
    if not isinstance(document, list):
        raise UlimitError(key, f"expected a YAML list of ulimits, got {_describe(document)}")
    ulimits = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise UlimitError(key, f"expected a mapping, got {_describe(item)}", index)
        # Go's encoding/json matches field names case-insensitively and ignores unknown ones.
        fields = {str(k).lower(): v for k, v in item.items()}
        raw = fields.get("type")
        if raw is not None and not isinstance(raw, str):
            raise UlimitError(key, f"'type' must be a string, got {_describe(raw)}", index)
        hard = _limit(key, index, fields, "hard")
        soft = _limit(key, index, fields, "soft")
        normalized = normalize_type(raw or "")
        if normalized is None:
            raise UlimitError(key, f"failed to parse type: {raw or ''!r}", index)
        ulimits.append(Ulimit(normalized, hard, soft))
    for index, ulimit in enumerate(ulimits):
        if ulimit.hard < ulimit.soft:
            raise UlimitError(
                key, f"ulimit {ulimit.type!r} must have hard limit >= soft limit", index
            )
    return ulimits


def build_adjustment(ulimits: list[Ulimit]) -> Adjustment:
    """An adjustment adding every ulimit, in order."""
    adjust = Adjustment()
    for ulimit in ulimits:
        adjust.add_rlimit(ulimit.type, ulimit.hard, ulimit.soft)
    return adjust


class UlimitAdjuster(Plugin):
    """Adjust container rlimits from ``ulimits.noderesource.dev/container.NAME``."""

    def __init__(self, config: Config | None = None, **overrides: bool) -> None:
        """Create the plugin; ``overrides`` (command-line flags) win over any configuration."""
        self.overrides = overrides
        self.config = dataclasses.replace(config or Config(), **overrides)

    def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the configuration the runtime (or ``--config``) provides, if any."""
        if config.strip():
            parsed = load_config(config, Config, source="ulimit-adjuster configuration")
            self.config = dataclasses.replace(parsed, **self.overrides)

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        """Return the annotated rlimits; an invalid annotation fails the creation."""
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
