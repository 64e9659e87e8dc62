"""Every example of the README, executed: files written, commands run, output compared."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from nri_rules import parse_rules

from nri.mock import SyncMockRuntime

README = Path(__file__).parents[1] / "README.md"
_BLOCK = re.compile(
    r"<!-- (file: (?P<name>\S+)|run|launch) -->\n```(?P<lang>\w+)\n(?P<body>.*?)```", re.S
)


def blocks() -> list[tuple[str, str | None, str]]:
    """(kind, file name, body) of every marked block, in README order."""
    found = []
    for match in _BLOCK.finditer(README.read_text()):
        marker = match.group(1)
        kind = "file" if marker.startswith("file:") else marker
        found.append((kind, match.group("name"), match.group("body")))
    return found


def test_every_code_block_is_marked() -> None:
    text = README.read_text()
    fenced = re.findall(r"```(\w+)\n", text)
    code = [lang for lang in fenced if lang in ("yaml", "console", "sh")]
    # the install and test commands are the only unmarked ones
    assert len(code) == len(blocks()) + 2, (len(code), len(blocks()))


def test_examples_are_valid_rules_files() -> None:
    files = {name: body for kind, name, body in blocks() if kind == "file" and name}
    rules_files = [name for name in files if name != "pod.yaml"]
    assert len(rules_files) >= 6
    for name in rules_files:
        rules = parse_rules(files[name], name)
        assert rules.rules, name
        assert rules.warnings == (), name


def nri_rules(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command as the README's examples do, in ``cwd``."""
    command = [sys.executable, "-m", "nri_rules", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for kind, name, body in blocks():
        if kind == "file" and name:
            (tmp_path / name).write_text(body)
    return tmp_path


def test_console_examples_print_what_the_readme_shows(workdir: Path) -> None:
    runs = [body for kind, _, body in blocks() if kind == "run"]
    assert len(runs) == 2
    for body in runs:
        command, *expected = body.splitlines()
        assert command.startswith("$ nri-rules ")
        done = nri_rules(workdir, *shlex.split(command.removeprefix("$ nri-rules ")))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == expected


def test_checking_each_example_file_succeeds(workdir: Path) -> None:
    names = [name for kind, name, _ in blocks() if kind == "file" and name and name != "pod.yaml"]
    done = nri_rules(workdir, "check", *names)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.timeout(60)
def test_launch_example_serves_the_quick_start_rules(
    workdir: Path, nri_runtime: SyncMockRuntime
) -> None:
    (command,) = [body.strip() for kind, _, body in blocks() if kind == "launch"]
    args = shlex.split(command)
    assert args[0] == "nri-rules"
    args = [sys.executable, "-m", "nri_rules", *args[1:]]
    args[args.index("rules.yaml")] = str(workdir / "rules.yaml")
    nri_runtime.launch_plugin(shlex.join(args))
    pod = nri_runtime.run_pod("train-0", namespace="ml", labels={"nvidia.com/gpu.present": "true"})
    trainer = nri_runtime.create_container(pod, "trainer")
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in trainer.spec["process"]["env"]
    assert trainer.spec["linux"]["resources"]["memory"]["limit"] == 8 << 30
    assert any(
        m["destination"] == "/dev/shm" and m["type"] == "bind" for m in trainer.spec["mounts"]
    )
    assert {"type": "RLIMIT_MEMLOCK", "hard": (1 << 64) - 1, "soft": (1 << 64) - 1} in trainer.spec[
        "process"
    ]["rlimits"]
    exporter = nri_runtime.create_container(pod, "exporter")
    assert "memory" not in exporter.spec["linux"].get("resources", {}) or (
        exporter.spec["linux"]["resources"]["memory"].get("limit") != 8 << 30
    )


@pytest.mark.timeout(60)
def test_linux_examples_reach_the_oci_spec(
    workdir: Path, nri_runtime: SyncMockRuntime, assert_valid_oci_spec: Any
) -> None:
    # the three examples of process and Linux settings, served together by one plugin
    rules: list[Any] = []
    for name in ("realtime.yaml", "dataplane.yaml", "lockdown.yaml"):
        rules += yaml.safe_load((workdir / name).read_text())["rules"]
    combined = workdir / "linux.yaml"
    combined.write_text(yaml.safe_dump({"rules": rules}))
    command = [sys.executable, "-m", "nri_rules", "--idx", "10", "--config", str(combined)]
    nri_runtime.launch_plugin(shlex.join(command))

    pod = nri_runtime.run_pod("fast", labels={"example.com/latency": "low"})
    guaranteed = {"memory": {"limit": 1 << 30}, "cpu": {"shares": 1024, "quota": 100000,
                                                      "period": 100000}}  # fmt: skip
    fast = nri_runtime.create_container(pod, "app", resources=guaranteed).spec
    assert_valid_oci_spec(fast)
    assert fast["process"]["scheduler"]["policy"] == "SCHED_FIFO"
    assert fast["process"]["ioPriority"] == {"class": "IOPRIO_CLASS_RT", "priority": 4}
    assert fast["linux"]["memoryPolicy"]["mode"] == "MPOL_BIND"
    assert fast["linux"]["intelRdt"] == {"closID": "low-latency", "enableMonitoring": True}

    pod = nri_runtime.run_pod("fwd-0", namespace="dataplane")
    forwarder = nri_runtime.create_container(pod, "forwarder").spec
    assert_valid_oci_spec(forwarder)
    namespaces = forwarder["linux"]["namespaces"]
    assert {"type": "network", "path": "/var/run/netns/dataplane"} in namespaces
    assert {"type": "time"} in namespaces
    assert forwarder["linux"]["netDevices"] == {"ens1f0v1": {"name": "net1"}}

    pod = nri_runtime.run_pod(
        "shell", namespace="tenant-a", annotations={"example.com/debug": "idle"}
    )
    shell = nri_runtime.create_container(pod, "app", args=["/bin/app"]).spec
    assert_valid_oci_spec(shell)
    syscalls = shell["linux"]["seccomp"]["syscalls"]
    assert syscalls[0]["names"] == ["ptrace", "process_vm_readv", "process_vm_writev"]
    assert syscalls[0]["errnoRet"] == 1
    assert shell["process"]["args"] == ["/bin/sleep", "infinity"]
    assert "pid" not in [ns["type"] for ns in shell["linux"].get("namespaces", [])]
