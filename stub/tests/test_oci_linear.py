"""SpecGenerator's list edits give what the straightforward entry-by-entry edits give.

The generator applies mounts, devices, env and hugepage limits in one pass with lookups by key;
these reference versions apply each entry of the adjustment in turn by scanning the list, the
way upstream's runtime-tools generator does. hypothesis checks both agree, duplicates and
removal markers included.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nri.api import api_pb2 as pb
from nri.oci import SpecGenerator, sort_mounts

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])


def _ref_mounts(spec: dict[str, Any], mounts: list[pb.Mount]) -> None:
    current = spec.setdefault("mounts", [])
    for m in mounts:
        dest = m.destination.removeprefix("-")
        current[:] = [x for x in current if x.get("destination") != dest]
        if m.destination.startswith("-"):
            continue
        opts = list(m.options)
        if "rshared" in opts:
            spec.setdefault("linux", {})["rootfsPropagation"] = "rshared"
        elif "rslave" in opts:
            linux = spec.setdefault("linux", {})
            if linux.get("rootfsPropagation") not in ("rshared", "rslave"):
                linux["rootfsPropagation"] = "rslave"
        oci: dict[str, Any] = {"destination": m.destination, "source": m.source}
        if opts:
            oci["options"] = opts
        current.append(oci)
    current.sort(key=lambda x: (posixpath.normpath(x["destination"]).count("/"), x["destination"]))


def _ref_devices(spec: dict[str, Any], devices: list[pb.LinuxDevice]) -> None:
    for d in devices:
        path = d.path.removeprefix("-")
        linux = spec.get("linux")
        if linux is not None and "devices" in linux:
            linux["devices"] = [x for x in linux["devices"] if x.get("path") != path]
        if d.path.startswith("-"):
            continue
        linux = spec.setdefault("linux", {})
        linux.setdefault("devices", []).append(
            {"path": d.path, "type": d.type, "major": d.major, "minor": d.minor}
        )
        rules = linux.setdefault("resources", {}).setdefault("devices", [])
        rules.append({"allow": True, "type": d.type, "major": d.major, "minor": d.minor})


def _ref_env(spec: dict[str, Any], env: list[pb.KeyValue]) -> None:
    def put(out: list[str], name: str, value: str) -> None:
        for i, entry in enumerate(out):
            if entry.split("=", 1)[0] == name:
                out[i] = f"{name}={value}"
                return
        out.append(f"{name}={value}")

    mod = {kv.key.removeprefix("-"): kv for kv in env}
    out: list[str] = []
    for entry in spec["process"]["env"]:
        name, _, value = entry.partition("=")
        found = mod.pop(name, None)
        if found is None:
            put(out, name, value)
        elif not found.key.startswith("-"):
            put(out, name, found.value)
    for kv in env:
        if not kv.key.startswith("-") and kv.key in mod:
            put(out, kv.key, kv.value)
    spec["process"]["env"] = out


def _ref_hugepages(spec: dict[str, Any], limits: list[pb.HugepageLimit]) -> None:
    current = spec.setdefault("linux", {}).setdefault("resources", {})
    current = current.setdefault("hugepageLimits", [])
    for h in limits:
        for x in current:
            if x["pageSize"] == h.page_size:
                x["limit"] = h.limit
                break
        else:
            current.append({"pageSize": h.page_size, "limit": h.limit})


marked = st.tuples(st.booleans(), KEYS)


@settings(max_examples=300, deadline=None)
@given(
    existing=st.lists(KEYS, max_size=6),
    edits=st.lists(st.tuples(marked, st.sampled_from([[], ["rbind"], ["rslave"], ["rshared"]]))),
    root=st.sampled_from([None, "private", "shared", "rslave", "rshared"]),
)
def test_mounts_match_reference(
    existing: list[str], edits: list[tuple[tuple[bool, str], list[str]]], root: str | None
) -> None:
    spec: dict[str, Any] = {
        "mounts": [{"destination": f"/{k}", "source": f"old{i}"} for i, k in enumerate(existing)]
    }
    if root is not None:
        spec["linux"] = {"rootfsPropagation": root}
    sort_mounts(spec["mounts"])
    mounts = [
        pb.Mount(destination=("-" if rm else "") + f"/{k}", source=f"new{i}", options=opts)
        for i, ((rm, k), opts) in enumerate(edits)
    ]
    expected = copy.deepcopy(spec)
    _ref_mounts(expected, mounts)
    SpecGenerator(spec).adjust(pb.ContainerAdjustment(mounts=mounts))
    if not mounts:
        return
    assert spec == expected


@settings(max_examples=300, deadline=None)
@given(existing=st.lists(KEYS, max_size=6), edits=st.lists(marked))
def test_devices_match_reference(existing: list[str], edits: list[tuple[bool, str]]) -> None:
    spec: dict[str, Any] = {
        "linux": {
            "devices": [
                {"path": f"/dev/{k}", "type": "c", "major": 1, "minor": i}
                for i, k in enumerate(existing)
            ]
        }
    }
    devices = [
        pb.LinuxDevice(path=("-" if rm else "") + f"/dev/{k}", type="b", major=2, minor=i)
        for i, (rm, k) in enumerate(edits)
    ]
    expected = copy.deepcopy(spec)
    _ref_devices(expected, devices)
    SpecGenerator(spec).adjust_devices(devices)
    for rule in spec["linux"].get("resources", {}).get("devices", []):
        assert rule.pop("access") == "rwm"  # no permissions given: all of them, as upstream
    assert spec == expected


@settings(max_examples=300, deadline=None)
@given(existing=st.lists(KEYS, max_size=6), edits=st.lists(marked))
def test_env_matches_reference(existing: list[str], edits: list[tuple[bool, str]]) -> None:
    spec: dict[str, Any] = {
        "process": {"cwd": "/", "env": [f"{k}=old{i}" for i, k in enumerate(existing)]}
    }
    env = [
        pb.KeyValue(key=("-" if rm else "") + k, value=f"new{i}") for i, (rm, k) in enumerate(edits)
    ]
    expected = copy.deepcopy(spec)
    if env:
        _ref_env(expected, env)
    SpecGenerator(spec).adjust_env(env)
    assert spec == expected


@settings(max_examples=300, deadline=None)
@given(
    existing=st.lists(st.sampled_from(["2MB", "1GB", "64KB"]), max_size=5),
    edits=st.lists(st.sampled_from(["2MB", "1GB", "64KB", "16GB"])),
)
def test_hugepage_limits_match_reference(existing: list[str], edits: list[str]) -> None:
    spec: dict[str, Any] = {
        "linux": {
            "resources": {
                "hugepageLimits": [{"pageSize": s, "limit": i} for i, s in enumerate(existing)]
            }
        }
    }
    limits = [pb.HugepageLimit(page_size=s, limit=100 + i) for i, s in enumerate(edits)]
    expected = copy.deepcopy(spec)
    _ref_hugepages(expected, limits)
    SpecGenerator(spec).adjust_resources(pb.LinuxResources(hugepage_limits=limits))
    assert spec == expected
