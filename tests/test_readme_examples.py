"""The README's examples do what the README says, run from the README's exact text.

tests/test_doc_examples.py runs every example; these check their results as well.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from test_doc_examples import run_command

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _block(kind: str, needle: str) -> str:
    found = [b for k, b in BLOCK.findall((REPO / "README.md").read_text()) if k == kind]
    matching = [b for b in found if needle in b]
    assert len(matching) == 1, f"expected one {kind} block with {needle!r} in README.md"
    return matching[0]


def test_readme_scenario_passes_with_the_readme_command(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(_block("yaml", "steps:"))
    command = shlex.split(_block("sh", "nri-mock-runtime run scenario.yaml"))
    assert command[0] == "nri-mock-runtime"
    done = run_command([sys.executable, "-m", "nri.mock", *command[1:]], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith("3 expectations, 3 passed, 0 failed")


def test_readme_pytest_example_passes(tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(_block("python", "nri_runtime"))
    done = run_command(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_readme_hosting_example_applies_the_plugin_adjustment(tmp_path: Path) -> None:
    (tmp_path / "runtime.py").write_text(_block("python", "container_from_spec"))
    done = run_command([sys.executable, "runtime.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "plugins: ['10-ulimit-adjuster']",
        "rlimits: [{'type': 'RLIMIT_NOFILE', 'hard': 4096, 'soft': 1024}]",
    ]
