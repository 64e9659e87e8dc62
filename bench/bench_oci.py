"""SpecGenerator benchmark: time of ``SpecGenerator.adjust`` per field kind and size.

For each list- or map-valued field an adjustment carries, the spec starts with N entries of
that kind and the adjustment brings N entries, half replacing existing ones and half new
(removal markers where the field has them), so every lookup path is exercised. The time is
the best of several runs of ``adjust`` alone (building the spec and the message is not
counted). The target is linear work: 10,000 entries in at most 50 ms, 1,000 in at most 5 ms.

Usage: python bench/bench_oci.py [--sizes 1000,10000] [--rounds N] [--json FILE] [KIND ...]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table

from nri.api import api_pb2 as pb
from nri.oci import SpecGenerator

TARGET_MS_PER_10K = 50.0

Spec = dict[str, Any]
Case = Callable[[int], tuple[Spec, pb.ContainerAdjustment]]


def _base() -> Spec:
    return {"ociVersion": "1.2.0", "process": {"cwd": "/", "args": ["sh"]}, "linux": {}}


def _mounts(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["mounts"] = [
        {"destination": f"/data/d{i % 97}/m{i}", "type": "bind", "source": f"/src/{i}"}
        for i in range(n)
    ]
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        dest = f"/data/d{i % 97}/m{i}"
        if i % 10 == 0:
            dest = "-" + dest
        adjust.mounts.add(destination=dest, type="bind", source=f"/new/{i}", options=["rbind"])
    return spec, adjust


def _devices(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["linux"]["devices"] = [
        {"path": f"/dev/x{i}", "type": "c", "major": 10, "minor": i} for i in range(n)
    ]
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        path = f"/dev/x{i}" if i % 10 else f"-/dev/x{i}"
        adjust.linux.devices.add(path=path, type="c", major=10, minor=i)
    return spec, adjust


def _env(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["process"]["env"] = [f"VAR_{i}=old-{i}" for i in range(n)]
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        key = f"VAR_{i}" if i % 10 else f"-VAR_{i}"
        adjust.env.add(key=key, value=f"new-{i}")
    return spec, adjust


def _hooks(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["hooks"] = {"prestart": [{"path": f"/bin/h{i}"} for i in range(n)]}
    adjust = pb.ContainerAdjustment()
    for i in range(n):
        adjust.hooks.prestart.add(path=f"/bin/new{i}", args=["hook", str(i)])
    return spec, adjust


def _letters(i: int) -> str:
    """``i`` spelled in capital letters (rlimit type names allow no digits)."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out = chr(ord("A") + r) + out
        if not i:
            return out


def _rlimits(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["process"]["rlimits"] = [
        {"type": f"RLIMIT_{_letters(i)}", "hard": i, "soft": i} for i in range(n)
    ]
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        adjust.rlimits.add(type=f"RLIMIT_{_letters(i)}", hard=2 * i, soft=i)
    return spec, adjust


def _annotations(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["annotations"] = {f"example.com/a{i}": "old" for i in range(n)}
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        key = f"example.com/a{i}" if i % 10 else f"-example.com/a{i}"
        adjust.annotations[key] = "new"
    return spec, adjust


def _sysctl(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["linux"]["sysctl"] = {f"net.example.k{i}": "0" for i in range(n)}
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        key = f"net.example.k{i}" if i % 10 else f"-net.example.k{i}"
        adjust.linux.sysctl[key] = "1"
    return spec, adjust


def _hugepages(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["linux"]["resources"] = {
        "hugepageLimits": [{"pageSize": f"{i}KB", "limit": i} for i in range(n)]
    }
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        adjust.linux.resources.hugepage_limits.add(page_size=f"{i}KB", limit=2 * i)
    return spec, adjust


def _unified(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["linux"]["resources"] = {"unified": {f"x.k{i}": "0" for i in range(n)}}
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        adjust.linux.resources.unified[f"x.k{i}"] = "1"
    return spec, adjust


def _cgroup_devices(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["linux"]["resources"] = {
        "devices": [{"allow": True, "type": "c", "major": 1, "minor": i} for i in range(n)]
    }
    adjust = pb.ContainerAdjustment()
    for i in range(n):
        rule = adjust.linux.resources.devices.add(allow=True, type="c", access="rw")
        rule.major.value, rule.minor.value = 1, i
    return spec, adjust


def _net_devices(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    spec = _base()
    spec["linux"]["netDevices"] = {f"eth{i}": {"name": f"c{i}"} for i in range(n)}
    adjust = pb.ContainerAdjustment()
    for i in range(n // 2, n + n // 2):
        key = f"eth{i}" if i % 10 else f"-eth{i}"
        adjust.linux.net_devices[key].name = f"n{i}"
    return spec, adjust


def _cdi_devices(n: int) -> tuple[Spec, pb.ContainerAdjustment]:
    adjust = pb.ContainerAdjustment()
    for i in range(n):
        adjust.CDI_devices.add(name=f"vendor.com/dev=d{i}")
    return _base(), adjust


CASES: dict[str, Case] = {
    "mounts": _mounts,
    "devices": _devices,
    "env": _env,
    "hooks": _hooks,
    "rlimits": _rlimits,
    "annotations": _annotations,
    "sysctl": _sysctl,
    "hugepage limits": _hugepages,
    "unified": _unified,
    "cgroup device rules": _cgroup_devices,
    "net devices": _net_devices,
    "CDI devices": _cdi_devices,
}


def measure(case: Case, n: int, rounds: int) -> float:
    """Best time in seconds of ``SpecGenerator(spec).adjust(adjustment)`` over ``rounds``."""
    spec, adjust = case(n)
    best = float("inf")
    for _ in range(rounds):
        fresh = copy.deepcopy(spec)
        # Collections during the run then walk only what adjust allocates, not the inputs
        # this benchmark built (a runtime's heap is another matter).
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        SpecGenerator(fresh).adjust(adjust)
        best = min(best, time.perf_counter() - start)
        gc.unfreeze()
    return best


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated entry counts")
    parser.add_argument("--rounds", type=int, default=5, help="runs per row (best is shown)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
    parser.add_argument("kinds", nargs="*", help=f"field kinds (default all): {', '.join(CASES)}")
    args = parser.parse_args(argv)
    kinds = args.kinds or list(CASES)
    unknown = [k for k in kinds if k not in CASES]
    if unknown:
        parser.error(f"unknown field kind {unknown[0]!r}")
    rows = []
    for kind in kinds:
        for n in (int(s) for s in args.sizes.split(",")):
            took_ms = measure(CASES[kind], n, args.rounds) * 1e3
            target_ms = TARGET_MS_PER_10K * n / 10_000
            rows.append(
                {
                    "field": kind,
                    "entries": n,
                    "adjust_ms": took_ms,
                    "target_ms": target_ms,
                    "met": "met" if took_ms <= target_ms else "UNMET",
                }
            )
    print_table("SpecGenerator.adjust, spec with N entries + adjustment with N entries", rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
