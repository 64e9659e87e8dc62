"""The exclusive CPU allocator on synthetic 4, 16 and 2x64 CPU hosts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nri_resource_tuner import AllocationError, CpuAllocator, CpuRequest, HostTopology

FOUR = HostTopology.synthetic(cores_per_node=4, memory=2**33)
SIXTEEN = HostTopology.synthetic(numa_nodes=2, cores_per_node=4, threads_per_core=2, memory=2**34)
BIG = HostTopology.synthetic(numa_nodes=2, cores_per_node=32, threads_per_core=2, memory=2**38)


def test_allocate_and_release_on_four_cpus() -> None:
    alloc = CpuAllocator(FOUR, reserved={0})
    assert alloc.shared_pool == {1, 2, 3}
    first = alloc.allocate("a", CpuRequest(1))
    assert first == {1}
    assert alloc.shared_pool == {2, 3}
    assert alloc.allocate("b", CpuRequest(1)) == {2}
    assert alloc.shared_pool == {3}
    with pytest.raises(AllocationError) as info:
        alloc.allocate("c", CpuRequest(1))
    assert str(info.value) == (
        "cannot allocate 1 exclusive CPU: only 0 can be taken: the shared pool has 1 CPU (3) "
        "and keeps at least 1"
    )
    assert info.value.free == {3}
    assert alloc.release("a") == {1}
    assert alloc.release("a") is None
    assert alloc.shared_pool == {1, 3}
    assert alloc.allocations == {"b": frozenset({2})}


def test_min_shared_zero_can_empty_the_pool() -> None:
    alloc = CpuAllocator(FOUR, min_shared=0)
    assert alloc.allocate("all", CpuRequest(4)) == {0, 1, 2, 3}
    assert alloc.shared_pool == set()


def test_whole_cores_are_preferred_and_kept_whole() -> None:
    alloc = CpuAllocator(SIXTEEN, reserved={0, 8})
    two = alloc.allocate("two", CpuRequest(2))
    assert two == {1, 9}  # one whole core
    one = alloc.allocate("one", CpuRequest(1))
    assert one == {2}  # splits a core ...
    again = alloc.allocate("again", CpuRequest(1))
    assert again == {10}  # ... and the next single thread completes it


def test_whole_cores_only() -> None:
    alloc = CpuAllocator(SIXTEEN)
    with pytest.raises(AllocationError, match="every core of this host has 2 threads"):
        alloc.allocate("odd", CpuRequest(3, whole_cores=True))
    cores = alloc.allocate("cores", CpuRequest(4, whole_cores=True))
    assert all(SIXTEEN.core_of(cpu) <= cores for cpu in cores)
    alloc.release("cores")
    alloc.claim("fragments", {0, 1, 2, 3, 4, 5})  # leaves 10 CPUs, 4 of them in whole cores
    with pytest.raises(AllocationError) as info:
        alloc.allocate("more", CpuRequest(6, whole_cores=True, numa="ignore"))
    assert str(info.value).startswith("cannot allocate 6 exclusive CPUs (whole cores): ")
    assert "the free CPUs 6-15 hold only 4 CPUs in whole free cores" in str(info.value)
    assert alloc.allocate("more", CpuRequest(6, numa="ignore")) == {
        6,
        7,
        12,
        13,
        14,
        15,
    }  # all on node 1, the freest


def test_numa_prefers_the_tightest_node_that_fits() -> None:
    alloc = CpuAllocator(SIXTEEN, reserved={0, 8})  # node 0 has 6 free, node 1 has 8
    assert SIXTEEN.nodes_of(alloc.allocate("a", CpuRequest(4))) == {0}
    # node 0 has 2 left: a request for 3 goes to node 1, one for 2 fills node 0
    assert SIXTEEN.nodes_of(alloc.allocate("b", CpuRequest(3))) == {1}
    assert SIXTEEN.nodes_of(alloc.allocate("c", CpuRequest(2))) == {0}


def test_numa_spreads_or_fails_when_no_node_fits() -> None:
    alloc = CpuAllocator(BIG)
    big = alloc.allocate("big", CpuRequest(100))
    assert BIG.nodes_of(big) == {0, 1}
    alloc.release("big")
    alloc.allocate("x", CpuRequest(50))  # node 0 (both nodes equally free: lowest first)
    with pytest.raises(AllocationError) as info:
        alloc.allocate("y", CpuRequest(70, numa="require"))
    message = str(info.value)
    assert message.startswith("cannot allocate 70 exclusive CPUs (one NUMA node required)")
    assert "no single NUMA node can hold it (free: node 0: " in message
    assert "node 1: 32-63,96-127" in message
    assert BIG.nodes_of(alloc.allocate("y", CpuRequest(60))) == {1}
    spread = alloc.allocate("z", CpuRequest(15))  # 14 left on node 0, 4 on node 1
    assert BIG.nodes_of(spread) == {0, 1}
    assert len(alloc.shared_pool) == 3


def test_big_host_exhaustion_names_request_and_pool() -> None:
    alloc = CpuAllocator(BIG, reserved={0, 64}, min_shared=2)
    alloc.allocate("a", CpuRequest(62, whole_cores=True))
    alloc.allocate("b", CpuRequest(60, whole_cores=True))
    with pytest.raises(AllocationError) as info:
        alloc.allocate("c", CpuRequest(6))
    assert str(info.value) == (
        "cannot allocate 6 exclusive CPUs: only 2 can be taken: the shared pool has 4 CPUs "
        f"({_fmt(alloc.shared_pool)}) and keeps at least 2"
    )


def _fmt(cpus: frozenset[int]) -> str:
    from nri_resource_tuner import format_cpuset

    return format_cpuset(cpus)


def test_claim_restores_and_rejects_conflicts() -> None:
    alloc = CpuAllocator(SIXTEEN, reserved={0})
    alloc.claim("a", {4, 12})
    assert alloc.shared_pool == set(range(1, 16)) - {4, 12}
    with pytest.raises(AllocationError) as info:
        alloc.claim("b", {0, 12, 99})
    message = str(info.value)
    assert message.startswith("cannot restore exclusive CPUs 0,12,99 of b: ")
    assert "CPUs 99 do not exist" in message
    assert "CPUs 0 are reserved" in message
    assert "CPUs 12 belong to a" in message
    assert alloc.allocation("b") is None
    with pytest.raises(ValueError, match="already has"):
        alloc.claim("a", {5})


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="reserved CPUs 4 do not exist"):
        CpuAllocator(FOUR, reserved={4})
    with pytest.raises(ValueError, match="count of at least 1"):
        CpuRequest(0)
    with pytest.raises(ValueError, match="numa must be one of"):
        CpuRequest(1, numa="sometimes")


# -- property: exclusivity is never violated ------------------------------------------------

TOPOLOGIES = {"4": FOUR, "16": SIXTEEN, "2x64": BIG}

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("allocate"),
            st.integers(0, 9),
            st.integers(1, 40),
            st.booleans(),
            st.sampled_from(["prefer", "require", "ignore"]),
        ),
        st.tuples(st.just("release"), st.integers(0, 9)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(TOPOLOGIES)),
    reserved=st.sets(st.integers(0, 3), max_size=2),
    min_shared=st.integers(0, 2),
    ops=operations,
)
def test_no_cpu_is_ever_exclusive_to_two_owners(
    name: str, reserved: set[int], min_shared: int, ops: list[tuple[object, ...]]
) -> None:
    topology = TOPOLOGIES[name]
    alloc = CpuAllocator(topology, reserved, min_shared)
    live: dict[str, frozenset[int]] = {}
    for op in ops:
        owner = f"c{op[1]}"
        if op[0] == "release":
            assert alloc.release(owner) == live.pop(owner, None)
        elif owner not in live:
            _, _, count, whole, numa = op
            assert isinstance(count, int) and isinstance(whole, bool) and isinstance(numa, str)
            pool_before = alloc.shared_pool
            try:
                got = alloc.allocate(owner, CpuRequest(count, whole_cores=whole, numa=numa))
            except AllocationError:
                assert alloc.shared_pool == pool_before  # a failure changes nothing
            else:
                assert len(got) == count
                assert got <= pool_before
                if whole:
                    assert all(topology.core_of(cpu) <= got for cpu in got)
                if numa == "require":
                    assert len(topology.nodes_of(got)) == 1
                live[owner] = got
        # invariants after every step
        seen: set[int] = set()
        for cpus in live.values():
            assert not cpus & seen
            assert not cpus & alloc.reserved
            seen |= cpus
        assert alloc.allocations == live
        assert alloc.shared_pool == topology.cpu_ids - alloc.reserved - seen
        assert len(alloc.shared_pool) >= min(min_shared, len(topology.cpu_ids - alloc.reserved))
