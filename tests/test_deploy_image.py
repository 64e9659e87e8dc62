"""The plugin images built by ``tox -e images`` (deploy/images.sh): each one runs its plugin
as the DaemonSet does. Root only; ``NRI_IMAGES`` names the directory of the OCI archives
(the tox env sets it), without it these tests are skipped.

The container is made by hand: the image's root file system (``buildah mount``) remounted
read-only in a private mount namespace, the socket's directory bind-mounted at
``/run/nri`` (``/var/run`` is a link to it), then chroot, every capability dropped and
no_new_privs set before the image's entrypoint runs as uid 0 with the image's environment.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _packaging import assert_adjusts_rlimits

from nri.mock import MockRuntime, SyncMockRuntime

IMAGES = os.environ.get("NRI_IMAGES")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IMAGES, reason="NRI_IMAGES is not set (tox -e images sets it)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces, chroot)"),
]

# run inside the image, by its own python3: drop every capability from the bounding set and
# set no_new_privs, so that uid 0 keeps none across the exec (securityContext drop: [ALL])
DROP_CAPS = """
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
cap = 0
while libc.prctl(24, cap, 0, 0, 0) == 0:  # PR_CAPBSET_DROP
    cap += 1
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
os.execve(sys.argv[1], sys.argv[1:], dict(e.split("=", 1) for e in json.loads(os.environ["IMAGE_ENV"])))
"""


class Image:
    """One image's root file system, mounted from its OCI archive with buildah."""

    def __init__(self, archive: Path, storage: Path) -> None:
        self.buildah = ["buildah", "--root", str(storage / "root"), "--runroot",
                        str(storage / "run"), "--storage-driver", "vfs"]  # fmt: skip
        self.container = self._run("from", "--quiet", f"oci-archive:{archive}").strip()
        self.rootfs = Path(self._run("mount", self.container).strip())
        config = json.loads(self._run("inspect", "--type", "container", self.container))
        self.config: dict[str, Any] = config["OCIv1"]["config"]
        (self.rootfs / "run/nri").mkdir(parents=True, exist_ok=True)

    def _run(self, *args: str) -> str:
        return subprocess.run([*self.buildah, *args], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    def close(self) -> None:
        self._run("rm", self.container)

    def command(self, socket_dir: Path, *args: str) -> list[str]:
        """The entrypoint with ``args``, as the DaemonSet's container runs it."""
        inner = ["chroot", str(self.rootfs), "/usr/bin/python3", "-c", DROP_CAPS,
                 *self.config["Entrypoint"], *args]  # fmt: skip
        script = (
            f"mount --bind {self.rootfs} {self.rootfs} && "
            f"mount -o remount,bind,ro {self.rootfs} && "
            # a container runtime gives every container its /proc and a read-only /sys
            f"mount -t proc proc {self.rootfs}/proc && "
            f"mount --bind /sys {self.rootfs}/sys && mount -o remount,bind,ro {self.rootfs}/sys && "
            f"mount --bind {socket_dir} {self.rootfs}/run/nri && exec {shlex.join(inner)}"
        )
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def env(self) -> dict[str, str]:
        return {"IMAGE_ENV": json.dumps(self.config["Env"]), "PATH": os.environ["PATH"]}


def _archives() -> list[Path]:
    return sorted(Path(IMAGES).glob("nri-plugin-*.oci.tar")) if IMAGES else []


@pytest.fixture(scope="module", params=[pytest.param(a, id=a.name) for a in _archives()])
def image(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Image]:
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed")
    mounted = Image(request.param, tmp_path_factory.mktemp("storage"))
    yield mounted
    mounted.close()


def _plugin(image: Image) -> str:
    return image.config["Labels"]["org.opencontainers.image.title"].removeprefix("nri-")


def test_labels_and_entrypoint(image: Image) -> None:
    labels = image.config["Labels"]
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"]
    assert image.config["Entrypoint"] == ["/opt/nri/bin/nri-plugin"]
    assert image.config.get("User", "") in ("", "0", "root")
    # no pip, compiler or cache in the plugin's venv
    assert not list((image.rootfs / "opt/nri").rglob("pip"))
    assert not (image.rootfs / "opt/build").exists() and not (image.rootfs / "wheels").exists()
    assert not (image.rootfs / "root/.cache").exists()


def test_version_and_help(image: Image, tmp_path: Path) -> None:
    plugin = _plugin(image)
    for flag in ("--version", "--help"):
        done = subprocess.run(image.command(tmp_path, flag), env=image.env(),
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        if flag == "--version":
            assert f"nri-{plugin}" in done.stdout and "nri " in done.stdout, done.stdout
        else:
            assert "--socket-path" in done.stdout


def test_registers_through_the_mounted_socket_directory_and_after_a_restart(
    image: Image, tmp_path: Path
) -> None:
    """Default socket path, read-only root, no capabilities, --reconnect: the plugin comes back
    when the runtime restarts with a new socket in the mounted directory."""
    plugin = _plugin(image)
    socket_dir = tmp_path / "nri"
    socket_dir.mkdir()
    args = ["--idx", "10", "--reconnect"]
    process = subprocess.Popen(image.command(socket_dir, *args), env=image.env(),
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(2):  # the first runtime, then its restart
            with SyncMockRuntime(MockRuntime(socket_path=socket_dir / "nri.sock")) as runtime:
                try:
                    runtime.wait_for_plugins(names=[f"10-{plugin}"])
                except TimeoutError:
                    process.terminate()
                    raise AssertionError(process.communicate(timeout=10)[1]) from None
                if plugin == "ulimit-adjuster":
                    assert_adjusts_rlimits(runtime, "10-ulimit-adjuster")
        assert process.poll() is None, "the plugin exited instead of reconnecting"
    finally:
        process.terminate()
        process.wait(timeout=10)
