"""Single-file pre-installed plugins (deploy/zipapps.sh): a shiv zipapp started by the runtime
from its plugin directory, socket on fd 3, with no venv, no checkout and no HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _packaging import ROOT, clean_env, wheelhouse

pytestmark = pytest.mark.slow

SCENARIO = """\
name: zipapp
pods:
  web: {namespace: deploy, annotations: {"ulimits.noderesource.dev/container.app": "- {type: nofile, soft: 1024, hard: 4096}"}}
containers:
  app: {pod: web}
steps:
  - run-pod: web
  - create-container: app
    expect:
      spec:
        - {path: /process/rlimits, equals: [{type: RLIMIT_NOFILE, hard: 4096, soft: 1024}]}
"""


def build_zipapp(out: Path, plugin: str, unpack_root: Path) -> Path:
    """``deploy/zipapps.sh`` for one plugin, from the wheelhouse, unpacking under ``unpack_root``."""
    shiv = Path(sys.executable).with_name("shiv")
    assert shiv.exists(), "shiv is not installed beside this interpreter"
    env = clean_env()
    env.update(NRI_WHEELHOUSE=str(wheelhouse()), NRI_ZIPAPP_ROOT=str(unpack_root), SHIV=str(shiv))
    subprocess.run(["bash", ROOT / "deploy/zipapps.sh", out, plugin], env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return out / f"nri-{plugin}.pyz"


def test_preinstalled_zipapp_runs_without_venv_or_home(tmp_path: Path) -> None:
    unpack = tmp_path / "unpack"
    zipapp = build_zipapp(tmp_path / "out", "ulimit-adjuster", unpack)
    plugins = tmp_path / "opt/nri/plugins"
    plugins.mkdir(parents=True)
    installed = plugins / "10-ulimit-adjuster"
    shutil.copy(zipapp, installed)
    installed.chmod(0o755)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    # the runtime's environment: no HOME, no SHIV_ROOT, nothing of Python's; the interpreter
    # is whichever python3 the PATH has, not this test's venv
    env = {k: v for k, v in clean_env().items() if k not in ("HOME", "SHIV_ROOT", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent
    )
    runtime = Path(sys.executable).with_name("nri-mock-runtime")
    done = subprocess.run(
        [runtime, "run", scenario, "--plugin-dir", plugins, "--color", "never"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10-ulimit-adjuster" in done.stdout
    # unpacked once, under the root given at build time
    [unpacked] = unpack.glob("10-ulimit-adjuster_*")
    assert list(unpacked.glob("site/lib/python*/site-packages/google/_upb/*.so")) or list(
        unpacked.rglob("_message*.so")
    ), "protobuf's native extension is not in the zipapp"
