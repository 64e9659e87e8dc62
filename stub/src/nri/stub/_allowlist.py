"""Which pods may request injection: a namespace and pod-label allowlist for injector plugins.

Every annotation-driven plugin takes the same ``allow`` section in its configuration:

.. code-block:: yaml

    allow:
      namespaces: [gpu-jobs, "ml-*"]     # exact names and fnmatch globs; absent: any
      pod-selector:                      # Kubernetes LabelSelector; absent: any pod
        matchLabels: {team: ml}
        matchExpressions:
          - {key: tier, operator: In, values: [batch, train]}
      on-denied: refuse                  # or ignore (one log line, no injection)

The selector takes the structured form of Kubernetes manifests (``matchLabels`` and
``matchExpressions`` with ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``) rather than the
``app=x,tier in (a,b)`` string form: operators copy it from existing objects, and each field is
checked on its own with an error naming it. No ``allow`` section allows every pod, as upstream.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from nri.stub._cli import load_config_fields
from nri.stub._errors import ConfigError, RequestError

__all__ = [
    "ALLOW_KEY",
    "Allowlist",
    "InjectionDenied",
    "LabelRequirement",
    "load_config_with_allowlist",
    "parse_allowlist",
]

ALLOW_KEY = "allow"
"""The configuration field holding the :class:`Allowlist`."""

T = TypeVar("T")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class InjectionDenied(RequestError):
    """A pod outside the allowlist asked for injection (the request fails)."""


@dataclass(frozen=True)
class LabelRequirement:
    """One Kubernetes label requirement (``matchLabels`` entries are ``In`` with one value)."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (Kubernetes semantics)."""
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values


@dataclass(frozen=True)
class Allowlist:
    """Namespaces (None: any) and pod label requirements (None: any pod) allowed to ask."""

    namespaces: tuple[str, ...] | None = None
    pod_selector: tuple[LabelRequirement, ...] | None = None
    on_denied: Literal["refuse", "ignore"] = "refuse"

    @property
    def allows_all(self) -> bool:
        """Whether nothing is restricted (the default)."""
        return self.namespaces is None and not self.pod_selector

    def allows(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a pod in ``namespace`` with ``labels`` may request injection."""
        if self.namespaces is not None and not any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces
        ):
            return False
        return all(r.matches(labels) for r in self.pod_selector or ())

    def check(self, pod: Any, what: str, log: Any) -> bool:
        """True when ``pod`` (a PodSandbox) may have ``what`` (e.g. ``annotation 'x'``).

        A denied pod raises :class:`InjectionDenied` naming pod, namespace and ``what``
        (``on-denied: refuse``) or is logged once and gets False (``ignore``).
        """
        if self.allows(pod.namespace, pod.labels):
            return True
        message = (
            f"pod {pod.name!r} in namespace {pod.namespace!r} may not request injection "
            f"({what}): not in the plugin's allowlist"
        )
        if self.on_denied == "refuse":
            raise InjectionDenied(message)
        log.warning("%s; ignoring it", message)
        return False


def _strings(value: Any, where: str, *, empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings, got {value!r}")
    if not empty and not value:
        raise ConfigError(f"{where}: must not be empty")
    return tuple(value)


def _mapping(value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    for key in value:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {', '.join(known)})")
    return value


def _selector(value: Any, where: str) -> tuple[LabelRequirement, ...]:
    section = _mapping(value, where, ("matchLabels", "matchExpressions"))
    requirements = []
    match_labels = section.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        raise ConfigError(f"{where}.matchLabels: expected a mapping, got {match_labels!r}")
    for key, label in match_labels.items():
        if not isinstance(label, str):
            raise ConfigError(
                f"{where}.matchLabels.{key}: expected a string (quote it), got {label!r}"
            )
        requirements.append(LabelRequirement(str(key), "In", (label,)))
    expressions = section.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise ConfigError(f"{where}.matchExpressions: expected a list, got {expressions!r}")
    for i, item in enumerate(expressions):
        at = f"{where}.matchExpressions[{i}]"
        entry = _mapping(item, at, ("key", "operator", "values"))
        key, operator = entry.get("key"), entry.get("operator")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{at}.key: expected a non-empty string, got {key!r}")
        if operator not in OPERATORS:
            raise ConfigError(
                f"{at}.operator: expected one of {', '.join(OPERATORS)}, got {operator!r}"
            )
        values = _strings(entry.get("values", []), f"{at}.values")
        if operator in ("In", "NotIn") and not values:
            raise ConfigError(f"{at}.values: operator {operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise ConfigError(f"{at}.values: operator {operator} takes no values")
        requirements.append(LabelRequirement(key, operator, values))
    return tuple(requirements)


def parse_allowlist(value: Any, where: str) -> Allowlist:
    """The :class:`Allowlist` of a decoded ``allow`` section; ConfigError naming ``where``."""
    section = _mapping(
        value, where, ("namespaces", "pod-selector", "podSelector", "on-denied", "onDenied")
    )
    namespaces = section.get("namespaces")
    selector = section.get("pod-selector", section.get("podSelector"))
    on_denied = section.get("on-denied", section.get("onDenied", "refuse"))
    if on_denied not in ("refuse", "ignore"):
        raise ConfigError(f"{where}.on-denied: expected refuse or ignore, got {on_denied!r}")
    return Allowlist(
        namespaces=None if namespaces is None else _strings(namespaces, f"{where}.namespaces"),
        pod_selector=None if selector is None else _selector(selector, f"{where}.pod-selector"),
        on_denied=on_denied,
    )


@functools.cache
def _raw_schema(schema: type[Any]) -> type[Any]:
    """``schema`` with its ``allow`` field taking the raw decoded section."""
    hints = typing.get_type_hints(schema)
    fields: list[Any] = []
    for f in dataclasses.fields(schema):
        hint = Any if f.name == ALLOW_KEY else hints[f.name]
        if f.name == ALLOW_KEY:
            default: Any = field(default=None)
        elif f.default_factory is not dataclasses.MISSING:
            default = field(default_factory=f.default_factory)
        else:
            default = field(default=f.default)
        fields.append((f.name, hint, default))
    return dataclasses.make_dataclass(schema.__name__, fields)


def load_config_with_allowlist(text: str, schema: type[T], *, source: str) -> T:
    """:func:`~nri.stub.load_config` for a dataclass with an ``allow: Allowlist`` field."""
    raw, _ = load_config_fields(text, _raw_schema(typing.cast(Any, schema)), source=source)
    values = {f.name: getattr(raw, f.name) for f in dataclasses.fields(raw)}
    values[ALLOW_KEY] = parse_allowlist(values[ALLOW_KEY], f"{source}: {ALLOW_KEY}")
    return schema(**values)
