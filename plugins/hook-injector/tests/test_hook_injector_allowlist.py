"""The ``allow`` section: it restricts the hooks pods request by annotation, nothing else."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from nri_hook_injector import HookInjector, parse_config

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime
from nri.stub import InjectionDenied
from nri.testing import allow_example

HOOK = sys.executable  # any existing absolute path
README = Path(__file__).resolve().parents[1] / "README.md"
ALLOW = "allow:\n  namespaces: [hooked]\n  on-denied: ON_DENIED\n"


def write(directory: Path, name: str, document: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(document))


def current(name: str, when: dict[str, Any]) -> dict[str, Any]:
    hook = {"path": HOOK, "args": [name]}
    return {"version": "1.0.0", "hook": hook, "when": when, "stages": ["poststop"]}


def hook_files(directory: Path) -> None:
    write(directory, "always.json", current("always", {"always": True}))
    write(directory, "mounts.json", current("mounts", {"hasBindMounts": True}))
    write(directory, "sh.json", current("sh", {"commands": ["sh$"]}))
    write(directory, "gpu.json", current("gpu", {"annotations": {"^example.com/gpu$": "^on$"}}))
    # annotation and command: both must match, so the annotation asked for it
    both = {"annotations": {"gpu": "on"}, "commands": ["sh"]}
    write(directory, "gpu-sh.json", current("gpu-sh", both))
    # the 0.1.0 schema: any one condition matches (args: the hook path, then "arguments")
    old = {"hook": HOOK, "arguments": ["old"], "stages": ["poststop"], "cmds": ["sh$"],
           "annotations": ["^on$"]}  # fmt: skip
    write(directory, "old.json", old)


def plugin(tmp_path: Path, on_denied: str) -> HookInjector:
    hook_files(tmp_path)
    made = HookInjector([str(tmp_path)], poll_interval=0)
    made.apply_config(parse_config(ALLOW.replace("ON_DENIED", on_denied), "test"))
    return made


def injected(adjust: Any) -> list[str]:
    """The hooks of an adjustment by their last argument (the hook file's name)."""
    if adjust is None:
        return []
    return [h.args[-1] for h in adjust.message.hooks.poststop]


def test_only_annotation_requested_hooks_are_restricted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    made = plugin(tmp_path, "ignore")
    gpu = {"example.com/gpu": "on"}
    sh = pb.Container(name="c", args=["/bin/sh"])
    sh.mounts.add(destination="/data", source="/srv", type="bind")

    allowed = pb.PodSandbox(name="a", namespace="hooked", annotations=gpu)
    assert injected(made.create_container(allowed, sh)) == [
        "always",
        "gpu-sh",
        "gpu",
        "mounts",
        "old",
        "sh",
    ]

    denied = pb.PodSandbox(name="d", namespace="default", annotations=gpu)
    with caplog.at_level("WARNING", logger="nri.hook_injector"):
        kept = made.create_container(denied, sh)
    # old.json matches through its command: it stays
    assert injected(kept) == ["always", "mounts", "old", "sh"]
    (line,) = [r.getMessage() for r in caplog.records if "may not request" in r.getMessage()]
    assert line == (
        "pod 'd' in namespace 'default' may not request injection (annotation "
        "'example.com/gpu' for hook gpu-sh.json, gpu.json): not in the plugin's allowlist; "
        "ignoring it"
    )

    # the 0.1.0 file matched only through the annotation is dropped as well
    python = pb.Container(name="c", args=["/usr/bin/python3"])
    assert injected(made.create_container(denied, python)) == ["always"]
    # a pod asking for nothing is not refused, nor logged
    caplog.clear()
    plain = pb.PodSandbox(name="p", namespace="default")
    assert injected(made.create_container(plain, sh)) == ["always", "mounts", "old", "sh"]
    assert not caplog.records


def test_container_annotations_are_not_the_pods_request(tmp_path: Path) -> None:
    made = plugin(tmp_path, "refuse")
    pod = pb.PodSandbox(name="d", namespace="default")
    ctr = pb.Container(name="c", args=["/usr/bin/python3"], annotations={"example.com/gpu": "on"})
    assert injected(made.create_container(pod, ctr)) == ["always", "gpu", "old"]


def test_refusal_names_pod_namespace_and_annotation(tmp_path: Path) -> None:
    made = plugin(tmp_path, "refuse")
    pod = pb.PodSandbox(name="d", namespace="default", annotations={"x": "on"})
    ctr = pb.Container(name="c", args=["/usr/bin/python3"])
    with pytest.raises(InjectionDenied, match=re.escape("(annotation 'x' for hook old.json)")):
        made.create_container(pod, ctr)
    # the command matches old.json by itself: nothing is asked for by the annotation
    ctr = pb.Container(name="c", args=["sh"])
    assert injected(made.create_container(pod, ctr)) == ["always", "old", "sh"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("on_denied", ["refuse", "ignore"])
async def test_through_the_command(tmp_path: Path, on_denied: str) -> None:
    hooks = tmp_path / "hooks.d"
    write(hooks, "always.json", current("always", {"always": True}))
    write(hooks, "gpu.json", current("gpu", {"annotations": {"^example.com/gpu$": "^on$"}}))
    config = tmp_path / "hook-injector.yaml"
    config.write_text(ALLOW.replace("ON_DENIED", on_denied) + f"hookDirs: [{hooks}]\n")
    command = [sys.executable, "-m", "nri_hook_injector", "--config", str(config)]
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(command, name="hook-injector", idx="10")
        gpu = {"example.com/gpu": "on"}
        allowed = await rt.run_pod("a", namespace="hooked", annotations=gpu)
        ctr = await rt.create_container(allowed, "app", args=["sh"])
        always, by_gpu = ({"path": HOOK, "args": [n]} for n in ("always", "gpu"))
        assert ctr.spec["hooks"]["poststop"] == [always, by_gpu]

        denied = await rt.run_pod("d", namespace="default", annotations=gpu)
        expected = "pod 'd' in namespace 'default' may not request injection"
        if on_denied == "refuse":
            with pytest.raises(PluginError, match=expected):
                await rt.create_container(denied, "app", args=["sh"])
        else:
            ctr = await rt.create_container(denied, "app", args=["sh"])
            assert ctr.spec["hooks"]["poststop"] == [always]
        output = await handle.wait_for_output(expected)
        assert output.count(expected) == 1
        assert "Traceback" not in output


@pytest.mark.timeout(30)
async def test_a_hook_that_cannot_be_matched_fails_on_one_line(tmp_path: Path) -> None:
    write(tmp_path, "sh.json", current("sh", {"commands": ["sh$"]}))
    command = [sys.executable, "-m", "nri_hook_injector", "--hook-dirs", str(tmp_path)]
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(command, name="hook-injector", idx="10")
        pod = await rt.run_pod("p")
        no_args = {"process": {"cwd": "/", "user": {"uid": 0, "gid": 0}}}
        with pytest.raises(PluginError, match="the container has no args"):
            await rt.create_container(pod, "c", spec=no_args)
        output = await handle.wait_for_output("the container has no args")
        assert "Traceback" not in output
        assert output.count("the container has no args") == 1


def test_readme_example() -> None:
    example = allow_example(README)
    allow = parse_config(example, "README.md").allow
    assert allow.on_denied == "ignore"
    assert allow.allows("gpu-jobs", {"team": "ml"})
    assert not allow.allows("default", {"team": "ml"})
    assert not allow.allows("ml-train", {"team": "web"})
