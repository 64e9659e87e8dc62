"""The README's mock-runtime examples work as written: the scenario and the pytest test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(yaml|python)\n(.*?)```", re.S)


def _blocks(kind: str, needle: str) -> str:
    found = [b for k, b in BLOCK.findall((REPO / "README.md").read_text()) if k == kind]
    matching = [b for b in found if needle in b]
    assert len(matching) == 1, f"expected one {kind} block with {needle!r} in README.md"
    return matching[0]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The plugin commands are installed next to this interpreter.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PATH": path},
    )


def test_readme_scenario_passes(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(_blocks("yaml", "steps:"))
    plugin = "nri-ulimit-adjuster --idx 10 --name ulimit-adjuster"
    done = _run("-m", "nri.mock", "run", "scenario.yaml", "--plugin", plugin, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith("3 expectations, 3 passed, 0 failed")


def test_readme_pytest_example_passes(tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(_blocks("python", "nri_runtime"))
    done = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
