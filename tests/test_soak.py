"""Chaos soak of the runtime adaptation (``tox -e soak``; deselected from plain pytest).

A mock runtime serves several plugin processes on its socket under a stream of pod and
container events while plugins are SIGKILLed, hung with SIGSTOP (and continued later),
restarted, and the runtime's adaptation is stopped and started again. At the end:

- every container's spec carries exactly the marks of the plugins whose CreateContainer
  replies the runtime merged for it, with the right values, and each of those plugins
  logged that CreateContainer;
- no event was lost: the runtime recorded each event once, and every plugin instance that
  was registered before and after an event and never faulted got it;
- no event was applied twice: no plugin got the same event for the same object twice;
- the runtime's RSS and fd count are flat between a warmed-up point and the end.

``NRI_SOAK_SECONDS`` sets how long the events run (default 150).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _soak_plugin import env_key

from nri.api import api_pb2 as pb
from nri.mock import MockContainer, MockRuntime

SOAK_SECONDS = float(os.environ.get("NRI_SOAK_SECONDS", "150"))
PLUGIN = Path(__file__).parent / "_soak_plugin.py"
SLOTS = [("10", "alpha"), ("20", "beta"), ("30", "gamma"), ("40", "delta")]
MAX_PODS, MAX_CONTAINERS = 4, 16
ZOMBIE_GRACE = 3.0  # alive but unregistered this long (and not stopped): kill it

pytestmark = [pytest.mark.soak, pytest.mark.slow]


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Slot:
    idx: str
    name: str
    proc: asyncio.subprocess.Process | None = None
    stopped_until: float | None = None
    unregistered_since: float | None = None

    @property
    def full_name(self) -> str:
        return f"{self.idx}-{self.name}"


@dataclass
class Soak:
    runtime: MockRuntime
    log_dir: Path
    rng: random.Random
    slots: list[Slot] = field(default_factory=lambda: [Slot(i, n) for i, n in SLOTS])
    faulted: set[int] = field(default_factory=set)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    events: collections.Counter[str] = field(default_factory=collections.Counter)
    # (NN-name, pid) -> events it must have got, not yet found in its log
    expected: dict[tuple[str, int], set[str]] = field(
        default_factory=lambda: collections.defaultdict(set)
    )
    checked: int = 0  # deliveries to steady plugins verified
    # NN-name -> object id -> the events logged for it (forgotten a while after removal)
    seen: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    removed: dict[str, float] = field(default_factory=dict)
    offsets: dict[Path, int] = field(default_factory=dict)
    # container id -> plugins whose CreateContainer changes the runtime merged
    merged: dict[str, set[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    serial: Iterator[int] = field(default_factory=itertools.count)

    # -- plugin processes ----------------------------------------------------------------

    async def spawn(self, slot: Slot) -> None:
        slot.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PLUGIN),
            "--idx",
            slot.idx,
            "--name",
            slot.name,
            "--socket-path",
            self.runtime.socket_path,
            "--log-dir",
            str(self.log_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        slot.stopped_until = None
        slot.unregistered_since = None

    def signal(self, slot: Slot, sig: signal.Signals) -> None:
        assert slot.proc is not None
        with contextlib.suppress(ProcessLookupError):
            slot.proc.send_signal(sig)

    async def supervise(self) -> None:
        """Restart exited plugins, continue stopped ones when due, kill zombies."""
        now = time.monotonic()
        registered = {(i.full_name, i.pid) for i in self.runtime.plugins}
        for slot in self.slots:
            proc = slot.proc
            if proc is None or proc.returncode is not None:
                await self.spawn(slot)
                continue
            if slot.stopped_until is not None:
                if now >= slot.stopped_until:
                    self.signal(slot, signal.SIGCONT)
                    slot.stopped_until = None
                continue
            if (slot.full_name, proc.pid) in registered:
                slot.unregistered_since = None
            elif slot.unregistered_since is None:
                slot.unregistered_since = now
            elif now - slot.unregistered_since > ZOMBIE_GRACE:
                self.faulted.add(proc.pid)
                self.signal(slot, signal.SIGKILL)
                await proc.wait()

    async def inject_fault(self) -> None:
        live = [s for s in self.slots if s.proc is not None and s.proc.returncode is None]
        kind = self.rng.choices(
            ["kill", "hang", "restart", "adaptation-restart"], weights=[4, 4, 3, 1]
        )[0]
        if kind == "adaptation-restart":
            # Upstream Stop/Start: plugins are dropped, their connections left open.
            await self.runtime.adaptation.stop()
            await self.runtime.adaptation.start()
            for slot in live:
                assert slot.proc is not None
                self.faulted.add(slot.proc.pid)
        else:
            candidates = [s for s in live if s.stopped_until is None]
            if not candidates:
                return
            slot = self.rng.choice(candidates)
            assert slot.proc is not None
            self.faulted.add(slot.proc.pid)
            if kind == "kill":
                self.signal(slot, signal.SIGKILL)
            elif kind == "restart":
                self.signal(slot, signal.SIGTERM)
            else:
                self.signal(slot, signal.SIGSTOP)
                slot.stopped_until = time.monotonic() + self.rng.uniform(0.2, 2.0)
        self.faults[kind] += 1

    async def settle(self, timeout: float = 60.0) -> None:
        """Continue every stopped plugin and wait until all slots are registered."""
        for slot in self.slots:
            if slot.stopped_until is not None:
                slot.stopped_until = 0.0
        async with asyncio.timeout(timeout):
            while True:
                await self.supervise()
                registered = {(i.full_name, i.pid) for i in self.runtime.plugins}
                if all(
                    s.proc is not None
                    and s.proc.returncode is None
                    and (s.full_name, s.proc.pid) in registered
                    for s in self.slots
                ):
                    return
                await asyncio.sleep(0.05)

    # -- events --------------------------------------------------------------------------

    async def event(self, name: str, ident: str, call: Awaitable[Any], *, detail: str = "") -> Any:
        """Run one lifecycle call; note who must have got its ``name`` event for ``ident``
        (logged by the plugins as ``name ident`` + ``detail``)."""
        before = {(i.full_name, i.pid) for i in self.runtime.plugins}
        self.runtime.history.clear()
        try:
            result = await call
        except Exception as exc:
            self.errors.append(f"{name} {ident}: {exc}")
            return None
        finally:
            after = {(i.full_name, i.pid) for i in self.runtime.plugins}
        records = [
            r
            for r in self.runtime.history
            if r.event == name and ident in (r.container_id, r.pod_id)
        ]
        assert len(records) == 1, (name, ident, records)
        if name == "CreateContainer":
            self.merged[ident] = {
                c.plugin
                for c in records[0].changes
                if c.container_id == ident and (c.key or "").startswith("SOAK_")
            }
        for who in before & after:
            if who[1] not in self.faulted:
                self.expected[who].add(f"{name} {ident}{detail}")
        self.events[name] += 1
        self.runtime.history.clear()
        return result

    async def step(self) -> None:
        runtime, rng = self.runtime, self.rng
        pods = [p for p in runtime.pods.values() if p.state == "ready"]
        ctrs = list(runtime.containers.values())
        choice = rng.random()
        if not pods or (choice < 0.08 and len(runtime.pods) < MAX_PODS):
            n = next(self.serial)
            pid = f"soak-pod-{n}"
            await self.event("RunPodSandbox", pid, runtime.run_pod(f"pod-{n}", id=pid))
            return
        if choice < 0.12 and len(runtime.pods) > 1:
            pod = rng.choice(list(runtime.pods.values()))
            await self.event("RemovePodSandbox", pod.id, runtime.remove_pod(pod))
            for cid in [c for c in self.merged if c not in runtime.containers]:
                del self.merged[cid]
                self.removed[cid] = time.monotonic()
            self.removed[pod.id] = time.monotonic()
            return
        if choice < 0.55 and len(ctrs) < MAX_CONTAINERS:
            pod = rng.choice(pods)
            n = next(self.serial)
            ctr = f"soak-ctr-{n}"
            created = await self.event(
                "CreateContainer", ctr, runtime.create_container(pod, f"c{n}", id=ctr)
            )
            if isinstance(created, MockContainer) and created.id in runtime.containers:
                await self.event("StartContainer", ctr, runtime.start_container(ctr))
            return
        running = [c for c in ctrs if c.state == pb.CONTAINER_RUNNING]
        if choice < 0.75 and running:
            ctr = rng.choice(running)
            shares = 2 + next(self.serial)  # tells this update from the others
            await self.event(
                "UpdateContainer",
                ctr.id,
                runtime.update_container(ctr, {"cpu": {"shares": shares}}),
                detail=f" {shares}",
            )
            return
        if ctrs:
            ctr = rng.choice(ctrs)
            if ctr.state != pb.CONTAINER_STOPPED:
                await self.event("StopContainer", ctr.id, runtime.stop_container(ctr))
            await self.event("RemoveContainer", ctr.id, runtime.remove_container(ctr))
            self.merged.pop(ctr.id, None)
            self.removed[ctr.id] = time.monotonic()

    # -- checks --------------------------------------------------------------------------

    def verify(self) -> None:
        """Read what the plugins logged since the last call and check it (bounded memory:
        objects are forgotten a while after their removal)."""
        for path in sorted(self.log_dir.glob("*.log")):
            name, pid, _ = path.name.rsplit(".", 2)
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            complete = data.rfind(b"\n") + 1
            self.offsets[path] = self.offsets.get(path, 0) + complete
            pending = self.expected.get((name, int(pid)))
            for line in data[:complete].decode().splitlines():
                event, obj = line.split()[:2]
                if event == "Synchronize":
                    continue
                lines = self.seen[name].setdefault(obj, set())
                # Nothing applied twice: per plugin, each event for each object once.
                assert line not in lines, f"{name} got {line!r} twice"
                lines.add(line)
                if pending is not None and line in pending:
                    pending.discard(line)
                    self.checked += 1
        # Nothing lost: a steady instance logs an event before answering it.
        for who, pending in self.expected.items():
            assert not pending, f"{who} lost {len(pending)} events: {sorted(pending)[:10]}"
        self.expected.clear()
        forget = time.monotonic() - 5.0
        for obj in [o for o, t in self.removed.items() if t < forget]:
            del self.removed[obj]
            for objects in self.seen.values():
                objects.pop(obj, None)

    def check(self) -> None:
        self.verify()
        # Every container's spec is what the merged adjustments say.
        for cid, ctr in self.runtime.containers.items():
            env = dict(e.split("=", 1) for e in ctr.spec.get("process", {}).get("env", []))
            marks = {k: v for k, v in env.items() if k.startswith("SOAK_")}
            plugins = self.merged[cid]
            assert marks == {env_key(p.split("-", 1)[1]): ctr.name for p in plugins}, (
                cid,
                marks,
                plugins,
            )
            for plugin in plugins:
                assert f"CreateContainer {cid}" in self.seen[plugin].get(cid, set()), (plugin, cid)


@pytest.mark.timeout(SOAK_SECONDS + 240)
async def test_chaos_soak(tmp_path: Path) -> None:
    seed = int(os.environ.get("NRI_SOAK_SEED", str(random.randrange(1 << 30))))
    print(f"soak: seed {seed}, {SOAK_SECONDS:g}s of events, {len(SLOTS)} plugins")
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    runtime = MockRuntime(
        socket_path=tmp_path / "nri.sock", registration_timeout=2.0, request_timeout=0.5
    )
    soak = Soak(runtime, log_dir, random.Random(seed))
    async with runtime:
        try:
            await soak.settle()
            start = time.monotonic()
            end = start + SOAK_SECONDS
            warm_at = start + min(20.0, SOAK_SECONDS / 5)
            baseline: tuple[int, int, int] | None = None
            next_fault = start + 1.0
            next_verify = start + 2.0
            while time.monotonic() < end:
                if baseline is None and time.monotonic() >= warm_at:
                    await soak.settle()
                    baseline = (rss(), fds(), len(runtime.containers))
                await soak.supervise()
                if time.monotonic() >= next_fault:
                    await soak.inject_fault()
                    next_fault = time.monotonic() + soak.rng.uniform(0.2, 1.5)
                await soak.step()
                if time.monotonic() >= next_verify:
                    soak.verify()
                    next_verify = time.monotonic() + 2.0
            await soak.settle()
            await asyncio.sleep(0.5)  # let the plugins finish writing their logs
            final = (rss(), fds(), len(runtime.containers))
            soak.check()
        finally:
            for slot in soak.slots:
                if slot.proc is not None and slot.proc.returncode is None:
                    soak.signal(slot, signal.SIGCONT)
                    soak.signal(slot, signal.SIGKILL)
                    await slot.proc.wait()
    assert baseline is not None
    total_events = sum(soak.events.values())
    print(
        f"soak: {total_events} events {dict(soak.events)}; "
        f"{sum(soak.faults.values())} faults {dict(soak.faults)}; "
        f"{len(soak.errors)} failed events; "
        f"{soak.checked} deliveries to steady plugins checked"
    )
    print(
        f"soak: RSS {baseline[0] / 2**20:.1f} -> {final[0] / 2**20:.1f} MiB, "
        f"fds {baseline[1]} -> {final[1]}, containers {baseline[2]} -> {final[2]}"
    )
    assert not soak.errors, soak.errors[:10]
    assert total_events > 100
    assert final[1] <= baseline[1] + 2, (baseline, final)
    assert final[0] - baseline[0] < 16 << 20, (baseline, final)
