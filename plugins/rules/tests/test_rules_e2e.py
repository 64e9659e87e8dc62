"""End to end: nri-rules launched by the mock runtime, checked on the containers' OCI specs."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import PluginError
from nri.mock import SyncMockRuntime

RULES = """
rules:
  - name: ml
    match:
      namespace: [ml, "team-*"]
      podLabels: {gpu: {exists: true}}
      container: {regex: "train(er)?"}
    adjust:
      env: {FOO: bar, PORT: 8080}
      annotations: {example.com/rules: ml}
      rlimits: [{type: nofile, soft: 1024, hard: 4096}]
      resources: {memory: {limit: 512Mi}, cpu: {shares: 512, cpus: "0-1"}}
      mounts: [{source: /tmp, destination: /scratch, type: bind, options: [rbind, ro]}]
      devices: [{path: /dev/null}]
      cdiDevices: [vendor.com/gpu=0]
      oomScoreAdj: 100
      sysctls: {net.core.somaxconn: 1024}
      hooks: {createRuntime: [{path: /bin/true, args: ["true"], timeout: 5}]}
  - name: everyone
    adjust:
      env: {RULES: "on"}
  - name: big-nofile
    match:
      podLabels: {nofile: big}
    adjust:
      rlimits: [{type: RLIMIT_NOFILE, hard: 8192}]
  - name: resize-cap
    match:
      namespace: ml
    update:
      resources: {memory: {limit: 256Mi}}
"""


def launch(runtime: SyncMockRuntime, config: Path, *extra: str) -> Any:
    command = [sys.executable, "-m", "nri_rules", "--idx", "10", "--config", str(config), *extra]
    return runtime.launch_plugin(shlex.join(command))


def write(path: Path, text: str) -> None:
    """Replace the file at once (as editors and ConfigMap updates do)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.mark.timeout(60)
def test_rules_adjust_matching_containers(
    tmp_path: Path,
    nri_runtime: SyncMockRuntime,
    assert_valid_oci_spec: Callable[[dict[str, Any]], None],
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(RULES)
    launch(nri_runtime, config)
    pod = nri_runtime.run_pod("trainer-0", namespace="ml", labels={"gpu": "1"})
    ctr = nri_runtime.create_container(pod, "trainer")
    spec = ctr.spec
    assert_valid_oci_spec(spec)
    env = spec["process"]["env"]
    assert {"FOO=bar", "PORT=8080", "RULES=on"} <= set(env)
    assert spec["annotations"]["example.com/rules"] == "ml"
    assert {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024} in spec["process"]["rlimits"]
    resources = spec["linux"]["resources"]
    assert resources["memory"]["limit"] == 512 << 20
    assert resources["cpu"]["shares"] == 512
    assert resources["cpu"]["cpus"] == "0-1"
    mount = next(m for m in spec["mounts"] if m["destination"] == "/scratch")
    assert mount == {"destination": "/scratch", "type": "bind", "source": "/tmp",
                     "options": ["rbind", "ro"]}  # fmt: skip
    null = os.stat("/dev/null")
    device = next(d for d in spec["linux"]["devices"] if d["path"] == "/dev/null")
    assert (device["type"], device["major"], device["minor"]) == (
        "c",
        os.major(null.st_rdev),
        os.minor(null.st_rdev),
    )
    assert spec["process"]["oomScoreAdj"] == 100
    assert spec["linux"]["sysctl"]["net.core.somaxconn"] == "1024"
    assert spec["hooks"]["createRuntime"] == [{"path": "/bin/true", "args": ["true"], "timeout": 5}]
    assert ctr.adjustment is not None
    assert [d.name for d in ctr.adjustment.CDI_devices] == ["vendor.com/gpu=0"]
    assert ctr.owners["Env:FOO"] == "10-rules"

    # the container name does not match the regex as a whole: only "everyone" applies
    other = nri_runtime.create_container(pod, "trainer-sidecar")
    assert "RULES=on" in other.spec["process"]["env"]
    assert "FOO=bar" not in other.spec["process"]["env"]
    # a pod without the label
    plain = nri_runtime.run_pod("web", namespace="team-a")
    web = nri_runtime.create_container(plain, "trainer")
    assert "FOO=bar" not in web.spec["process"]["env"]

    # UpdateContainer: the rule's update caps the memory limit kubelet asks for
    updated = nri_runtime.update_container(ctr, {"memory": {"limit": 2 << 30}})
    assert updated.spec["linux"]["resources"]["memory"]["limit"] == 256 << 20
    web_updated = nri_runtime.update_container(web, {"memory": {"limit": 2 << 30}})
    assert web_updated.spec["linux"]["resources"]["memory"]["limit"] == 2 << 30


@pytest.mark.timeout(60)
def test_conflicting_rules_fail_the_creation(tmp_path: Path, nri_runtime: SyncMockRuntime) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(RULES)
    process = launch(nri_runtime, config)
    pod = nri_runtime.run_pod("p", namespace="ml", labels={"gpu": "1", "nofile": "big"})
    with pytest.raises(PluginError, match="pod ml/p, container trainer: "):
        nri_runtime.create_container(pod, "trainer")
    errors = [r.error for r in nri_runtime.history if r.error]
    assert any(
        "pod ml/p, container trainer: rule #0 (ml) and rule #2 (big-nofile) both set Rlimits "
        "RLIMIT_NOFILE" in e
        for e in errors
    ), errors
    # the possible conflict was reported at load time, on one line
    stderr = bytes(process.stderr).decode()
    assert (
        "rule #0 (ml) and rule #2 (big-nofile) both set Rlimits RLIMIT_NOFILE (for a container "
        "matching both)" in stderr
    )
    # the plugin keeps serving
    ok = nri_runtime.create_container(pod, "other")
    assert "RULES=on" in ok.spec["process"]["env"]


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_hot_reload_keeps_old_rules_when_invalid(
    tmp_path: Path, nri_runtime: SyncMockRuntime
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("rules:\n- name: one\n  adjust: {env: {VERSION: '1'}}\n")
    process = launch(nri_runtime, config, "--poll-interval", "0.1")
    pod = nri_runtime.run_pod("p")
    assert "VERSION=1" in nri_runtime.create_container(pod, "a").spec["process"]["env"]

    write(config, "rules:\n- name: two\n  adjust: {env: {VERSION: '2'}}\n")
    assert "VERSION=2" in nri_runtime.create_container(pod, "b").spec["process"]["env"]

    # an invalid file: the rules in force stay, and why is logged on one line (by the poller)
    write(config, "rules:\n- name: three\n  adjust: {env: {VERSION: 3.5}}\n")

    def logged() -> bool:
        return "not reloading rules" in bytes(process.stderr).decode()

    _wait_for(logged, "the reload error")
    assert "VERSION=2" in nri_runtime.create_container(pod, "c").spec["process"]["env"]
    lines = [
        line for line in bytes(process.stderr).decode().splitlines() if "not reloading" in line
    ]
    assert len(lines) == 1, lines  # logged once per change, not once per check
    assert "keeping the 1 rules loaded before" in lines[0]
    assert f"{config}: rule #0 (three): adjust.env.VERSION: expected a string" in lines[0]

    # a deleted file keeps the rules too; a valid one comes back into force
    config.unlink()
    assert "VERSION=2" in nri_runtime.create_container(pod, "d").spec["process"]["env"]
    write(config, "rules: []\n")
    env = nri_runtime.create_container(pod, "e").spec["process"]["env"]
    assert not any(e.startswith("VERSION=") for e in env)


LINUX_RULES = """
rules:
  - name: realtime
    match: {namespace: rt}
    adjust:
      args: [/bin/app, --port, 8080]
      scheduler: {policy: SCHED_FIFO, priority: 50, flags: [SCHED_FLAG_RESET_ON_FORK]}
      ioPriority: {class: IOPRIO_CLASS_RT, priority: 4}
      memoryPolicy: {mode: MPOL_BIND, nodes: "0", flags: [MPOL_F_STATIC_NODES]}
      namespaces: [{type: network, path: /var/run/netns/blue}, {type: time}]
      removeNamespaces: [ipc]
      netDevices: {eth1: {name: net1}, eth2: {}}
      removeNetDevices: [eth9]
      seccomp:
        defaultAction: SCMP_ACT_ERRNO
        defaultErrnoRet: 1
        architectures: [SCMP_ARCH_X86_64]
        syscalls:
          - {names: [read, write], action: SCMP_ACT_ALLOW}
          - {names: [personality], action: SCMP_ACT_ALLOW,
             args: [{index: 0, value: 8, op: SCMP_CMP_EQ}]}
      intelRdt: {closID: gold, schemata: ["L3:0=ff"], enableMonitoring: true}
  - name: other-netns
    match: {podLabels: {netns: other}}
    adjust:
      namespaces: [{type: network, path: /var/run/netns/other}]
"""

BASE_LINUX = {
    "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
    "netDevices": {"eth9": {"name": "old"}},
}


@pytest.mark.timeout(60)
def test_linux_settings_reach_the_oci_spec(
    tmp_path: Path,
    nri_runtime: SyncMockRuntime,
    assert_valid_oci_spec: Callable[[dict[str, Any]], None],
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(LINUX_RULES)
    process = launch(nri_runtime, config)
    pod = nri_runtime.run_pod("rt-0", namespace="rt")
    ctr = nri_runtime.create_container(pod, "app", args=["sh"], spec={"linux": BASE_LINUX})
    spec = ctr.spec
    assert_valid_oci_spec(spec)
    assert spec["process"]["args"] == ["/bin/app", "--port", "8080"]
    assert spec["process"]["scheduler"] == {
        "policy": "SCHED_FIFO",
        "priority": 50,
        "flags": ["SCHED_FLAG_RESET_ON_FORK"],
    }
    assert spec["process"]["ioPriority"] == {"class": "IOPRIO_CLASS_RT", "priority": 4}
    linux = spec["linux"]
    assert linux["memoryPolicy"] == {
        "mode": "MPOL_BIND",
        "nodes": "0",
        "flags": ["MPOL_F_STATIC_NODES"],
    }
    assert linux["namespaces"] == [
        {"type": "pid"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "network", "path": "/var/run/netns/blue"},
        {"type": "time"},
    ]
    assert linux["netDevices"] == {"eth1": {"name": "net1"}, "eth2": {}}
    assert linux["seccomp"] == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }
    assert linux["intelRdt"] == {
        "closID": "gold",
        "schemata": ["L3:0=ff"],
        "enableMonitoring": True,
    }
    assert ctr.owners["Namespace:network"] == "10-rules"
    assert ctr.owners["LinuxSched"] == "10-rules"

    # the possible conflict over the network namespace: a warning at load time, and a
    # failed creation for a container that both rules match
    stderr = bytes(process.stderr).decode()
    assert (
        "rule #0 (realtime) and rule #1 (other-netns) both set Namespace network (for a "
        "container matching both)" in stderr
    )
    both = nri_runtime.run_pod("rt-1", namespace="rt", labels={"netns": "other"})
    with pytest.raises(PluginError, match="pod rt/rt-1, container app: rule #0 "):
        nri_runtime.create_container(both, "app")
    errors = [r.error for r in nri_runtime.history if r.error]
    assert any(
        "rule #0 (realtime) and rule #1 (other-netns) both set Namespace network" in e
        for e in errors
    ), errors
    # a container only the second rule matches
    plain = nri_runtime.run_pod("web", namespace="web", labels={"netns": "other"})
    web = nri_runtime.create_container(plain, "app", args=["sh"])
    assert {"type": "network", "path": "/var/run/netns/other"} in web.spec["linux"]["namespaces"]
    assert web.spec["process"]["args"] == ["sh"]
    assert "scheduler" not in web.spec["process"]
