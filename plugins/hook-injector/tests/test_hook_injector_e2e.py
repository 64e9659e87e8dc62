"""End to end: nri-hook-injector launched by the mock runtime, checked on the OCI specs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import DEFAULT_PATH_ENV, MockRuntime

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SCRIPT = str(SAMPLES / "demo-hook.sh")
DEMO_HOOK = {
    "path": SCRIPT,
    "args": ["nri-demo-hook.sh", "injected", "by", "nri-hook-injector"],
    "env": ["DEMO_HOOK_LOG=/tmp/nri-demo-hook.log"],
    "timeout": 5,
}


def write_hook(directory: Path, name: str, when: dict[str, Any], stages: list[str]) -> None:
    document = {
        "version": "1.0.0",
        "hook": {"path": SCRIPT, "args": [name]},
        "when": when,
        "stages": stages,
    }
    (directory / name).write_text(json.dumps(document))


@pytest.mark.timeout(30)
async def test_hook_files_decide_the_hooks_in_the_spec(
    tmp_path: Path, assert_valid_oci_spec: Callable[[dict[str, Any]], None]
) -> None:
    low, high = tmp_path / "low.d", tmp_path / "high.d"
    low.mkdir()
    high.mkdir()
    sample = json.loads((SAMPLES / "demo-hook.json").read_text())
    sample["hook"]["path"] = SCRIPT  # the sample points at its installed location
    (low / "demo-hook.json").write_text(json.dumps(sample))
    write_hook(
        low, "traced.json", {"annotations": {"^example.com/trace$": "^on$"}}, ["createRuntime"]
    )
    write_hook(low, "masked.json", {"always": True}, ["poststart"])
    write_hook(high, "masked.json", {"annotations": {"trace": "."}}, ["startContainer"])
    (high / "broken.json").write_text("{")
    command = [
        sys.executable, "-m", "nri_hook_injector",
        "--hook-dirs", f"{tmp_path / 'missing.d'},{low},{high}", "--poll-interval", "0",
    ]  # fmt: skip

    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(command, name="hook-injector", idx="10")
        assert handle.info.events == mask_of(pb.CREATE_CONTAINER)
        pod = await rt.run_pod("web")
        traced = await rt.run_pod("traced", annotations={"example.com/trace": "on"})

        busybox = await rt.create_container(pod, "bb", args=["/bin/busybox", "sleep", "1"])
        assert busybox.spec["hooks"] == {"createRuntime": [DEMO_HOOK], "poststop": [DEMO_HOOK]}
        assert busybox.owners == {"OciHooks": "10-hook-injector"}

        plain = await rt.create_container(pod, "py", args=["/usr/bin/python3"])
        assert "hooks" not in plain.spec

        annotated = await rt.create_container(traced, "py", args=["/usr/bin/python3"])
        assert annotated.spec["hooks"] == {
            "createRuntime": [{"path": SCRIPT, "args": ["traced.json"]}],
            "startContainer": [{"path": SCRIPT, "args": ["masked.json"]}],  # high.d wins
        }

        write_hook(high, "late.json", {"always": True}, ["poststop"])  # rescanned per container
        late = await rt.create_container(pod, "sh", args=["sh"])
        assert late.spec["hooks"]["poststop"] == [
            DEMO_HOOK,
            {"path": SCRIPT, "args": ["late.json"]},
        ]
        for ctr in (busybox, plain, annotated, late):
            assert_valid_oci_spec(ctr.spec)

        log = await handle.wait_for_output("web/bb: injecting hooks from demo-hook.json")
        assert f"skipping broken hook file {high / 'broken.json'}: " in log
        assert "web/bb: injecting hooks from demo-hook.json" in log

        no_args = {"process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "env": [DEFAULT_PATH_ENV]}}
        with pytest.raises(PluginError, match="'demo-hook.json': the container has no args"):
            await rt.create_container(pod, "no-args", spec=no_args)
        assert "no-args" not in {c.name for c in rt.containers.values()}
