"""What a rule matches on: the facts of one container, patterns, key matchers, QoS class.

Name patterns are globs (``fnmatch``: ``*``, ``?``, ``[abc]``; a string without those is an
exact name) or RE2 regular expressions (the syntax Go and Kubernetes use), which match the
whole value. RE2 runs in linear time, so a long, hostile label or annotation value cannot
stall the plugin whatever the pattern.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

from nri.api import pb

__all__ = [
    "CONTAINERD_IMAGE_ANNOTATION",
    "CRIO_IMAGE_ANNOTATION",
    "QOS_CLASSES",
    "ContainerFacts",
    "KeyMatcher",
    "Pattern",
    "PatternError",
    "compile_regex",
    "container_facts",
    "qos_class",
]

CONTAINERD_IMAGE_ANNOTATION = "io.kubernetes.cri.image-name"
"""The container annotation in which containerd's CRI plugin passes the image name."""
CRIO_IMAGE_ANNOTATION = "io.kubernetes.cri-o.ImageName"
"""The container annotation in which CRI-O passes the image name."""
QOS_CLASSES = ("Guaranteed", "Burstable", "BestEffort")
"""Kubernetes QoS classes."""

# kubelet's oom_score_adj per QoS class (Burstable ones lie in between).
_GUARANTEED_OOM_SCORE = -997
_BEST_EFFORT_OOM_SCORE = 1000
_MIN_CPU_SHARES = 2  # what kubelet gives a container without a CPU request


class PatternError(ValueError):
    """A pattern that does not compile; the message says why."""


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors are reported as exceptions, not on stderr
    return options


_OPTIONS = _re2_options()


def compile_regex(text: str) -> Any:
    """Compile an RE2 regular expression; PatternError with RE2's reason if invalid."""
    try:
        return re2.compile(text, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(f"invalid regex {text!r}: {reason}") from None


@dataclass(frozen=True)
class Pattern:
    """A name pattern: a glob (exact when it has no wildcard) or a whole-value regex."""

    text: str
    regex: bool = False
    _compiled: Any = field(default=None, compare=False, repr=False)
    _literal: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.regex and not any(c in self.text for c in "*?["):
            object.__setattr__(self, "_literal", self.text)

    @classmethod
    def glob(cls, text: str) -> Pattern:
        """A glob pattern (exact match without ``*``, ``?`` or ``[``)."""
        return cls(text)

    @classmethod
    def re(cls, text: str) -> Pattern:
        """A regex matching the whole value; raises PatternError if it does not compile."""
        return cls(text, True, compile_regex(text))

    @property
    def literal(self) -> str | None:
        """The one value this pattern matches, if it is an exact name."""
        return self._literal

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches."""
        if self._literal is not None:
            return value == self._literal
        if self.regex:
            return self._compiled.fullmatch(value) is not None
        return fnmatch.fnmatchcase(value, self.text)

    def __str__(self) -> str:
        return f"regex {self.text!r}" if self.regex else repr(self.text)


def any_matches(patterns: Sequence[Pattern], value: str) -> bool:
    """Whether any of ``patterns`` matches ``value``."""
    return any(p.matches(value) for p in patterns)


def disjoint_patterns(a: Sequence[Pattern], b: Sequence[Pattern]) -> bool:
    """Whether no value can match both pattern lists (decided where one side is all names)."""
    names_a = {p.literal for p in a}
    names_b = {p.literal for p in b}
    if None not in names_a and None not in names_b:
        return not names_a & names_b
    for side, other in ((a, b), (b, a)):
        names = [p.literal for p in side]
        if all(n is not None for n in names):
            return not any(any_matches(other, n) for n in names if n is not None)
    return False


@dataclass(frozen=True)
class KeyMatcher:
    """A condition on one label or annotation: it exists (or not), equals, or matches."""

    key: str
    exists: bool = True
    equals: str | None = None
    regex: Pattern | None = None

    def matches(self, values: Mapping[str, str]) -> bool:
        """Whether ``values`` (labels or annotations) satisfy the condition."""
        value = values.get(self.key)
        if value is None:
            return not self.exists
        if not self.exists:
            return False
        if self.equals is not None:
            return value == self.equals
        if self.regex is not None:
            return self.regex.matches(value)
        return True

    def describe(self) -> str:
        """The condition in words, for explanations."""
        if not self.exists:
            return f"{self.key!r} absent"
        if self.equals is not None:
            return f"{self.key!r} = {self.equals!r}"
        if self.regex is not None:
            return f"{self.key!r} matching {self.regex}"
        return f"{self.key!r} present"

    def disjoint(self, other: KeyMatcher) -> bool:
        """Whether no label set can satisfy both (same key only)."""
        if self.key != other.key:
            return False
        if self.exists != other.exists:
            return True
        if self.equals is not None and other.equals is not None:
            return self.equals != other.equals
        for fixed, pattern in ((self.equals, other.regex), (other.equals, self.regex)):
            if fixed is not None and pattern is not None:
                return not pattern.matches(fixed)
        return False


@dataclass(frozen=True)
class ContainerFacts:
    """Everything a rule may match on, for one container of one pod."""

    namespace: str
    pod: str
    container: str
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    container_labels: Mapping[str, str] = field(default_factory=dict)
    container_annotations: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    runtime_handler: str = ""
    qos_class: str = ""

    def describe(self) -> str:
        """One line naming the container and the derived facts."""
        extra = [f"QoS {self.qos_class or 'unknown'}"]
        if self.image:
            extra.insert(0, f"image {self.image}")
        if self.runtime_handler:
            extra.append(f"runtime handler {self.runtime_handler}")
        return f"pod {self.namespace}/{self.pod}, container {self.container} ({', '.join(extra)})"


def _qos_from_cgroup_parent(parent: str) -> str | None:
    # kubelet's cgroup layout: kubepods/{burstable,besteffort}/pod<uid> (cgroupfs) or
    # kubepods-burstable-pod<uid>.slice (systemd); Guaranteed pods sit right under kubepods.
    if "kubepods" not in parent:
        return None
    lowered = parent.lower()
    if "besteffort" in lowered:
        return "BestEffort"
    if "burstable" in lowered:
        return "Burstable"
    return "Guaranteed"


def qos_class(pod: pb.PodSandbox, container: pb.Container) -> str:
    """The pod's Kubernetes QoS class as far as the runtime's data shows it.

    In order: the pod's cgroup parent (kubelet places pods by class), the container's OOM
    score adjustment (kubelet sets -997 for Guaranteed, 1000 for BestEffort), then the
    container's resources (no memory limit, no CPU quota and minimal shares: BestEffort;
    a memory limit and a CPU quota whose shares equal it: Guaranteed; else Burstable).
    """
    found = _qos_from_cgroup_parent(pod.linux.cgroup_parent)
    if found is not None:
        return found
    linux = container.linux
    if linux.HasField("oom_score_adj"):
        score = linux.oom_score_adj.value
        if score == _GUARANTEED_OOM_SCORE:
            return "Guaranteed"
        if score == _BEST_EFFORT_OOM_SCORE:
            return "BestEffort"
        if _GUARANTEED_OOM_SCORE < score < _BEST_EFFORT_OOM_SCORE:
            return "Burstable"
    resources = linux.resources
    memory = resources.memory.limit.value if resources.memory.HasField("limit") else 0
    quota = resources.cpu.quota.value if resources.cpu.HasField("quota") else 0
    period = resources.cpu.period.value if resources.cpu.HasField("period") else 100_000
    shares = resources.cpu.shares.value if resources.cpu.HasField("shares") else 0
    if memory <= 0 and quota <= 0 and shares <= _MIN_CPU_SHARES:
        return "BestEffort"
    if memory > 0 and quota > 0 and period > 0 and shares == quota * 1024 // period:
        return "Guaranteed"
    return "Burstable"


def container_facts(pod: pb.PodSandbox, container: pb.Container) -> ContainerFacts:
    """The facts rules match on, from a CreateContainer (or UpdateContainer) request."""
    annotations = dict(container.annotations)
    image = annotations.get(CONTAINERD_IMAGE_ANNOTATION) or annotations.get(
        CRIO_IMAGE_ANNOTATION, ""
    )
    return ContainerFacts(
        namespace=pod.namespace,
        pod=pod.name,
        container=container.name,
        pod_labels=dict(pod.labels),
        pod_annotations=dict(pod.annotations),
        container_labels=dict(container.labels),
        container_annotations=annotations,
        image=image,
        runtime_handler=pod.runtime_handler,
        qos_class=qos_class(pod, container),
    )
