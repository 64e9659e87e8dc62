"""The template as a starting point: follow README's steps, install the copy, run it.

The shell block of README.md's "Start a new plugin from it" section is run as written
(only the example name changes) on a copy of this directory; the renamed distribution is
pip-installed offline into a target directory and its command serves a mock runtime.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nri_template import TemplatePlugin

from nri.mock import MockRuntime
from nri.stub import implemented_events

TEMPLATE = Path(__file__).resolve().parents[1]
NAME = "acme-probe"
MODULE = "nri_acme_probe"


def readme_rename_script(name: str) -> str:
    """The shell block of README's rename section, for the plugin ``name``."""
    readme = (TEMPLATE / "README.md").read_text()
    section = readme.split("## Start a new plugin from it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README's rename section has no ```sh block"
    script, count = re.subn(r"^name=\S+$", f"name={name}", block.group(1), flags=re.MULTILINE)
    assert count == 1, "the block must set the new name once, on a line 'name=...'"
    return script


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the renamed plugin directory, the pip --target directory it is installed in)."""
    if shutil.which("bash") is None:
        pytest.skip("the README's steps need bash")
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(TEMPLATE, root / "plugins" / "template")  # build leftovers included
    plugin_dir = root / "plugins" / NAME
    site = root / "site"
    for command in (
        ["bash", "-e", "-o", "pipefail", "-c", readme_rename_script(NAME)],
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--no-index", "--target", str(site), str(plugin_dir),
        ],
    ):  # fmt: skip
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout}{done.stderr}"
    return plugin_dir, site


def test_readme_steps_rename_everything(renamed: tuple[Path, Path]) -> None:
    plugin_dir, site = renamed
    assert sorted(p.name for p in (plugin_dir / "tests").glob("test_*.py")) == [
        "test_acme_probe_cli.py",
        "test_acme_probe_handlers.py",
    ]
    assert (plugin_dir / "src" / MODULE / "_plugin.py").is_file()
    for path in [plugin_dir / "pyproject.toml", *plugin_dir.glob("*/**/*.py")]:
        text = path.read_text()
        assert "nri_template" not in text and "nri-template" not in text, path
        assert "TemplatePlugin" not in text and "TemplateConfig" not in text, path
    project = (plugin_dir / "pyproject.toml").read_text()
    assert f'name = "nri-{NAME}"' in project
    assert f'nri-{NAME} = "{MODULE}.__main__:main"' in project
    assert (
        "class AcmeProbePlugin(Plugin):" in (plugin_dir / "src" / MODULE / "_plugin.py").read_text()
    )
    readme = (plugin_dir / "README.md").read_text()
    original = (TEMPLATE / "README.md").read_text()
    upstream = [line for line in original.splitlines() if "containerd/nri" in line]
    assert upstream, "README names upstream"
    for line in upstream:  # references to upstream are kept as they are
        assert line in readme.splitlines(), line
    for renamed_text in (
        f"--name {NAME}",
        f"/opt/nri/plugins/50-{NAME}",
        f"/etc/nri/conf.d/50-{NAME}.conf",
        f"cd plugins/{NAME}",
        f"# nri-{NAME}",
    ):
        assert renamed_text in readme, renamed_text
    assert "--name template" not in readme and "50-template" not in readme
    installed = sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info"))
    assert installed == ["bin", MODULE]  # nothing of nri_template leaked in
    assert (site / "bin" / f"nri-{NAME}").is_file()


@pytest.mark.timeout(60)
async def test_installed_copy_serves_a_mock_runtime(
    renamed: tuple[Path, Path],
    tmp_path: Path,
    assert_valid_oci_spec: Callable[[dict[str, Any]], None],
) -> None:
    plugin_dir, site = renamed
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        script = await rt.launch_plugin([str(site / "bin" / f"nri-{NAME}"), "--idx", "50"], env=env)
        module = await rt.launch_plugin(
            [
                sys.executable,
                "-m",
                MODULE,
                "--idx",
                "60",
                "--config",
                str(plugin_dir / "sample-config.yaml"),
            ],
            env=env,
        )
        # both register with the plugin's own name, however the command is started
        assert [p.full_name for p in rt.plugins] == [f"50-{NAME}", f"60-{NAME}"]
        for info in rt.plugins:
            assert info.events == implemented_events(TemplatePlugin())
        pod = await rt.run_pod("web")
        ctr = await rt.create_container(pod, "app", args=["sleep", "1"])
        create = next(r for r in rt.history if r.event == "CreateContainer")
        assert create.changes == []  # the template sets no field
        before = create.specs[ctr.id][0] if ctr.id in create.specs else ctr.spec
        for part in ("process", "mounts", "annotations"):
            assert ctr.spec[part] == before[part]
        assert ctr.spec["process"]["args"] == ["sleep", "1"]
        assert_valid_oci_spec(ctr.spec)
        await rt.start_container(ctr)
        await rt.remove_pod(pod)
    for handle, plugin in ((script, f"50-{NAME}"), (module, f"60-{NAME}")):
        log = handle.stderr.decode()
        for line in (
            "started pod default/web",
            "creating container default/web/app",
            "starting container default/web/app",
            "removed pod default/web",
        ):
            assert f"{plugin}: {line}" in log, log
    assert f"60-{NAME}: got configuration AcmeProbeConfig(cfg_param1='some value')" in (
        module.stderr.decode()
    )


def test_copied_tests_pass_on_their_own(renamed: tuple[Path, Path]) -> None:
    # As in a new project: no conftest of this repository (it runs async tests and adds
    # fixtures); the nri_runtime fixture comes from the installed nri's pytest plugin.
    plugin_dir, site = renamed
    repo = TEMPLATE.parents[1]
    path = [str(site), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    path = [p for p in path if p and Path(p).resolve() != repo]
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--trace-config",
            "--rootdir", str(plugin_dir), "tests",
        ],
        cwd=plugin_dir,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "PLUGIN registered: <module 'nri.mock.pytest_plugin'" in out
    assert "PLUGIN registered: <module 'conftest'" not in out
    assert f"rootdir: {plugin_dir}" in out
    assert "test_runs_in_the_mock_runtime PASSED" in out
    assert re.search(r"\b\d+ passed\b", out), out
    assert "skipped" not in out
