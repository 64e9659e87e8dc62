"""The differ's configuration: indices, output and verbosity (upstream's YAML keys)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from nri.decode import DecodeError, load_yaml
from nri.stub import ConfigError, load_config

DEFAULT_INDICES = "0,99"


@dataclass
class DifferConfig:
    """How the differ runs; YAML keys as upstream (``verboseLevel``) or snake/kebab case."""

    indices: str | list[int] = DEFAULT_INDICES
    """Indices to register at, e.g. ``"0,50,99"``; at least two."""
    log_file: str = ""
    """Append the log to this file instead of stderr."""
    verbose_level: int = 0
    """0: changes only; 1: also the data first seen; 2: also data before and after each
    diff; 3: also everything Synchronize brings."""
    yaml: bool = False
    """Print a unified YAML diff instead of changed field paths."""

    def index_list(self, source: str = "config") -> list[str]:
        """The indices as sorted two-digit strings; ConfigError if fewer than two or bad."""
        return parse_indices(self.indices, source)


def parse_indices(spec: str | list[int], source: str = "--indices") -> list[str]:
    """Parse ``"0,50,99"`` (or a list of ints) into ``["00", "50", "99"]``.

    Raises ConfigError naming ``source`` for non-numbers, values outside 0..99,
    duplicates, or fewer than two indices.
    """
    items = [str(i) for i in spec] if isinstance(spec, list) else spec.split(",")
    values: list[int] = []
    for item in items:
        word = item.strip()
        if not word.isdigit() or int(word) > 99:
            raise ConfigError(f"{source}: invalid plugin index {word!r} (expected 0..99)")
        if int(word) in values:
            raise ConfigError(f"{source}: index {int(word):02d} given twice")
        values.append(int(word))
    if len(values) < 2:
        raise ConfigError(f"{source}: give at least two indices (got {spec!r})")
    return [f"{v:02d}" for v in sorted(values)]


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def parse_config(text: str, *, source: str = "config") -> tuple[DifferConfig, set[str]]:
    """Parse YAML ``text`` into a DifferConfig and the set of fields it gave.

    Raises ConfigError naming ``source`` and the offending key.
    """
    try:
        document: Any = load_yaml(text, source=source) if text.strip() else None
    except DecodeError as exc:
        raise ConfigError(str(exc)) from None
    if isinstance(document, dict):
        document = {_CAMEL.sub(r"_\1", str(k)).lower(): v for k, v in document.items()}
        text = yaml.safe_dump(document)
    config = load_config(text, DifferConfig, source=source)
    if config.verbose_level < 0 or config.verbose_level > 3:
        raise ConfigError(f"{source}: verboseLevel must be 0..3, got {config.verbose_level}")
    given = {k.replace("-", "_") for k in document} if isinstance(document, dict) else set()
    if "indices" in given:
        config.index_list(f"{source}: indices")
    return config, given
