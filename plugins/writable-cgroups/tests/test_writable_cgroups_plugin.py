"""The plugin's decisions (upstream's TestWritableCgroupsPlugin cases) and end to end runs
of nri-writable-cgroups through the mock runtime with mountinfo files the tests write."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from nri_writable_cgroups import (
    CGROUPS_MOUNT,
    WRITABLE_CGROUPS_ANNOTATION,
    MissingCgroupsMountError,
    NotDelegatedError,
    WritableCgroups,
)

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import make_mount
from nri.mock import SyncMockRuntime

KEY = WRITABLE_CGROUPS_ANNOTATION
RO = make_mount(
    CGROUPS_MOUNT, "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev", "nsdelegate"]
)
RW = make_mount(
    CGROUPS_MOUNT, "cgroup", "cgroup", ["rw", "nosuid", "noexec", "nodev", "nsdelegate"]
)
NO_RO_RW = make_mount(
    CGROUPS_MOUNT, "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "nsdelegate"]
)
EXPECTED = [
    make_mount(
        CGROUPS_MOUNT, "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "nsdelegate", "rw"]
    ),
    pb.Mount(destination="-" + CGROUPS_MOUNT),
]


def create(
    annotations: dict[str, str],
    mounts: list[pb.Mount],
    delegated: bool = True,
    reject: bool = False,
) -> pb.ContainerAdjustment | None:
    pod = pb.PodSandbox(name="test-pod", namespace="test-ns", annotations=annotations)
    ctr = pb.Container(name="test-container", mounts=mounts)
    adjust = WritableCgroups(delegated, reject_undelegated=reject).create_container(pod, ctr)
    return None if adjust is None else adjust.message


@pytest.mark.parametrize(
    ("annotations", "mount", "changed"),
    [
        ({}, RO, False),
        ({KEY: "false"}, RO, False),
        ({KEY: "True"}, RO, False),  # only "true" enables
        ({KEY: "true"}, RO, True),
        ({KEY + "/pod": "true"}, RO, True),
        ({KEY: "true"}, RW, False),  # already read-write
        ({KEY: "true"}, NO_RO_RW, True),
        ({KEY + "/container.test-container": "true"}, RO, True),
        ({KEY: "true", KEY + "/container.test-container": "false"}, RO, False),
        ({KEY: "false", KEY + "/pod": "true"}, RO, True),  # /pod wins over the bare key
        ({KEY + "/container.another-container": "true"}, RO, False),
    ],
)
def test_decisions(annotations: dict[str, str], mount: pb.Mount, changed: bool) -> None:
    adjust = create(annotations, [mount])
    if not changed:
        assert adjust is None
        return
    assert adjust is not None
    assert list(adjust.mounts) == EXPECTED
    assert adjust.ListFields()[0][0].name == "mounts" and len(adjust.ListFields()) == 1


def test_no_cgroup_mount_is_upstreams_error() -> None:
    with pytest.raises(MissingCgroupsMountError) as info:
        create({KEY: "true"}, [make_mount("/proc", "proc", "proc")])
    assert str(info.value) == "no /sys/fs/cgroup mount found to modify, this is unexpected"


def test_host_without_nsdelegate_ignores_the_request() -> None:
    ro = make_mount(CGROUPS_MOUNT, "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"])
    assert create({KEY: "true"}, [ro], delegated=False) is None
    with pytest.raises(NotDelegatedError, match="test-ns/test-pod/test-container: .*nsdelegate"):
        create({KEY: "true"}, [ro], delegated=False, reject=True)
    # not annotated: nothing to reject
    assert create({}, [ro], delegated=False, reject=True) is None


def test_only_the_first_cgroup_mount_is_changed() -> None:
    second = make_mount(CGROUPS_MOUNT, "tmpfs", "other", ["ro"])
    adjust = create({KEY: "true"}, [RO, second])
    assert adjust is not None and adjust.mounts[0].source == "cgroup"


# -- end to end ------------------------------------------------------------------------------

DELEGATED = "29 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
NOT_DELEGATED = (
    "29 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"
)
CGROUP_MOUNT = {
    "destination": "/sys/fs/cgroup",
    "type": "cgroup",
    "source": "cgroup",
    "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
}  # what containerd gives a container


def launch(runtime: SyncMockRuntime, tmp_path: Path, table: str | None, *flags: str) -> object:
    mountinfo = tmp_path / "mountinfo"
    if table is not None:
        mountinfo.write_text(table)
    command = [sys.executable, "-m", "nri_writable_cgroups", "--host-mount-file", str(mountinfo)]
    return runtime.launch_plugin([*command, *flags], idx="10")


def cgroup_mount_of(spec: dict[str, object]) -> dict[str, object]:
    mounts = spec["mounts"]
    assert isinstance(mounts, list)
    (found,) = [m for m in mounts if m["destination"] == "/sys/fs/cgroup"]
    return found  # type: ignore[no-any-return]


def test_e2e_delegated_host(nri_runtime: SyncMockRuntime, tmp_path: Path) -> None:
    handle = launch(nri_runtime, tmp_path, "22 1 0:21 / /proc rw - proc proc rw\n" + DELEGATED)
    assert handle.info.name == "writable-cgroups"  # type: ignore[attr-defined]
    pod = nri_runtime.run_pod(
        "p", annotations={f"{KEY}/container.app": "true", f"{KEY}/container.side": "false"}
    )
    app = nri_runtime.create_container(pod, "app", mounts=[CGROUP_MOUNT])
    assert cgroup_mount_of(app.spec) == {
        **CGROUP_MOUNT,
        "options": ["nosuid", "noexec", "nodev", "relatime", "rw"],
    }
    side = nri_runtime.create_container(pod, "side", mounts=[CGROUP_MOUNT])
    assert cgroup_mount_of(side.spec) == CGROUP_MOUNT
    assert app.owners["Mounts:/sys/fs/cgroup"] == "10-writable-cgroups"

    with pytest.raises(PluginError, match="no /sys/fs/cgroup mount found to modify"):
        nri_runtime.create_container(pod, "app", spec={"mounts": []})
    nri_runtime.run_coroutine(
        handle.wait_for_output("enabling writable cgroups support")  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("table", [NOT_DELEGATED, None, "garbage\n" + DELEGATED])
def test_e2e_host_not_delegated_leaves_mount_read_only(
    nri_runtime: SyncMockRuntime, tmp_path: Path, table: str | None
) -> None:
    handle = launch(nri_runtime, tmp_path, table)
    pod = nri_runtime.run_pod("p", annotations={KEY: "true"})
    ctr = nri_runtime.create_container(pod, "app", mounts=[CGROUP_MOUNT])
    assert cgroup_mount_of(ctr.spec) == CGROUP_MOUNT
    output = nri_runtime.run_coroutine(
        handle.wait_for_output("ignoring request to make cgroups writable")  # type: ignore[attr-defined]
    )
    assert "disabling writable cgroups" in output
    if table is None:
        assert "failed to open mount file" in output
    elif table.startswith("garbage"):
        assert "line 1: not enough fields (1)" in output


def test_e2e_reject_undelegated(nri_runtime: SyncMockRuntime, tmp_path: Path) -> None:
    launch(nri_runtime, tmp_path, NOT_DELEGATED, "--reject-undelegated")
    pod = nri_runtime.run_pod("p", annotations={f"{KEY}/pod": "true"})
    with pytest.raises(PluginError, match="does not have the 'nsdelegate' option"):
        nri_runtime.create_container(pod, "app", mounts=[CGROUP_MOUNT])
    other = nri_runtime.run_pod("q")
    assert cgroup_mount_of(nri_runtime.create_container(other, "app", mounts=[CGROUP_MOUNT]).spec)


def test_sample_pod(nri_runtime: SyncMockRuntime, tmp_path: Path) -> None:
    sample = yaml.safe_load((Path(__file__).parents[1] / "sample-pod.yaml").read_text())
    launch(nri_runtime, tmp_path, DELEGATED)
    pod = nri_runtime.run_pod(
        sample["metadata"]["name"], annotations=sample["metadata"]["annotations"]
    )
    app, sidecar = (c["name"] for c in sample["spec"]["containers"])
    assert (
        "rw"
        in cgroup_mount_of(nri_runtime.create_container(pod, app, mounts=[CGROUP_MOUNT]).spec)[
            "options"
        ]
    )  # type: ignore[operator]
    assert (
        cgroup_mount_of(nri_runtime.create_container(pod, sidecar, mounts=[CGROUP_MOUNT]).spec)
        == CGROUP_MOUNT
    )
