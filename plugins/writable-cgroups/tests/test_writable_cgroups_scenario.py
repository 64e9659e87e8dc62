"""plugins/writable-cgroups/scenario.yaml played by nri-mock-runtime with
nri-writable-cgroups, on a delegated host (it passes) and on one without nsdelegate (the
cgroup mount stays read-only: that expectation fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def play(table: str) -> subprocess.CompletedProcess[str]:
    plugin = (
        f"{sys.executable} -m nri_writable_cgroups --idx 10 "
        f"--host-mount-file {PLUGIN_DIR / 'tests' / 'data' / table}"
    )
    return subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", str(PLUGIN_DIR / "scenario.yaml"),
         "--color", "never", "--plugin", plugin],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_delegated_host() -> None:
    done = play("mountinfo-nsdelegate")
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last == "writable-cgroups: 4 steps, 4 expectations, 4 passed, 0 failed"


def test_host_without_nsdelegate() -> None:
    done = play("mountinfo-no-nsdelegate")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "writable-cgroups: 4 steps, 4 expectations, 1 passed, 3 failed" in lines
    failed = [
        line.split("scenario.yaml: ", 1)[1].split(": ")[0]
        for line in lines
        if line.startswith("  FAIL  ") and "scenario.yaml: " in line
    ]
    assert failed == ["steps[1].expect.spec[0]", "steps[1].expect.changed-by.Mounts:/sys/fs/cgroup",
                      "steps[3].expect.error"]  # fmt: skip
    assert "ignoring request to make cgroups writable" in done.stdout
