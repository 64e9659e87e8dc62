"""Show scenario results: readable text (coloured with rich on a terminal) or JSON.

The text is built as lines, each with a style name; :class:`Printer` writes them plainly or,
when rich is installed and colour is wanted, with colours. Both show the same text.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from nri.adaptation import PluginInfo
from nri.api import format_event_mask
from nri.mock._history import EventRecord
from nri.mock._player import CheckOutcome, RunResult, StepResult

__all__ = [
    "Line",
    "Printer",
    "plugin_data",
    "render_outcome",
    "render_plugin_output",
    "render_plugins",
    "render_step",
    "render_summary",
    "run_data",
    "spec_diff",
    "step_data",
    "use_color",
]

Line = tuple[str, str]
"""One output line and its style: ``heading``, ``event``, ``change``, ``diff``, ``pass``,
``fail``, ``error``, ``note``, ``output`` or ``""``."""

_STYLES = {
    "heading": "bold cyan",
    "event": "bold",
    "change": "yellow",
    "pass": "green",
    "fail": "bold red",
    "error": "red",
    "note": "dim",
    "output": "blue",
    "+": "green",
    "-": "red",
    "@": "cyan",
}


def spec_diff(before: Mapping[str, Any], after: Mapping[str, Any], label: str) -> list[str]:
    """A unified diff of two OCI specs, as sorted, indented JSON.

    Mounts are compared by destination (``"mounts": {"/proc": {...}}``), so that a mount
    the runtime re-sorted shows as unchanged rather than removed and added again; when
    their order changed, a last ``@@ mount order`` line gives the new and old order.
    """
    old_order, new_order = _destinations(before), _destinations(after)
    if old_order is not None and new_order is not None:
        before, after = _mounts_by_destination(before), _mounts_by_destination(after)
    lines = list(
        difflib.unified_diff(
            json.dumps(before, sort_keys=True, indent=2).splitlines(),
            json.dumps(after, sort_keys=True, indent=2).splitlines(),
            f"{label} (before)",
            f"{label} (after)",
            n=2,
            lineterm="",
        )
    )
    if old_order is not None and new_order is not None and old_order != new_order:
        lines.append(
            f"@@ mount order: {', '.join(new_order)} (before: {', '.join(old_order) or 'none'}) @@"
        )
    return lines


def _destinations(spec: Mapping[str, Any]) -> list[str] | None:
    """The mount destinations in order, or None when they cannot key the mounts."""
    mounts = spec.get("mounts", [])
    if not isinstance(mounts, list):
        return None
    out = [m.get("destination") for m in mounts if isinstance(m, dict)]
    if len(out) != len(mounts) or not all(isinstance(d, str) for d in out):
        return None
    if len(set(out)) != len(out):
        return None  # the same destination twice: only the list shows both
    return out  # type: ignore[return-value]


def _mounts_by_destination(spec: Mapping[str, Any]) -> dict[str, Any]:
    if "mounts" not in spec:
        return dict(spec)
    by_destination = {
        m["destination"]: {k: v for k, v in m.items() if k != "destination"} for m in spec["mounts"]
    }
    return {**spec, "mounts": by_destination}


def _name(names: Mapping[str, str], obj_id: str | None) -> str:
    return names.get(obj_id or "", obj_id or "")


def _record_lines(record: EventRecord, names: Mapping[str, str]) -> list[Line]:
    subject = _name(names, record.container_id or record.pod_id)
    if record.event == "UpdateContainers":
        subject = "(requested by a plugin)"
    if record.event == "PluginClosed":
        return [(f"  plugin {record.plugin} is gone: the runtime goes on without it", "error")]
    lines: list[Line] = [(f"  {record.event} {subject}".rstrip(), "event")]
    if record.error is not None:
        lines.append((f"    error: {record.error}", "error"))
    grouped: dict[tuple[str, str, str, bool], list[str]] = {}
    for change in record.changes:
        group = (change.container_id, change.plugin, change.field, change.removed)
        grouped.setdefault(group, [])
        if change.key is not None:
            grouped[group].append(change.key)
    # By plugin (full names sort in invocation order), fields in upstream's order.
    for (ctr_id, plugin, field, removed), keys in sorted(grouped.items(), key=lambda g: g[0][1]):
        target = "" if ctr_id == record.container_id else f" of {_name(names, ctr_id)}"
        verb = "removed" if removed else "set"
        what = f"{field} {', '.join(keys)}" if keys else field
        lines.append((f"    {plugin} {verb} {what}{target}", "change"))
    for ctr_id, reason in record.evicted:
        lines.append((f"    evicted {_name(names, ctr_id)}: {reason}", "error"))
    for ctr_id, reason in record.ignored_evictions:
        text = f"    eviction of {_name(names, ctr_id)} asked ({reason}): ignored, as runtimes do"
        lines.append((text, "note"))
    for ctr_id in record.failed_updates:
        lines.append((f"    update of {_name(names, ctr_id)} failed", "error"))
    for ctr_id, (before, after) in record.specs.items():
        label = _name(names, ctr_id)
        lines.append((f"    spec of {label}:", "note"))
        lines += [(f"      {line}", "diff") for line in spec_diff(before, after, label)]
    return lines


def render_outcome(outcome: CheckOutcome, source: str = "") -> Line:
    """One expectation outcome as a line (``ok``/``FAIL``, where, what, why)."""
    where = f"{source}: {outcome.where}" if source else outcome.where
    if outcome.passed:
        return (f"  ok    {outcome.description}", "pass")
    return (f"  FAIL  {where}: {outcome.description}: {outcome.detail}", "fail")


def render_step(
    result: StepResult, names: Mapping[str, str], number: int | None = None
) -> list[Line]:
    """A step's heading (numbered: a scenario step), its events with their changes and
    spec diffs, and its expectations (an unexpected error is a failed one)."""
    heading = result.title
    if number is not None:
        heading = f"[{number}] {heading}  ({result.where})"
    lines: list[Line] = [(heading, "heading")]
    for record in result.records:
        lines += _record_lines(record, names)
    if not result.records:
        lines.append(("  no events", "note"))
    lines += render_plugin_output(result.plugin_output)
    lines += [render_outcome(outcome) for outcome in result.outcomes]
    return lines


def render_plugin_output(output: Iterable[tuple[str, str]]) -> list[Line]:
    """Lines plugin commands wrote to stderr, each after its plugin's name: ``  name | line``."""
    pairs = list(output)
    width = max((len(name) for name, _ in pairs), default=0)
    return [(f"  {name:<{width}} | {text}".rstrip(), "output") for name, text in pairs]


def render_plugins(plugins: Iterable[PluginInfo]) -> list[Line]:
    """The registered plugins in invocation order."""
    infos = list(plugins)
    if not infos:
        return [("plugins: none registered", "note")]
    lines: list[Line] = [("plugins (in invocation order):", "heading")]
    for info in infos:
        how = "external" if info.external else "pre-installed"
        events = format_event_mask(info.events) or "no events"
        lines.append((f"  {info.full_name} ({how}): {events}", ""))
    return lines


def render_summary(result: RunResult) -> list[Line]:
    """The closing lines: counts, then each failed expectation with file and place."""
    outcomes = result.outcomes
    failed = [o for o in outcomes if not o.passed]
    text = (
        f"{result.scenario.name}: {len(result.steps)} steps, {len(outcomes)} expectations, "
        f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
    )
    lines: list[Line] = [("", ""), (text, "fail" if failed else "pass")]
    lines += [render_outcome(o, result.scenario.source) for o in failed]
    return lines


# -- JSON -----------------------------------------------------------------------------------


def plugin_data(info: PluginInfo) -> dict[str, Any]:
    """A registered plugin as a JSON-ready dict."""
    return {
        "name": info.name,
        "idx": info.idx,
        "full_name": info.full_name,
        "external": info.external,
        "events": format_event_mask(info.events),
    }


def _record_data(record: EventRecord, names: Mapping[str, str]) -> dict[str, Any]:
    data = record.to_data()
    data["pod"] = _name(names, record.pod_id) or None
    data["container"] = _name(names, record.container_id) or None
    for ctr_id, specs in data["specs"].items():
        label = _name(names, ctr_id)
        specs["container"] = label
        specs["diff"] = spec_diff(specs["before"], specs["after"], label)
    return data


def step_data(result: StepResult, names: Mapping[str, str]) -> dict[str, Any]:
    """A step result as a JSON-ready dict."""
    return {
        "step": result.title,
        "where": result.where,
        "passed": result.passed,
        "error": result.error,
        "events": [_record_data(record, names) for record in result.records],
        "expectations": [outcome.to_data() for outcome in result.outcomes],
        "plugin_output": [{"plugin": name, "line": text} for name, text in result.plugin_output],
    }


def run_data(result: RunResult) -> dict[str, Any]:
    """A whole run as one JSON-ready document."""
    names = result.names
    outcomes = result.outcomes
    failed = sum(not o.passed for o in outcomes)
    return {
        "scenario": {
            "name": result.scenario.name,
            "file": result.scenario.source,
            "description": result.scenario.description,
        },
        "plugins": [plugin_data(info) for info in result.plugins],
        "connected": step_data(result.connected, names) if result.connected else None,
        "steps": [step_data(step, names) for step in result.steps],
        "summary": {
            "steps": len(result.steps),
            "expectations": len(outcomes),
            "passed": len(outcomes) - failed,
            "failed": failed,
            "ok": result.passed,
        },
    }


# -- output ---------------------------------------------------------------------------------


def use_color(choice: str, stream: TextIO) -> bool:
    """Whether to colour: ``always``/``never``, or ``auto``: rich is installed, ``stream``
    is a terminal and ``NO_COLOR`` is not set."""
    if choice == "never" or importlib.util.find_spec("rich") is None:
        return False
    return choice == "always" or (stream.isatty() and not os.environ.get("NO_COLOR"))


class Printer:
    """Writes :data:`Line` lists to a stream, in colour when asked and rich is available."""

    def __init__(self, stream: TextIO | None = None, *, color: bool = False) -> None:
        self.stream = stream or sys.stdout
        self._console: Any = None
        if color:
            self._text = importlib.import_module("rich.text").Text
            self._console = importlib.import_module("rich.console").Console(
                file=self.stream, highlight=False, soft_wrap=True, force_terminal=True
            )

    def print(self, lines: Iterable[Line]) -> None:
        """Write the lines and flush."""
        for text, style in lines:
            if self._console is None:
                print(text, file=self.stream)
            elif style == "heading":
                self._console.rule(self._text(text, "bold cyan"), align="left", style="cyan")
            else:
                self._console.print(self._text(text, self._style(text, style)))
        self.stream.flush()

    @staticmethod
    def _style(text: str, style: str) -> str:
        if style == "diff":
            marker = text.strip()[:1]
            if text.strip()[:3] in ("---", "+++"):
                return "bold"
            return _STYLES.get(marker, "")
        return _STYLES.get(style, "")
