"""plugins/default-validator/scenario.yaml played by nri-mock-runtime with the sample
configuration, as the scenario's header says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def test_scenario_passes() -> None:
    validator = (
        f"{sys.executable} -m nri_default_validator --idx 90 "
        f"--config {PLUGIN_DIR / 'sample-config.yaml'}"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nri.mock", "run", str(PLUGIN_DIR / "scenario.yaml"),
         "--color", "never", "--plugin", validator,
         "--plugin", f"{sys.executable} -m nri_rdt --idx 10"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last == "default-validator: 4 steps, 1 expectations, 1 passed, 0 failed"
