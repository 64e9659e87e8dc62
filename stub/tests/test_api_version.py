"""Runtime -> NRI version inference and package exports of nri.api."""

from __future__ import annotations

import pytest

from nri import api
from nri.api import pb


@pytest.mark.parametrize(
    ("runtime", "version", "want"),
    [
        ("containerd", "v1.7.0", "v0.3.0"),
        ("containerd", "v1.7.14", "v0.6.0"),
        ("containerd", "v1.7.99", "v0.8.0"),
        ("containerd", "v2.2.0", "v0.10.0"),
        ("containerd", "v2.2.0-225-ge9dc15b7a.m", "v0.10.0"),
        ("containerd", "v2.2.1", "v0.11.0"),
        ("containerd", "v3.0.0", "v0.11.0"),
        ("cri-o", "v1.26.4", "v0.3.1-0.20230504231226-94185418e253"),
        ("cri-o", "v1.33.2", "v0.9.1-0.20250219030224-e597e7849f24"),
        ("cri-o", "v1.35.0", "v0.11.0"),
    ],
)
def test_infer_version(runtime: str, version: str, want: str) -> None:
    assert api.infer_version_from_runtime(runtime, version) == want


@pytest.mark.parametrize(
    ("runtime", "version"),
    [("podman", "v5.0.0"), ("containerd", "v1.6.9"), ("containerd", "1.7.0"), ("cri-o", "")],
)
def test_infer_version_errors(runtime: str, version: str) -> None:
    with pytest.raises(api.UnknownRuntimeVersionError):
        api.infer_version_from_runtime(runtime, version)


def test_compare_versions() -> None:
    assert api.compare_versions("v1.2.3", "v1.2.3") == 0
    assert api.compare_versions("v1.2.3", "v1.10.0") == -1
    assert api.compare_versions("v1.2.3-rc.1", "v1.2.3") == -1
    assert api.compare_versions("v1.2.3-rc.2", "v1.2.3-rc.10") == -1
    assert api.compare_versions("v1.2.3-1", "v1.2.3-alpha") == -1
    assert api.compare_versions("v1.2", "v1.2.0") == 0
    assert api.compare_versions("v1.2.3+build", "v1.2.3") == 0
    assert api.compare_versions("bogus", "v0.0.1") == -1
    assert api.compare_versions("bogus", "junk") == 0
    assert api.find_closest_version("v1.5.0", ["v2.0.0", "v1.0.0", "v1.4.9"]) == "v1.4.9"
    assert api.find_closest_version("v0.1.0", ["v1.0.0"]) == ""


def test_exports_every_generated_type() -> None:
    desc = pb.DESCRIPTOR
    generated = set(desc.message_types_by_name) | set(desc.enum_types_by_name)
    assert generated <= set(api.__all__)
    for name in generated:
        assert getattr(api, name) is getattr(pb, name)
    for name in api.__all__:
        assert hasattr(api, name), name
    assert api.pb is pb
    assert api.Event.Value("CREATE_CONTAINER") == 4
