"""plugins/rdt/scenario.yaml played by nri-mock-runtime with nri-rdt, as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def test_scenario_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", str(PLUGIN_DIR / "scenario.yaml"),
         "--color", "never", "--plugin", f"{sys.executable} -m nri_rdt --idx 10"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "rdt: 5 steps, 7 expectations, 7 passed, 0 failed"
