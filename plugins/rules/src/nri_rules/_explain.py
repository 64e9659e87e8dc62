"""``nri-rules check`` and ``nri-rules explain``: the rules file without a runtime.

``explain`` reads a Kubernetes Pod manifest and describes each container as a runtime would
(namespace, names, labels, annotations, image, runtime handler, QoS class by Kubernetes'
rules), then shows which rules match it and the adjustment they make together.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from nri.api import message_to_data, pb
from nri.decode import DecodeError, describe, load_yaml
from nri.stub import ConfigError, read_config_file
from nri_rules._apply import (
    DeviceResolver,
    Outcome,
    RuleApplyError,
    RuleConflictError,
    evaluate_create,
    evaluate_update,
    host_resolver,
    placeholder_devices,
)
from nri_rules._match import CONTAINERD_IMAGE_ANNOTATION, ContainerFacts
from nri_rules._plugin import load_rules_file
from nri_rules._rules import RulesError, RuleSet

__all__ = ["PodContainer", "PodError", "main", "pod_containers", "pod_qos_class"]

SUBCOMMANDS = ("check", "explain")
"""The first arguments that select a subcommand instead of running the plugin."""


class PodError(ValueError):
    """An unusable pod manifest; one line naming the file and the field."""


@dataclass(frozen=True)
class PodContainer:
    """One container of a pod manifest, as a runtime would describe it."""

    facts: ContainerFacts
    container: pb.Container


def _get(value: Any, key: str, kind: type, source: str, where: str) -> Any:
    item = value.get(key)
    if item is None:
        return kind()
    if not isinstance(item, kind):
        raise PodError(f"{source}: {where}{key}: expected a {kind.__name__}, got {describe(item)}")
    return item


def _strings(value: Any, key: str, source: str, where: str) -> dict[str, str]:
    items = _get(value, key, dict, source, where)
    for name, item in items.items():
        if not isinstance(item, str):
            raise PodError(
                f"{source}: {where}{key}.{name}: expected a string, got {describe(item)}"
            )
    return dict(items)


_CPU_MEMORY = ("cpu", "memory")


def pod_qos_class(containers: Sequence[dict[str, Any]]) -> str:
    """The QoS class Kubernetes gives a pod with these container specs (from their resources).

    BestEffort: no container requests or limits CPU or memory. Guaranteed: every container
    has CPU and memory limits, and requests (which default to the limits) equal them.
    Burstable: anything else.
    """
    any_set = False
    guaranteed = True
    for spec in containers:
        resources = spec.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = {**limits, **(resources.get("requests") or {})}
        if any(limits.get(r) is not None or requests.get(r) is not None for r in _CPU_MEMORY):
            any_set = True
        for name in _CPU_MEMORY:
            if limits.get(name) is None or str(requests.get(name)) != str(limits.get(name)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def pod_containers(
    text: str, source: str, *, runtime_handler: str | None = None
) -> list[PodContainer]:
    """The containers (init containers first) of a Pod manifest; PodError if unusable."""
    try:
        document = load_yaml(text, source=source)
    except DecodeError as exc:
        raise PodError(str(exc)) from None
    if not isinstance(document, dict):
        raise PodError(f"{source}: expected a Pod manifest (a mapping), got {describe(document)}")
    if document.get("kind", "Pod") != "Pod":
        raise PodError(f"{source}: kind: expected Pod, got {document.get('kind')!r}")
    metadata = _get(document, "metadata", dict, source, "")
    spec = _get(document, "spec", dict, source, "")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise PodError(f"{source}: metadata.name: missing")
    namespace = metadata.get("namespace") or "default"
    labels = _strings(metadata, "labels", source, "metadata.")
    annotations = _strings(metadata, "annotations", source, "metadata.")
    handler = runtime_handler if runtime_handler is not None else spec.get("runtimeClassName", "")
    specs: list[dict[str, Any]] = []
    for key in ("initContainers", "containers"):
        for i, item in enumerate(_get(spec, key, list, source, "spec.")):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise PodError(f"{source}: spec.{key}[{i}].name: missing")
            specs.append(item)
    if not specs:
        raise PodError(f"{source}: spec.containers: no containers")
    qos = pod_qos_class(specs)
    uid = str(metadata.get("uid", ""))
    found = []
    for item in specs:
        image = str(item.get("image", ""))
        ctr_labels = {  # what kubelet labels every container with
            "io.kubernetes.container.name": item["name"],
            "io.kubernetes.pod.name": name,
            "io.kubernetes.pod.namespace": str(namespace),
            "io.kubernetes.pod.uid": uid,
        }
        ctr_annotations = {CONTAINERD_IMAGE_ANNOTATION: image} if image else {}
        facts = ContainerFacts(
            namespace=str(namespace),
            pod=name,
            container=item["name"],
            pod_labels=labels,
            pod_annotations=annotations,
            container_labels=ctr_labels,
            container_annotations=ctr_annotations,
            image=image,
            runtime_handler=str(handler or ""),
            qos_class=qos,
        )
        container = pb.Container(
            id=f"{name}-{item['name']}",
            name=item["name"],
            labels=ctr_labels,
            annotations=ctr_annotations,
        )
        found.append(PodContainer(facts, container))
    return found


def _report(outcome: Outcome) -> dict[str, Any]:
    return {
        "namespace": outcome.facts.namespace,
        "pod": outcome.facts.pod,
        "container": outcome.facts.container,
        "image": outcome.facts.image,
        "runtimeHandler": outcome.facts.runtime_handler,
        "qosClass": outcome.facts.qos_class,
        "matched": [rule.label for rule in outcome.matched],
        "skipped": {rule.label: reason for rule, reason in outcome.skipped},
        "adjustment": message_to_data(outcome.adjustment.message) if outcome.adjustment else None,
        "update": message_to_data(outcome.update.message) if outcome.update else None,
    }


def _explain_one(
    rules: RuleSet, item: PodContainer, resolve: DeviceResolver
) -> tuple[dict[str, Any], str | None]:
    try:
        outcome = evaluate_create(rules.rules, item.facts, item.container, resolve)
        updated = evaluate_update(rules.rules, item.facts, item.container, pb.LinuxResources())
    except (RuleApplyError, RuleConflictError) as exc:
        report = _report(Outcome(item.facts))
        report["error"] = str(exc)
        return report, str(exc)
    outcome.update = updated.update
    return _report(outcome), None


def _print_text(report: dict[str, Any], out: TextIO) -> None:
    facts = f"QoS {report['qosClass']}"
    if report["image"]:
        facts = f"image {report['image']}, {facts}"
    if report["runtimeHandler"]:
        facts += f", runtime handler {report['runtimeHandler']}"
    print(
        f"pod {report['namespace']}/{report['pod']}, container {report['container']} ({facts})",
        file=out,
    )
    for name in report["matched"]:
        print(f"  matches {name}", file=out)
    for name, reason in report["skipped"].items():
        print(f"  skips   {name}: {reason}", file=out)
    if "error" in report:
        print(f"  error: {report['error']}", file=out)
    for key, title in (
        ("adjustment", "adjustment at CreateContainer"),
        ("update", "update at UpdateContainer"),
    ):
        if report.get(key):
            print(f"  {title}:", file=out)
            dumped = yaml.safe_dump(report[key], sort_keys=False, default_flow_style=False)
            for line in dumped.splitlines():
                print(f"    {line}", file=out)
    if not report["matched"]:
        print("  no rule matches: the container is not changed", file=out)


def parser() -> argparse.ArgumentParser:
    """The parser of the ``check`` and ``explain`` subcommands."""
    main_parser = argparse.ArgumentParser(
        prog="nri-rules",
        description="Check a rules file, or explain what it does to a pod (no runtime needed). "
        "Without a subcommand, nri-rules runs the plugin (see nri-rules --help).",
    )
    commands = main_parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="validate rules files",
        description="Validate rules files: exit status 0 if valid, 1 if not.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="rules file")
    check.add_argument("--strict", action="store_true", help="possible conflicts are errors too")
    explain = commands.add_parser(
        "explain",
        help="show which rules match a pod's containers and what they change",
        description="Show which rules match each container of a Kubernetes Pod manifest and "
        "the adjustment they make together.",
    )
    explain.add_argument("file", metavar="FILE", help="rules file")
    explain.add_argument(
        "--pod", required=True, metavar="POD.yaml", help="Pod manifest (YAML or JSON)"
    )
    explain.add_argument("--container", metavar="NAME", help="only this container")
    explain.add_argument(
        "--runtime-handler",
        metavar="NAME",
        help="runtime handler (default: the pod's runtimeClassName)",
    )
    explain.add_argument(
        "--no-host-lookup",
        action="store_true",
        help="do not look devices up on this host; show their container paths only",
    )
    explain.add_argument(
        "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    return main_parser


def _check(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            rules = load_rules_file(path)
        except (RulesError, ConfigError) as exc:
            print(f"nri-rules: error: {exc}", file=sys.stderr)
            status = 1
            continue
        for warning in rules.warnings:
            print(
                f"nri-rules: {'error' if args.strict else 'warning'}: {path}: {warning}",
                file=sys.stderr,
            )
        if rules.warnings and args.strict:
            status = 1
            continue
        print(f"{path}: {len(rules.rules)} rules, valid")
    return status


def _explain(args: argparse.Namespace) -> int:
    try:
        rules = load_rules_file(args.file)
    except (RulesError, ConfigError) as exc:
        print(f"nri-rules: error: {exc}", file=sys.stderr)
        return 1
    try:
        text = read_config_file(args.pod)
        items = pod_containers(text, args.pod, runtime_handler=args.runtime_handler)
    except (ConfigError, PodError) as exc:
        print(f"nri-rules: error: {exc}", file=sys.stderr)
        return 2
    if args.container is not None:
        items = [i for i in items if i.facts.container == args.container]
        if not items:
            print(f"nri-rules: error: {args.pod}: no container {args.container!r}", file=sys.stderr)
            return 2
    resolve = placeholder_devices if args.no_host_lookup else host_resolver()
    reports, status = [], 0
    for item in items:
        report, error = _explain_one(rules, item, resolve)
        reports.append(report)
        status = 1 if error else status
    if args.output == "json":
        print(json.dumps(reports, indent=2))
    else:
        for i, report in enumerate(reports):
            if i:
                print()
            _print_text(report, sys.stdout)
    return status


def main(argv: Sequence[str]) -> int:
    """Run ``check`` or ``explain`` with ``argv`` (the subcommand first); the exit status."""
    args = parser().parse_args(argv)
    return _check(args) if args.command == "check" else _explain(args)
