"""Shared pieces of the benchmarks: sample messages, percentiles, table printing.

Every table printed with :func:`print_table` is also appended, as one JSON line, to the file
named by the ``NRI_BENCH_JSON`` environment variable when it is set (``run.py --json FILE``
sets it and gathers the lines into one JSON document).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from nri.api import api_pb2 as pb


def sample_pod(index: int = 0) -> pb.PodSandbox:
    """A pod sandbox as a Kubernetes runtime would describe it."""
    return pb.PodSandbox(
        id=f"{index:064x}",
        name=f"web-frontend-7c9d8f6b5-x{index:04d}",
        uid=f"4f1c2b9e-8d3a-4e6f-9b2c-{index:012d}",
        namespace="production",
        labels={
            "app": "web-frontend",
            "pod-template-hash": "7c9d8f6b5",
            "io.kubernetes.pod.namespace": "production",
            "tier": "frontend",
        },
        annotations={
            "kubernetes.io/config.seen": "2026-11-27T10:00:00.000000000Z",
            "kubernetes.io/config.source": "api",
            "devices.noderesource.dev/container.nginx": "- path: /dev/null\n  type: c\n",
        },
        runtime_handler="runc",
        linux=pb.LinuxPodSandbox(
            cgroup_parent="/kubepods/burstable/pod4f1c2b9e",
            cgroups_path="/kubepods/burstable/pod4f1c2b9e/abcdef",
        ),
        ips=["10.244.1.17"],
    )


def sample_container(index: int = 0) -> pb.Container:
    """A container with the kind of args, env, mounts and resources real ones carry."""
    mounts = [
        pb.Mount(
            destination=f"/var/run/secrets/kubernetes.io/serviceaccount-{i}",
            type="bind",
            source=f"/var/lib/kubelet/pods/4f1c2b9e/volumes/kubernetes.io~projected/kube-api-{i}",
            options=["rbind", "rprivate", "ro"],
        )
        for i in range(4)
    ]
    return pb.Container(
        id=f"{index + 1:064x}",
        pod_sandbox_id=f"{index:064x}",
        name="nginx",
        state=pb.CONTAINER_CREATED,
        labels={"io.kubernetes.container.name": "nginx", "io.kubernetes.pod.name": "web"},
        annotations={"io.kubernetes.container.hash": "1a2b3c4d", "restart-count": "0"},
        args=["nginx", "-g", "daemon off;"],
        env=[f"VAR_{i}=value-{i:04d}" for i in range(20)],
        mounts=mounts,
        linux=pb.LinuxContainer(
            resources=pb.LinuxResources(
                memory=pb.LinuxMemory(limit=pb.OptionalInt64(value=256 << 20)),
                cpu=pb.LinuxCPU(
                    shares=pb.OptionalUInt64(value=512),
                    quota=pb.OptionalInt64(value=50000),
                    period=pb.OptionalUInt64(value=100000),
                    cpus="0-1",
                ),
            ),
            cgroups_path="/kubepods/burstable/pod4f1c2b9e/0123456789",
            oom_score_adj=pb.OptionalInt(value=-997),
        ),
    )


def sample_create_request(index: int = 0) -> pb.CreateContainerRequest:
    """A realistic CreateContainerRequest (about 2 KB serialized)."""
    return pb.CreateContainerRequest(pod=sample_pod(index), container=sample_container(index))


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (0..1) of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def summarize(name: str, latencies_s: Sequence[float], wall_s: float) -> dict[str, object]:
    """One table row: calls/s, p50, p99, mean (microseconds)."""
    return {
        "benchmark": name,
        "n": len(latencies_s),
        "per_s": len(latencies_s) / wall_s,
        "p50_us": percentile(latencies_s, 0.50) * 1e6,
        "p99_us": percentile(latencies_s, 0.99) * 1e6,
        "mean_us": statistics.fmean(latencies_s) * 1e6,
    }


def target_row(
    benchmark: str, value: float, unit: str, target: str, met: bool, **extra: object
) -> dict[str, object]:
    """One row of a benchmark that has a target: the value, the target and whether it is met."""
    return {
        "benchmark": benchmark,
        "value": round(value, 2),
        "unit": unit,
        **extra,
        "target": target,
        "met": "yes" if met else "NO",
    }


def print_table(title: str, rows: Sequence[dict[str, object]]) -> None:
    """Print rows of dicts as an aligned table (and record them, see the module docstring)."""
    if not rows:
        return
    record = os.environ.get("NRI_BENCH_JSON")
    if record:
        line = {"script": Path(sys.argv[0]).stem, "title": title, "rows": list(rows)}
        with open(record, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    columns = list(dict.fromkeys(c for row in rows for c in row))
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
