"""End to end: nri-ulimit-adjuster launched by the mock runtime, checked on the OCI specs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import DEFAULT_PATH_ENV, MockRuntime

ANNOTATIONS = {
    "ulimits.noderesource.dev/container.c0": """
- type: nofile
  soft: 1024
  hard: 4096
- type: RLIMIT_MEMLOCK
  soft: 645321
  hard: 987654
""",
    "ulimits.nri.containerd.io/container.c1": "- type: rlimit_nproc\n  hard: 9000\n",
    "ulimits.nri.containerd.io/container.bad": "- type: RLIMIT_FOO\n",
    "ulimits.noderesource.dev/container.low": "- {type: core, soft: 2, hard: 1}\n",
}

# a CRI runtime's default, which the annotation replaces
BASE_PROCESS = {
    "cwd": "/",
    "user": {"uid": 0, "gid": 0},
    "args": ["sleep", "inf"],
    "env": [DEFAULT_PATH_ENV],
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
}


@pytest.mark.timeout(30)
async def test_launched_plugin_sets_rlimits_and_rejects_bad_annotations(
    tmp_path: Path, assert_valid_oci_spec: Callable[[dict[str, Any]], None]
) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(
            [sys.executable, "-m", "nri_ulimit_adjuster", "--verbose"],
            name="ulimit-adjuster",
            idx="30",
        )
        assert handle.info.events == mask_of(pb.CREATE_CONTAINER)
        pod = await rt.run_pod("p", namespace="ns", annotations=ANNOTATIONS)

        c0 = await rt.create_container(pod, "c0", spec={"process": BASE_PROCESS})
        # appended after the runtime's own limit, as upstream's generator does (last wins)
        assert c0.spec["process"]["rlimits"] == [
            {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
            {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
            {"type": "RLIMIT_MEMLOCK", "hard": 987654, "soft": 645321},
        ]
        c1 = await rt.create_container(pod, "c1")
        assert c1.spec["process"]["rlimits"] == [{"type": "RLIMIT_NPROC", "hard": 9000, "soft": 0}]
        other = await rt.create_container(pod, "other")
        assert "rlimits" not in other.spec["process"]
        for ctr in (c0, c1, other):
            assert_valid_oci_spec(ctr.spec)

        for name, problem in (
            ("bad", "annotation 'ulimits.nri.containerd.io/container.bad', entry #0: "
                    "failed to parse type: 'RLIMIT_FOO'"),
            ("low", "ulimit 'RLIMIT_CORE' must have hard limit >= soft limit"),
        ):  # fmt: skip
            with pytest.raises(PluginError, match=f"pod ns/p, container {name}: "):
                await rt.create_container(pod, name)
            assert problem in (rt.last("CreateContainer").error or "")
            assert name not in {c.name for c in rt.containers.values()}

        again = await rt.create_container(pod, "c0")  # the plugin survived the failures
        assert len(again.spec["process"]["rlimits"]) == 2
        assert [p.full_name for p in rt.plugins] == ["30-ulimit-adjuster"]
        await handle.wait_for_output("p/c0: adjusting RLIMIT_NOFILE: soft 1024, hard 4096")


@pytest.mark.timeout(30)
async def test_go_typing_duplicates_and_bombs_through_the_runtime(tmp_path: Path) -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]\n" for i in range(6)
    )
    annotations = {
        "ulimits.noderesource.dev/container.typed": "- {Type: nofile, soft: 1024.0, hard: 2e3}\n",
        "ulimits.noderesource.dev/container.dup": "- {type: nofile}\n- {type: NOFILE}\n",
        "ulimits.noderesource.dev/container.bomb": bomb,
        "ulimits.noderesource.dev/container.half": "- {type: nofile, soft: 1024.5}\n",
    }
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, "-m", "nri_ulimit_adjuster"], name="ulimit-adjuster", idx="30"
        )
        pod = await rt.run_pod("p", annotations=annotations)
        typed = await rt.create_container(pod, "typed")
        assert typed.adjustment is not None
        assert list(typed.adjustment.rlimits) == [
            pb.POSIXRlimit(type="RLIMIT_NOFILE", hard=2000, soft=1024)
        ]
        assert {"type": "RLIMIT_NOFILE", "hard": 2000, "soft": 1024} in typed.spec["process"][
            "rlimits"
        ]
        for name, problem in (
            ("dup", "RLIMIT_NOFILE is given twice (entries #0 and #1)"),
            ("bomb", "invalid YAML: line 4 column 45: aliases expand to more than 10000"),
            ("half", "soft: cannot unmarshal number 1024.5 into uint64"),
        ):
            with pytest.raises(PluginError, match=f"container {name}: annotation"):
                await rt.create_container(pod, name)
            assert problem in (rt.last("CreateContainer").error or "")
        assert [p.full_name for p in rt.plugins] == ["30-ulimit-adjuster"]
