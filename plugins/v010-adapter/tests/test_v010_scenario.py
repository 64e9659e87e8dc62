"""plugins/v010-adapter/scenario.yaml played by nri-mock-runtime with the v0.1.0 plugins of
examples/, as the scenario's header says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[1]
EXAMPLES = PLUGIN_DIR / "examples"


def test_scenario_passes() -> None:
    adapter = (
        f"{sys.executable} -m nri_v010_adapter --idx 00 --v010-config {EXAMPLES / 'conf.json'} "
        f"--v010-bin-dir {EXAMPLES}"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", str(PLUGIN_DIR / "scenario.yaml"),
         "--color", "never", "--plugin", adapter],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        done.stdout.splitlines()[-1] == "v010-adapter: 6 steps, 1 expectations, 1 passed, 0 failed"
    )
    logged = [
        json.loads(line.split(": invoke: ", 1)[1])
        for line in done.stdout.splitlines()
        if "v010-logger: invoke: " in line
    ]
    assert [(r["state"], r["id"].split("-")[0]) for r in logged] == [
        ("create", "pod001"), ("create", "ctr002"), ("delete", "ctr002"),
        ("delete", "pod001"), ("create", "pod003"),
    ]  # fmt: skip
    assert all(r["sandboxID"].startswith(("pod001", "pod003")) for r in logged)
