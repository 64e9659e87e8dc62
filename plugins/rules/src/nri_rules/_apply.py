"""Applying rules: one adjustment (or update) per matching rule, merged as the runtime would.

Every matching rule's changes are built with the :mod:`nri.api` builders and merged in rule
order by the adaptation's own merging (:class:`nri.adaptation.CreateResult`), each rule
standing for a plugin of its own. So two rules that set the same field of one container
conflict exactly where two plugins would, and the creation fails with a message naming
both rules. The same check runs at load time on every pair of rules that might match one
container: a conflict that must happen (one of the two rules matches every container, or
both have the same conditions) is an error, one that may happen is a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nri_device_injector import AnnotationError, DeviceEntry, resolve_device
from nri_device_injector import Config as DeviceConfig

from nri.adaptation import AdjustmentError, ConflictError, CreateResult, UpdateResult, field_name
from nri.api import Adjustment, Update, make_linux_device, pb
from nri_rules._match import ContainerFacts
from nri_rules._rules import Rule, RuleActions, RulesError, RuleSet, read_rules

__all__ = [
    "MAX_WARNINGS",
    "DeviceResolver",
    "Outcome",
    "RuleApplyError",
    "RuleConflictError",
    "build_adjustment",
    "build_update",
    "evaluate_create",
    "evaluate_update",
    "host_resolver",
    "merge_adjustments",
    "merge_updates",
    "parse_rules",
    "placeholder_devices",
    "static_conflicts",
]

log = logging.getLogger("nri.rules")

DeviceResolver = Callable[[DeviceEntry], list[pb.LinuxDevice]]
"""Turns a device entry into device nodes (looking them up on the host where needed)."""


class RuleApplyError(ValueError):
    """A matching rule cannot be applied (e.g. a host device is missing); names the rule."""


class RuleConflictError(ValueError):
    """Two matching rules set the same field of one container."""

    def __init__(self, message: str, first: Rule | None, second: Rule | None) -> None:
        self.first = first
        self.second = second
        super().__init__(message)


def host_resolver(host_lookup: bool = True, host_permissions: bool = True) -> DeviceResolver:
    """Resolve device entries as the device-injector does (host lookups included)."""
    config = DeviceConfig(host_lookup=host_lookup, host_permissions=host_permissions)

    def resolve(entry: DeviceEntry) -> list[pb.LinuxDevice]:
        return resolve_device("adjust.devices", entry, config)

    return resolve


def placeholder_devices(entry: DeviceEntry) -> list[pb.LinuxDevice]:
    """For load-time checks: the device's container path without looking at the host."""
    if entry.is_explicit:
        assert entry.path is not None and entry.type is not None
        return [make_linux_device(entry.path, entry.type, entry.major or 0, entry.minor or 0)]
    if entry.path is not None:
        return [pb.LinuxDevice(path=entry.path)]
    return []  # a udev match: its paths are only known on the host


def build_adjustment(rule: Rule, resolve: DeviceResolver) -> Adjustment:
    """The adjustment ``rule`` makes; RuleApplyError if a device cannot be resolved."""
    actions = rule.adjust or RuleActions()
    adjust = Adjustment()
    for key, value in actions.annotations:
        adjust.add_annotation(key, value)
    for key in actions.remove_annotations:
        adjust.remove_annotation(key)
    for path in actions.remove_mounts:
        adjust.remove_mount(path)
    for mount in actions.mounts:
        adjust.add_mount(mount.to_message())
    for key in actions.remove_env:
        adjust.remove_env(key)
    for key, value in actions.env:
        adjust.add_env(key, value)
    if actions.hooks is not None:
        adjust.add_hooks(actions.hooks)
    for path in actions.remove_devices:
        adjust.remove_device(path)
    for entry in actions.devices:
        try:
            devices = resolve(entry)
        except AnnotationError as exc:
            raise RuleApplyError(
                f"{rule.label}: adjust.devices[{entry.index}]: {exc.problem}"
            ) from exc
        for device in devices:
            adjust.add_device(device)
    actions.resources.apply(adjust)
    if actions.oom_score_adj is not None:
        adjust.set_linux_oom_score_adj(actions.oom_score_adj)
    for key in actions.remove_sysctls:
        adjust.remove_linux_sysctl(key)
    for key, value in actions.sysctls:
        adjust.set_linux_sysctl(key, value)
    for ulimit in actions.rlimits:
        adjust.add_rlimit(ulimit.type, ulimit.hard, ulimit.soft)
    for name in actions.cdi_devices:
        adjust.add_cdi_device(name)
    actions.linux.apply(adjust)
    return adjust


def build_update(rule: Rule, container_id: str) -> Update:
    """The update ``rule`` makes at UpdateContainer (its ``update.resources``)."""
    update = Update(container_id)
    if rule.update is not None:
        rule.update.apply(update)
    return update


def _conflict(exc: AdjustmentError, rules: dict[str, Rule]) -> RuleConflictError:
    if isinstance(exc, ConflictError):
        first, second = rules.get(exc.other), rules.get(exc.plugin)
        names = " and ".join(r.label for r in (first, second) if r is not None)
        key = f" {exc.key}" if exc.key is not None else ""
        message = f"{names} both set {field_name(exc.field)}{key}"
        return RuleConflictError(message, first, second)
    return RuleConflictError(str(exc), None, None)


def _merge_adjustments(
    changes: Sequence[tuple[Rule, Adjustment]], container: pb.Container
) -> tuple[Adjustment, CreateResult]:
    request = pb.CreateContainerRequest()
    request.container.CopyFrom(container)
    result = CreateResult(request)
    by_label = {rule.label: rule for rule, _ in changes}
    merged = Adjustment()
    for rule, adjust in changes:
        try:
            result.apply(rule.label, pb.CreateContainerResponse(adjust=adjust.message))
        except AdjustmentError as exc:
            raise _conflict(exc, by_label) from None
        merged.message.MergeFrom(adjust.message)
    return merged, result


def merge_adjustments(
    changes: Sequence[tuple[Rule, Adjustment]], container: pb.Container
) -> Adjustment:
    """The adjustments merged in order; RuleConflictError if two rules set the same field."""
    return _merge_adjustments(changes, container)[0]


def _merge_updates(
    changes: Sequence[tuple[Rule, Update]],
    container: pb.Container,
    resources: pb.LinuxResources,
) -> tuple[Update, UpdateResult]:
    request = pb.UpdateContainerRequest(linux_resources=resources)
    request.container.CopyFrom(container)
    result = UpdateResult(request)
    by_label = {rule.label: rule for rule, _ in changes}
    merged = Update(container.id)
    for rule, update in changes:
        try:
            result.apply(rule.label, pb.UpdateContainerResponse(update=[update.message]))
        except AdjustmentError as exc:
            raise _conflict(exc, by_label) from None
        merged.message.MergeFrom(update.message)
    return merged, result


def merge_updates(
    changes: Sequence[tuple[Rule, Update]],
    container: pb.Container,
    resources: pb.LinuxResources,
) -> Update:
    """The updates of one container merged in order; RuleConflictError as for adjustments."""
    return _merge_updates(changes, container, resources)[0]


_OCI_HOOKS = pb.Field.Value("OciHooks")  # hooks accumulate: they never conflict
_PROBE = pb.Container(id="probe", name="probe")

_Claim = tuple[str, int, str]


def _claims(rule: Rule) -> set[_Claim]:
    """The fields the rule would own (or clear) in a container: (event, field, key)."""
    results: list[tuple[str, CreateResult | UpdateResult]] = []
    if rule.adjust is not None:
        adjust = build_adjustment(rule, placeholder_devices)
        results.append(("create", _merge_adjustments([(rule, adjust)], _PROBE)[1]))
    if rule.update is not None:
        update = build_update(rule, _PROBE.id)
        results.append(("update", _merge_updates([(rule, update)], _PROBE, pb.LinuxResources())[1]))
    claims: set[_Claim] = set()
    for event, result in results:
        owners = result.owners.owners.get(_PROBE.id)
        if owners is None:
            continue
        claims |= {(event, f, "") for f in owners.simple if f != _OCI_HOOKS}
        for f, compound in owners.compound.items():
            claims |= {(event, f, key) for key in compound.owners}
    return claims


MAX_WARNINGS = 20
"""Most possible conflicts reported for one file."""


def static_conflicts(rules: Sequence[Rule]) -> tuple[list[str], list[str]]:
    """Conflicts visible without a container: (certain ones, possible ones), as messages.

    Only pairs of rules that claim a common field and might match one container are merged
    (as the runtime would merge them) to confirm the conflict.
    """
    errors: list[str] = []
    warnings: list[str] = []
    claims = [_claims(rule) for rule in rules]
    by_claim: dict[_Claim, list[int]] = {}
    for index, claimed in enumerate(claims):
        for claim in claimed:
            by_claim.setdefault(claim, []).append(index)
    everything = [rule.match.matches_all for rule in rules]
    for a, first in enumerate(rules):
        later: set[int] = set()
        for claim in claims[a]:
            later.update(by_claim[claim])
        for b in sorted(i for i in later if i > a):
            second = rules[b]
            if first.match.disjoint(second.match):
                continue
            certain = everything[a] or everything[b]
            if not certain and len(warnings) >= MAX_WARNINGS:
                # only certain conflicts are still reported
                if first.match != second.match:
                    continue
                certain = True
            found = _pair_conflict(first, second)
            if found is None:
                continue
            if certain or first.match == second.match:
                errors.append(f"{found} (the rules match the same containers)")
                return errors, warnings
            warnings.append(f"{found} (for a container matching both)")
    return errors, warnings


def _pair_conflict(first: Rule, second: Rule) -> str | None:
    try:
        if first.adjust is not None and second.adjust is not None:
            merge_adjustments(
                [(r, build_adjustment(r, placeholder_devices)) for r in (first, second)], _PROBE
            )
        if first.update is not None and second.update is not None:
            merge_updates(
                [(r, build_update(r, _PROBE.id)) for r in (first, second)],
                _PROBE,
                pb.LinuxResources(),
            )
    except RuleConflictError as exc:
        return str(exc)
    return None


def parse_rules(text: str | bytes, source: str = "rules") -> RuleSet:
    """Parse and check a rules file, conflicts included; raises RulesError (one line).

    A conflict that must happen for some container is an error; possible ones end up in
    :attr:`RuleSet.warnings`.
    """
    rules = read_rules(text, source)
    errors, warnings = static_conflicts(rules)
    if errors:
        raise RulesError(source, errors[0])
    return RuleSet(rules, source, tuple(warnings))


@dataclass
class Outcome:
    """What the rules do to one container."""

    facts: ContainerFacts
    matched: list[Rule] = field(default_factory=list)
    skipped: list[tuple[Rule, str]] = field(default_factory=list)
    """Rules that do not apply, with the first condition that failed."""
    adjustment: Adjustment | None = None
    update: Update | None = None


def _split(rules: Sequence[Rule], facts: ContainerFacts, outcome: Outcome) -> None:
    for rule in rules:
        reason = rule.match.mismatch(facts)
        if reason is None:
            outcome.matched.append(rule)
        else:
            outcome.skipped.append((rule, reason))


def evaluate_create(
    rules: Sequence[Rule],
    facts: ContainerFacts,
    container: pb.Container,
    resolve: DeviceResolver,
) -> Outcome:
    """Match ``rules`` and merge the adjustments of those that match (None if none adjusts).

    Raises RuleApplyError or RuleConflictError, naming the rules involved.
    """
    outcome = Outcome(facts)
    _split(rules, facts, outcome)
    changes = [(r, build_adjustment(r, resolve)) for r in outcome.matched if r.adjust is not None]
    if changes:
        outcome.adjustment = merge_adjustments(changes, container)
    return outcome


def evaluate_update(
    rules: Sequence[Rule],
    facts: ContainerFacts,
    container: pb.Container,
    resources: pb.LinuxResources,
) -> Outcome:
    """Match ``rules`` and merge the updates of those that match (None if none updates)."""
    outcome = Outcome(facts)
    _split(rules, facts, outcome)
    changes = [(r, build_update(r, container.id)) for r in outcome.matched if r.update is not None]
    if changes:
        outcome.update = merge_updates(changes, container, resources)
    return outcome
