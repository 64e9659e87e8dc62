"""The nri-rules command: the shared plugin command checks, and check/explain as processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection

COMMAND = [sys.executable, "-m", "nri_rules"]

RULES = """
rules:
  - name: ml
    match: {namespace: ml, podLabels: {gpu: {exists: true}}}
    adjust:
      env: {FOO: bar}
      devices: [{path: /dev/null}]
  - name: guaranteed
    match: {qosClass: Guaranteed}
    adjust:
      resources: {cpu: {shares: 2048}}
    update:
      resources: {memory: {limit: 1Gi}}
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ml, labels: {gpu: "1"}}
spec:
  runtimeClassName: nvidia
  initContainers: [{name: init, image: busybox}]
  containers:
    - name: app
      image: example.com/app:1
      resources: {limits: {cpu: "1", memory: 1Gi}}
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture
def check(nri_plugin_command: Callable[..., PluginCommandCheck]) -> PluginCommandCheck:
    return nri_plugin_command(COMMAND, name="rules")


def test_help_and_version(check: PluginCommandCheck) -> None:
    check.check_help("--poll-interval", "--host-lookup", "--host-permissions")
    check.check_version()


@pytest.mark.slow
def test_bad_flags(check: PluginCommandCheck) -> None:
    check.check_bad_flags(
        Rejection(["--poll-interval", "soon"], "not a number of seconds: 'soon'"),
        Rejection(["-poll-interval=-1"], "must be >= 0, got -1"),
        Rejection(["-host-lookup=maybe"], "expected true or false"),
    )


@pytest.mark.slow
def test_bad_config_files(check: PluginCommandCheck) -> None:
    check.check_bad_config_files(
        wrong_type=(
            "rules: [{name: a, adjust: {env: {X: yes}}}]\n",
            "rule #0 (a): adjust.env.X: expected a string, got boolean True (quote it)",
        )
    )
    check.assert_rejects(
        config="rules:\n- {name: a, adjust: {env: {X: '1'}}}\n- {name: b, adjust: {env: {X: '2'}}}\n",
        message="rule #0 (a) and rule #1 (b) both set Env X (the rules match the same containers)",
    )


def test_registers_with_upstream_flags(
    check: PluginCommandCheck, nri_runtime: SyncMockRuntime, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(RULES)
    log = check.check_registers(nri_runtime, "-config", str(config), "-poll-interval=0")
    assert "registering plugin 10-rules" in log.stderr
    assert f"serving 2 rules from {config}" in log.stderr
    assert log.plugins[0].events  # CreateContainer and UpdateContainer


def test_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(RULES)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n- name: x\n  adjust: {rlimits: [{type: nofiles, hard: 1}]}\n")
    done = run("check", str(good))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{good}: 2 rules, valid\n", "")
    done = run("check", str(good), str(bad), str(tmp_path / "missing.yaml"))
    assert done.returncode == 1
    assert done.stdout == f"{good}: 2 rules, valid\n"
    assert done.stderr.splitlines() == [
        f"nri-rules: error: {bad}: rule #0 (x): adjust.rlimits[0].type: unknown rlimit 'nofiles'",
        f"nri-rules: error: cannot read config file {tmp_path / 'missing.yaml'}: "
        "No such file or directory",
    ]


def test_check_reports_possible_conflicts(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "- {name: a, match: {podLabels: {x: '1'}}, adjust: {oomScoreAdj: 1}}\n"
        "- {name: b, match: {podLabels: {y: '1'}}, adjust: {oomScoreAdj: 2}}\n"
    )
    warning = (
        f"{rules}: rule #0 (a) and rule #1 (b) both set OomScoreAdj (for a container matching both)"
    )
    done = run("check", str(rules))
    assert done.returncode == 0
    assert done.stderr == f"nri-rules: warning: {warning}\n"
    done = run("check", "--strict", str(rules))
    assert done.returncode == 1
    assert done.stderr == f"nri-rules: error: {warning}\n"
    assert done.stdout == ""


def test_explain_json(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_text(POD)
    done = run("explain", "rules.yaml", "--pod", "pod.yaml", "--output", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    init, app = json.loads(done.stdout)
    assert (app["container"], app["qosClass"], app["runtimeHandler"], app["image"]) == (
        "app",
        "Burstable",  # the init container has no limits
        "nvidia",
        "example.com/app:1",
    )
    assert app["matched"] == ["rule #0 (ml)"]
    assert app["skipped"] == {"rule #1 (guaranteed)": "qosClass Burstable is not Guaranteed"}
    assert app["adjustment"]["env"] == [{"key": "FOO", "value": "bar"}]
    assert app["adjustment"]["linux"]["devices"][0]["path"] == "/dev/null"
    assert app["adjustment"]["linux"]["devices"][0]["type"] == "c"  # looked up on this host
    assert app["update"] is None
    assert init["container"] == "init"


def test_explain_guaranteed_pod_shows_the_update(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_text(
        POD.replace("  initContainers: [{name: init, image: busybox}]\n", "")
    )
    done = run("explain", "rules.yaml", "--pod", "pod.yaml", "--no-host-lookup", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "pod ml/p, container app (image example.com/app:1, QoS Guaranteed, runtime handler nvidia)",
        "  matches rule #0 (ml)",
        "  matches rule #1 (guaranteed)",
    ]
    assert "    - path: /dev/null\n" in done.stdout
    assert "    type: c" not in done.stdout  # not looked up
    assert "  update at UpdateContainer:\n" in done.stdout
    assert "            value: 1073741824\n" in done.stdout


def test_explain_errors(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "bad-pod.yaml").write_text("kind: Pod\nmetadata: {labels: {a: 1}}\n")
    (tmp_path / "conflict.yaml").write_text(
        "rules:\n- {name: a, match: {namespace: ml}, adjust: {env: {X: '1'}}}\n"
        "- {name: b, match: {podLabels: {gpu: '1'}}, adjust: {env: {X: '2'}}}\n"
    )
    cases = [
        (["--pod", "bad-pod.yaml"], 2, "nri-rules: error: bad-pod.yaml: metadata.name: missing"),
        (["--pod", "pod.yaml", "--container", "nope"], 2, "nri-rules: error: pod.yaml: no container 'nope'"),
        (["--pod", "missing.yaml"], 2, "nri-rules: error: cannot read config file missing.yaml"),
    ]  # fmt: skip
    for args, status, message in cases:
        done = run("explain", "rules.yaml", *args, cwd=tmp_path)
        assert done.returncode == status, (args, done.stderr)
        assert done.stderr.startswith(message), (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1
    done = run("explain", "conflict.yaml", "--pod", "pod.yaml", "--container", "app", cwd=tmp_path)
    assert done.returncode == 1
    assert "  error: rule #0 (a) and rule #1 (b) both set Env X\n" in done.stdout
    done = run("explain", "rules.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert "the following arguments are required: --pod" in done.stderr


def test_plugin_help_is_not_taken_by_the_subcommands() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "--idx" in done.stdout
    text = " ".join(done.stdout.split())
    assert "Without a runtime: check FILE validates rules files, explain FILE" in text
    done = run("check", "--help")
    assert done.returncode == 0
    assert "--strict" in done.stdout
