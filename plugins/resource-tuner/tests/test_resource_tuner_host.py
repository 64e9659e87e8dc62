"""The host model: cpuset lists, sizes, synthetic and described topologies, sysfs reading."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from nri_resource_tuner import (
    CpusetError,
    HostDescriptionError,
    HostTopology,
    format_cpuset,
    parse_bytes,
    parse_cpuset,
)


@pytest.mark.parametrize(
    ("text", "cpus", "canonical"),
    [
        ("", set(), ""),
        ("0", {0}, "0"),
        ("0-3,8", {0, 1, 2, 3, 8}, "0-3,8"),
        (" 5, 1-2 ,3", {1, 2, 3, 5}, "1-3,5"),
        ("0,1", {0, 1}, "0-1"),
        ("64-65,0", {0, 64, 65}, "0,64-65"),
    ],
)
def test_cpuset_round_trip(text: str, cpus: set[int], canonical: str) -> None:
    assert parse_cpuset(text) == cpus
    assert format_cpuset(cpus) == canonical


@pytest.mark.parametrize(
    ("text", "problem"),
    [("0-", "'0-' is not a number"), ("a", "'a' is not a number"), ("3-1", "bad range '3-1'"),
     ("1,,2", "empty element"), ("-1", "'-1' is not a number")],
)  # fmt: skip
def test_cpuset_errors(text: str, problem: str) -> None:
    with pytest.raises(CpusetError) as info:
        parse_cpuset(text)
    assert f"invalid cpuset {text!r}" in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("value", "size"),
    [(4096, 4096), ("512Mi", 512 * 2**20), ("2G", 2 * 10**9), ("1.5Gi", 3 * 2**29), ("7", 7)],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_bytes(value) == size


@pytest.mark.parametrize("value", ["12 parsecs", "Gi", -1, True, 1.5, None, "1Xi"])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_bytes(value)


def test_four_cpu_host() -> None:
    host = HostTopology.synthetic(cores_per_node=4, memory=8 * 2**30)
    assert host.cpu_ids == {0, 1, 2, 3}
    assert host.nodes == (0,)
    assert len(host.cores) == 4
    assert host.memory == 8 * 2**30
    assert host.node_memory == {0: 8 * 2**30}


def test_sixteen_cpu_smt_host() -> None:
    host = HostTopology.synthetic(numa_nodes=2, cores_per_node=4, threads_per_core=2, memory=2**34)
    assert host.cpu_ids == set(range(16))
    # Hyperthread siblings are N apart, N being the number of cores.
    assert host.core_of(0) == {0, 8}
    assert host.core_of(12) == {4, 12}
    assert host.node_cpus(0) == {0, 1, 2, 3, 8, 9, 10, 11}
    assert host.node_cpus(1) == {4, 5, 6, 7, 12, 13, 14, 15}
    assert host.node_memory == {0: 2**33, 1: 2**33}
    assert {cpu.package for cpu in host.cpus} == {0, 1}


def test_two_by_sixty_four_host_from_compact_file(tmp_path: Path) -> None:
    path = tmp_path / "host.yaml"
    path.write_text("numa-nodes: 2\ncores_per_node: 32\nthreads_per_core: 2\nmemory: 256Gi\n")
    host = HostTopology.from_file(path)
    assert len(host.cpus) == 128
    assert len(host.cores) == 64
    assert len(host.node_cpus(1)) == 64
    assert host.nodes_of({0, 32, 64}) == {0, 1}
    assert host.memory == 256 * 2**30
    assert "128 CPUs (0-127), 64 cores, 2 packages, 2 NUMA nodes, 256.0 GiB" in host.describe()


def test_explicit_json_file(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    cpus = [{"id": i, "core": i // 2, "node": i // 4} for i in range(8)]
    path.write_text(json.dumps({"cpus": cpus, "memory": {"0": "1Gi", "1": "3Gi"}}))
    assert HostTopology.from_file(path).node_memory == {0: 2**30, 1: 3 * 2**30}
    path.write_text(json.dumps({"cpus": cpus, "memory": {"zero": "1Gi", "1": "3Gi"}}))
    with pytest.raises(HostDescriptionError, match=r"host.json: memory: NUMA node 'zero'"):
        HostTopology.from_file(path)
    path.write_bytes(b"cpus: [\xff]\n")
    with pytest.raises(HostDescriptionError, match=r"host.json: invalid YAML: not valid UTF-8"):
        HostTopology.from_file(path)
    path.write_text("cpus: " + "[" * 200 + "]" * 200)
    with pytest.raises(
        HostDescriptionError, match=r"host.json: invalid YAML: line 1 column 70: nesting deeper"
    ):
        HostTopology.from_file(path)
    path.write_text(json.dumps({"cpus": cpus, "memory": "4Gi"}))
    host = HostTopology.from_file(path)
    assert host.core_of(5) == {4, 5}
    assert host.node_memory == {0: 2**31, 1: 2**31}


def test_explicit_yaml_with_node_memory() -> None:
    host = HostTopology.from_data(
        {"cpus": [{"id": 3, "node": 1}, {"id": 1}], "memory": {0: "1Gi", 1: "2Gi"}}
    )
    assert [cpu.id for cpu in host.cpus] == [1, 3]
    assert host.node_memory == {0: 2**30, 1: 2**31}
    assert host.memory == 3 * 2**30


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2]", "expected a mapping with 'cpus' or 'cores_per_node', got list"),
        ("numa_nodes: 2\n", "expected the key 'cpus' (explicit form) or 'cores_per_node'"),
        ("cores_per_node: 4\n", "memory: missing"),
        ("cores_per_node: four\nmemory: 1Gi\n", "cores_per_node: expected an integer, got 'four'"),
        ("cores_per_node: 4\nmemory: lots\n", "memory: invalid size 'lots'"),
        ("cores_per_node: 4\nsockets: 1\nmemory: 1Gi\n", "unknown key(s) sockets"),
        ("cores_per_node: 0\nmemory: 1Gi\n", "cores_per_node must be at least 1"),
        ("cores_per_node: 2\nnuma_nodes: 3\npackages: 2\nmemory: 1Gi\n", "must divide"),
        ("cpus: []\nmemory: 1Gi\n", "cpus: expected a non-empty list"),
        ("cpus: [{id: 0}, {id: 0}]\nmemory: 1Gi\n", "CPU ids are not unique: 0"),
        ("cpus: [{id: 0}, {idx: 1}]\nmemory: 1Gi\n", "cpus[1]: unknown key(s) idx"),
        ("cpus: [{id: 0}, {core: 1}]\nmemory: 1Gi\n", "cpus[1].id: missing"),
        ("cpus: [{id: 0, node: 1}]\nmemory: {0: 1Gi}\n", "no size for NUMA node(s) 1"),
        ("cpus: [{id: 0, package: 1}, {id: 1, core: 0}]\nmemory: 1Gi\n", "core 0 spans"),
        ("cpus: [\n", "invalid YAML"),
    ],
)
def test_description_errors_name_file_and_key(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(HostDescriptionError) as info:
        HostTopology.from_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HostDescriptionError, match=r"cannot read host description .*nope"):
        HostTopology.from_file(tmp_path / "nope")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_from_fake_sysfs(tmp_path: Path) -> None:
    system = tmp_path / "devices" / "system"
    _write(system / "cpu" / "online", "0-3")
    for cpu in range(4):
        topology = system / "cpu" / f"cpu{cpu}" / "topology"
        _write(topology / "thread_siblings_list", "0,2" if cpu in (0, 2) else "1,3")
        _write(topology / "physical_package_id", "0")
    _write(system / "node" / "node0" / "cpulist", "0-1")
    _write(system / "node" / "node1" / "cpulist", "2-3")
    for node in (0, 1):
        meminfo = f"Node {node} MemTotal:       1048576 kB\nNode {node} MemFree: 1 kB"
        _write(system / "node" / f"node{node}" / "meminfo", meminfo)
    host = HostTopology.from_host(tmp_path)
    assert host.cpu_ids == {0, 1, 2, 3}
    assert host.core_of(2) == {0, 2}
    assert host.node_cpus(1) == {2, 3}
    assert host.node_memory == {0: 2**30, 1: 2**30}


def test_from_sysfs_without_answers_uses_psutil(tmp_path: Path) -> None:
    host = HostTopology.from_host(tmp_path)
    assert len(host.cpus) == psutil.cpu_count(logical=True)
    assert host.nodes == (0,)
    assert host.memory == psutil.virtual_memory().total


def test_this_host() -> None:
    host = HostTopology.from_host()
    assert len(host.cpus) == psutil.cpu_count(logical=True)
    assert host.memory > 0
    for cpus in host.cores.values():
        assert len({host.cpu(i).node for i in cpus}) == 1


def test_unreadable_host_memory_is_a_description_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nri_resource_tuner._host import HostDescriptionError, HostTopology

    def no_proc() -> None:
        raise FileNotFoundError(2, "No such file or directory", "/proc/meminfo")

    monkeypatch.setattr(psutil, "virtual_memory", no_proc)
    with pytest.raises(HostDescriptionError, match="cannot read the host's memory size"):
        HostTopology.from_host(tmp_path)
