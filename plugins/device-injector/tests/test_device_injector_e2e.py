"""End to end: the device-injector in the mock runtime, checked on the resulting OCI specs."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nri_device_injector import Config, DeviceInjector

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import MockRuntime

SpecCheck = Callable[[dict[str, Any]], None]

ANNOTATIONS = {
    "devices.noderesource.dev/container.c0": """
- path: /dev/nri-null
  type: c
  major: 1
  minor: 3
  file_mode: 0666
- path: /dev/zero
- path: /dev/my-full
  host_path: /dev/full
""",
    "cdi-devices.noderesource.dev/container.c1": "- vendor0.com/device=null\n",
    "mounts.nri.io/pod": "- source: /tmp/src\n  destination: /mnt/dst\n  type: bind\n"
    "  options: [rbind, rw]\n",
    "io-priority.noderesource.dev/container.c0": "class: IOPRIO_CLASS_BE\npriority: 4\n",
    "devices.nri.io/container.bad": "- path: /dev/x\n  type: c\n",
}

MOUNT = {
    "destination": "/mnt/dst",
    "source": "/tmp/src",
    "type": "bind",
    "options": ["rbind", "rw"],
}


def host_device(path: str, injected_as: str) -> dict[str, Any]:
    """The OCI device the plugin should inject for the host node ``path``."""
    st = os.stat(path)
    device: dict[str, Any] = {
        "path": injected_as,
        "type": "c",
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
    }
    # as upstream, zero owner ids are left unset
    device.update({k: v for k, v in (("uid", st.st_uid), ("gid", st.st_gid)) if v})
    return device


@pytest.mark.timeout(30)
async def test_launched_plugin_injects_into_the_spec_and_rejects_bad_annotations(
    tmp_path: Path, assert_valid_oci_spec: SpecCheck
) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        handle = await rt.launch_plugin(
            [sys.executable, "-m", "nri_device_injector"], name="device-injector", idx="20"
        )
        assert handle.info.full_name == "20-device-injector"
        assert handle.info.events == mask_of(pb.CREATE_CONTAINER)
        pod = await rt.run_pod("p", namespace="ns", annotations=ANNOTATIONS)

        c0 = await rt.create_container(pod, "c0", args=["sleep", "inf"])
        linux = c0.spec["linux"]
        assert linux["devices"] == [
            {"path": "/dev/nri-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
            host_device("/dev/zero", "/dev/zero"),
            host_device("/dev/full", "/dev/my-full"),
        ]
        assert linux["resources"]["devices"] == [  # as upstream: "rw" for character devices
            {"allow": True, "type": "c", "major": 1, "minor": minor, "access": "rw"}
            for minor in (3, 5, 7)
        ]
        assert c0.spec["process"]["ioPriority"] == {"class": "IOPRIO_CLASS_BE", "priority": 4}
        assert c0.spec["mounts"][-1] == MOUNT
        assert c0.adjustment is not None and not c0.adjustment.CDI_devices
        assert_valid_oci_spec(c0.spec)

        c1 = await rt.create_container(pod, "c1")
        assert c1.adjustment is not None
        assert [d.name for d in c1.adjustment.CDI_devices] == ["vendor0.com/device=null"]
        assert "devices" not in c1.spec["linux"]  # CDI names are left to the runtime
        assert c1.spec["mounts"][-1] == MOUNT  # the pod-level mount reaches every container
        assert_valid_oci_spec(c1.spec)

        with pytest.raises(PluginError) as failure:
            await rt.create_container(pod, "bad")
        message = str(failure.value)
        assert "pod ns/p, container bad" in message
        assert "annotation 'devices.nri.io/container.bad', entry #0" in message
        assert "missing mandatory field(s): major, minor" in message
        assert "bad" not in {c.name for c in rt.containers.values()}
        assert "missing mandatory field(s)" in (rt.last("CreateContainer").error or "")

        again = await rt.create_container(pod, "c0")  # the plugin survived the failure
        assert again.spec["linux"]["devices"] == linux["devices"]
        assert [p.full_name for p in rt.plugins] == ["20-device-injector"]


async def test_udev_match_expands_to_host_devices(
    tmp_path: Path, assert_valid_oci_spec: SpecCheck
) -> None:
    match = '- match: {subsystem: mem, attributes: {dev: "1:7"}}\n  file_mode: 0600\n'
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.add_plugin(DeviceInjector(), name="device-injector", idx="20")
        pod = await rt.run_pod("p", annotations={"devices.noderesource.dev/pod": match})
        ctr = await rt.create_container(pod, "app")
        expected = host_device("/dev/full", "/dev/full") | {"fileMode": 0o600}
        assert ctr.spec["linux"]["devices"] == [expected]
        assert ctr.spec["linux"]["resources"]["devices"] == [
            {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rw"}
        ]
        assert_valid_oci_spec(ctr.spec)


@pytest.mark.parametrize(
    ("annotations", "problem"),
    [
        ({"devices.noderesource.dev": "- path: /dev/zero\n"}, "host lookup is disabled"),
        (
            {"mounts.noderesource.dev/pod": "- source: /a\n"},
            "missing mandatory field 'destination'",
        ),
        ({"cdi-devices.nri.io": "vendor.com/dev=x"}, "expected a YAML list of CDI device names"),
        ({"devices.nri.io/pod": "- [unclosed"}, "invalid YAML"),
    ],
)
async def test_invalid_annotations_fail_creation_and_keep_nothing(
    tmp_path: Path, annotations: dict[str, str], problem: str
) -> None:
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        plugin = DeviceInjector(Config(host_lookup=False))
        await rt.add_plugin(plugin, name="device-injector", idx="20")
        pod = await rt.run_pod("p", annotations=annotations)
        with pytest.raises(PluginError, match="pod default/p, container app: annotation '"):
            await rt.create_container(pod, "app")
        assert problem in (rt.last("CreateContainer").error or "")
        assert rt.containers == {}
