"""Play scenario steps through a :class:`~nri.mock.MockRuntime` and check their expectations."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

from nri.adaptation import PluginInfo
from nri.mock._checks import Check
from nri.mock._history import EventRecord
from nri.mock._runtime import MockRuntime
from nri.mock._scenario import ContainerDef, PodDef, Scenario, Step
from nri.mock._state import MockContainer, MockPod

__all__ = ["CheckOutcome", "Player", "RunResult", "StepResult"]

_Named = TypeVar("_Named", bound=MockPod | MockContainer)


@dataclasses.dataclass
class CheckOutcome:
    """The result of one expectation."""

    description: str
    """The expectation in words, e.g. ``/process/env contains "A=1"``."""
    where: str
    """Where it is written in the scenario, e.g. ``steps[2].expect.spec[0]``."""
    passed: bool
    detail: str | None = None
    """Why it failed."""

    def to_data(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class StepResult:
    """What one step did: the events it caused (and any that arrived since the previous
    step, such as unsolicited updates), its error and its expectations' outcomes."""

    title: str
    where: str = ""
    records: list[EventRecord] = dataclasses.field(default_factory=list)
    error: str | None = None
    outcomes: list[CheckOutcome] = dataclasses.field(default_factory=list)
    plugin_output: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(plugin, line) of what plugin commands wrote to stderr meanwhile, when collected."""

    @property
    def passed(self) -> bool:
        """Whether every expectation held (a step that failed unexpectedly does not pass)."""
        return all(outcome.passed for outcome in self.outcomes)


@dataclasses.dataclass
class RunResult:
    """A whole scenario run."""

    scenario: Scenario
    plugins: list[PluginInfo] = dataclasses.field(default_factory=list)
    connected: StepResult | None = None
    """Events while plugins connected (updates they returned from Synchronize)."""
    steps: list[StepResult] = dataclasses.field(default_factory=list)
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    """Pod and container IDs -> readable names."""

    @property
    def outcomes(self) -> list[CheckOutcome]:
        """Every expectation outcome, in step order."""
        return [outcome for step in self.steps for outcome in step.outcomes]

    @property
    def passed(self) -> bool:
        """Whether every step passed."""
        return all(step.passed for step in self.steps)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def _plugin_matches(actual: str, expected: str) -> bool:
    return actual == expected or actual.partition("-")[2] == expected


class Player:
    """Plays steps on a runtime, resolving the scenario's pod and container keys.

    Pod and container keys map to the objects the steps created; a key that the scenario
    does not define is looked up in the runtime by ID or name.
    """

    def __init__(self, runtime: MockRuntime, scenario: Scenario | None = None) -> None:
        self.runtime = runtime
        self.pod_defs: dict[str, PodDef] = {}
        self.container_defs: dict[str, ContainerDef] = {}
        self.pods: dict[str, MockPod] = {}
        self.containers: dict[str, MockContainer] = {}
        self.names: dict[str, str] = {}
        """Pod and container IDs -> readable names (``pod`` and ``pod/container``)."""
        self._seen = 0
        if scenario is not None:
            self.define(scenario)

    def define(self, scenario: Scenario) -> None:
        """Learn (or redefine) the scenario's pods and containers."""
        self.pod_defs.update(scenario.pods)
        self.container_defs.update(scenario.containers)

    def add_existing(self, scenario: Scenario) -> list[str]:
        """Add the scenario's existing pods and containers, without events.

        Plugins that connect afterwards see them in Synchronize. A pod whose name is taken
        in its namespace, or a container whose name is taken in its pod, is not added a
        second time: the scenario's key then means the one there is. Returns what was
        reused that way (``pod web``, ``container web/app``).
        """
        reused = []
        for key in scenario.existing_pods:
            pod_def = self.pod_defs[key]
            pod = self.runtime.pod_named(pod_def.name, pod_def.namespace)
            if pod is None:
                pod = self.runtime.add_existing_pod(pod_def.name, **self._pod_fields(pod_def))
            else:
                reused.append(f"pod {pod.name}")
            self.pods[key] = self._named(pod)
        for key in scenario.existing_containers:
            ctr_def = self.container_defs[key]
            pod = self.pod(ctr_def.pod)
            same = [
                c
                for c in self.runtime.containers.values()
                if c.pod_id == pod.id and c.name == ctr_def.name
            ]
            if same:
                ctr = same[0]
                reused.append(f"container {pod.name}/{ctr.name}")
            else:
                fields = self._container_fields(ctr_def)
                ctr = self.runtime.add_existing_container(pod, ctr_def.name, **fields)
            self.containers[key] = self._named(ctr)
        return reused

    # -- lookups -----------------------------------------------------------------------------

    def pod(self, ref: str) -> MockPod:
        """The pod a step refers to (scenario key, runtime ID or name); KeyError if none."""
        if ref in self.pods:
            return self.pods[ref]
        return self.runtime.pod(ref)

    def container(self, ref: str) -> MockContainer:
        """The container a step refers to; KeyError if none.

        A removed container is still found by its key, with its last spec.
        """
        if ref in self.containers:
            return self.containers[ref]
        return self.runtime.container(ref)

    def _named(self, obj: _Named) -> _Named:
        if isinstance(obj, MockPod):
            self.names[obj.id] = obj.name
        else:
            pod = self.runtime.pods.get(obj.pod_id)
            self.names[obj.id] = f"{pod.name if pod else obj.pod_id}/{obj.name}"
        return obj

    def take_records(self) -> list[EventRecord]:
        """The runtime's events recorded since the last call."""
        history = self.runtime.history
        records, self._seen = history[self._seen :], len(history)
        for record in records:
            for obj_id in (record.pod_id, record.container_id, *record.specs):
                if obj_id and obj_id not in self.names:
                    obj = self.runtime.pods.get(obj_id) or self.runtime.containers.get(obj_id)
                    if obj is not None:
                        self._named(obj)
        return records

    @staticmethod
    def _pod_fields(pod_def: PodDef) -> dict[str, Any]:
        return {
            "namespace": pod_def.namespace,
            "uid": pod_def.uid,
            "labels": pod_def.labels,
            "annotations": pod_def.annotations,
            "runtime_handler": pod_def.runtime_handler,
            "netns": pod_def.netns,
            "ips": pod_def.ips,
        }

    @staticmethod
    def _container_fields(ctr_def: ContainerDef) -> dict[str, Any]:
        return {
            "args": ctr_def.args,
            "env": ctr_def.env,
            "mounts": ctr_def.mounts,
            "annotations": ctr_def.annotations,
            "labels": ctr_def.labels,
            "resources": ctr_def.resources,
            "cdi_devices": ctr_def.cdi_devices,
        }

    # -- playing -----------------------------------------------------------------------------

    def since_last(self, title: str) -> StepResult:
        """A pseudo-step with the events recorded since the last step (e.g. Synchronize
        updates after plugins connected, or unsolicited updates while idle)."""
        return StepResult(title, records=self.take_records())

    async def play(self, step: Step) -> StepResult:
        """Play one step and check its expectations; never raises for a failing step."""
        error = None
        try:
            await self._act(step)
        except Exception as exc:
            error = _error_text(exc)
        records = self.take_records()
        if step.action == "create-container" and error is not None:
            self._name_failed_creation(step.target or "", records)
        result = StepResult(step.describe(), step.where, records, error)
        result.outcomes = self._outcomes(step, result)
        return result

    def _name_failed_creation(self, key: str, records: list[EventRecord]) -> None:
        # The runtime forgets a container whose creation failed; name it after its definition.
        ctr_def = self.container_defs.get(key)
        if ctr_def is None:
            return
        pod_name = self.pod_defs[ctr_def.pod].name if ctr_def.pod in self.pod_defs else ctr_def.pod
        for record in records:
            if record.event == "CreateContainer" and record.container_id not in self.names:
                self.names[record.container_id or ""] = f"{pod_name}/{ctr_def.name}"

    async def _act(self, step: Step) -> None:
        runtime = self.runtime
        target = step.target or ""
        match step.action:
            case "sleep":
                await asyncio.sleep(step.seconds)
            case "run-pod":
                pod_def = self.pod_defs.get(target) or PodDef(target, target)
                pod = await runtime.run_pod(pod_def.name, **self._pod_fields(pod_def))
                self.pods[target] = self._named(pod)
            case "update-pod":
                await runtime.update_pod(self.pod(target), step.resources or {})
            case "stop-pod":
                await runtime.stop_pod(self.pod(target))
            case "remove-pod":
                await runtime.remove_pod(self.pod(target))
            case "create-container":
                ctr_def = self.container_defs.get(target)
                if ctr_def is None:
                    raise KeyError(f"no container {target!r} is defined")
                ctr = await runtime.create_container(
                    self.pod(ctr_def.pod), ctr_def.name, **self._container_fields(ctr_def)
                )
                self.containers[target] = self._named(ctr)
            case "start-container":
                await runtime.start_container(self._live(target))
            case "update-container":
                await runtime.update_container(self._live(target), step.resources or {})
            case "stop-container":
                await runtime.stop_container(self._live(target))
            case "remove-container":
                await runtime.remove_container(self._live(target))
            case _:
                raise ValueError(f"unknown action {step.action!r}")

    def _live(self, ref: str) -> MockContainer:
        ctr = self.container(ref)
        if ctr.id not in self.runtime.containers:
            raise KeyError(f"container {ref!r} ({ctr.id}) no longer exists")
        return ctr

    # -- expectations ------------------------------------------------------------------------

    def _outcomes(self, step: Step, result: StepResult) -> list[CheckOutcome]:
        expect = step.expect
        outcomes = []
        if expect is not None and expect.error is not None:
            wanted = expect.error
            if result.error is None:
                detail = "it succeeded"
            elif wanted in result.error:
                detail = None
            else:
                detail = f"the error was: {result.error}"
            outcomes.append(
                CheckOutcome(
                    f"fails with an error containing {wanted!r}",
                    f"{step.where}.expect.error",
                    detail is None,
                    detail,
                )
            )
        elif result.error is not None:
            outcomes.append(CheckOutcome("succeeds", step.where, False, result.error))
        if expect is None:
            return outcomes
        if expect.spec:
            outcomes += self._check_container(step.target or "", expect.spec)
        for key, checks in expect.containers.items():
            outcomes += self._check_container(key, checks)
        for field, plugin in expect.changed_by.items():
            outcomes.append(self._changed_by(step, result.records, field, plugin))
        return outcomes

    def _check_container(self, ref: str, checks: Iterable[Check]) -> list[CheckOutcome]:
        try:
            spec: dict[str, Any] | None = self.container(ref).spec
            missing = None
        except KeyError as exc:
            spec, missing = None, _error_text(exc)
        outcomes = []
        for check in checks:
            description = f"{ref}: {check.describe()}"
            detail = missing if spec is None else check.failure(spec)
            outcomes.append(CheckOutcome(description, check.where, detail is None, detail))
        return outcomes

    def _changed_by(
        self, step: Step, records: list[EventRecord], owner: str, plugin: str
    ) -> CheckOutcome:
        field, _, key = owner.partition(":")
        ctr_id = None
        if step.container_step:
            try:
                ctr_id = self.container(step.target or "").id
            except KeyError:
                ctr_id = None
        setters = [
            change.plugin
            for record in records
            for change in record.changes
            if change.field == field
            and (not key or change.key == key)
            and (ctr_id is None or change.container_id == ctr_id)
        ]
        ok = any(_plugin_matches(setter, plugin) for setter in setters)
        detail = None
        if not ok:
            detail = f"set by {', '.join(sorted(set(setters)))}" if setters else "no plugin set it"
        where = f"{step.where}.expect.changed-by.{owner}"
        return CheckOutcome(f"{owner} set by {plugin}", where, ok, detail)
