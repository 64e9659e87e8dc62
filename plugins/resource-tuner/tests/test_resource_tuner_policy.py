"""Configuration checking, class selection from annotations, and CPU/memory tuning values."""

from __future__ import annotations

import pytest
from nri_resource_tuner import (
    CLASS_ANNOTATION,
    ClassSelectionError,
    Config,
    CpuRequest,
    MemoryAmount,
    Policy,
    PolicyError,
    cpus_from_quota,
)

from nri.api import pb
from nri.oci import linux_resources_from_oci
from nri.stub import ConfigError, load_config

CONFIG = """
reserved-cpus: "0-1"
default-class: burstable
classes:
  guaranteed:
    exclusive-cpus: 2
    whole-cores: true
    numa: require
    memory-limit: 25%
    memory-swappiness: 0
  auto:
    exclusive-cpus: auto
    fallback-to-shared: true
    memory-pinning: false
  burstable:
    cpu-shares-scale: 2
    cpu-quota-scale: 0.5
    memory-reservation: 512Mi
    memory-swap: -1
    memory-limit: 0.5
"""


def policy(text: str = CONFIG) -> Policy:
    return Policy.from_config(load_config(text, Config, source="rt.yaml"), source="rt.yaml")


def test_full_config() -> None:
    p = policy()
    assert p.reserved == {0, 1}
    assert p.default_class == "burstable"
    assert sorted(p.classes) == ["auto", "burstable", "guaranteed", "shared"]
    guaranteed = p.classes["guaranteed"]
    assert guaranteed.cpu_request(None) == CpuRequest(2, whole_cores=True, numa="require")
    assert guaranteed.memory_limit == MemoryAmount(fraction=0.25)
    assert guaranteed.memory_swappiness == 0
    burstable = p.classes["burstable"]
    assert burstable.cpu_request(None) is None
    assert burstable.memory_swap == MemoryAmount(bytes=-1)
    assert burstable.memory_reservation == MemoryAmount(bytes=512 * 2**20)
    assert burstable.memory_limit is not None
    assert burstable.memory_limit.resolve(2**33) == 2**32
    assert p.classes["auto"].exclusive and not p.classes["auto"].memory_pinning
    assert p.classes["shared"].cpu_request(None) is None


def test_empty_config_is_all_shared() -> None:
    p = policy("")
    assert p.reserved == set()
    assert p.default_class == "shared"
    assert list(p.classes) == ["shared"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("reserved-cpus: 0-x\n", "rt.yaml: reserved-cpus: invalid cpuset '0-x'"),
        ("default-class: gold\n", "rt.yaml: default-class: class 'gold' is not defined"),
        ("min-shared-cpus: -1\n", "rt.yaml: min-shared-cpus: must be at least 1, got -1"),
        ("min-shared-cpus: 0\n", "rt.yaml: min-shared-cpus: must be at least 1, got 0"),
        ("classes: {a: {exclusive-cpu: 2}}\n", "rt.yaml: classes.a: unknown key 'exclusive-cpu'"),
        ("classes: {a: {exclusive-cpus: 0}}\n", "classes.a.exclusive-cpus: expected a count"),
        ("classes: {a: {exclusive-cpus: two}}\n", "got 'two'"),
        ("classes: {a: {whole-cores: yes-please}}\n", "classes.a.whole-cores: expected true"),
        ("classes: {a: {whole-cores: true}}\n", "classes.a: whole-cores needs exclusive-cpus"),
        ("classes: {a: {numa: maybe}}\n", "classes.a.numa: expected one of prefer, require"),
        (
            "classes: {a: {cpu-shares-scale: 0}}\n",
            "classes.a.cpu-shares-scale: expected a positive",
        ),
        ("classes: {a: {cpu-quota-scale: .nan}}\n", "cpu-quota-scale: expected a positive"),
        ("classes: {a: {memory-limit: 150%}}\n", "memory-limit: a fraction of node memory must"),
        ("classes: {a: {memory-limit: 1.5}}\n", "memory-limit: a fraction of node memory must"),
        ("classes: {a: {memory-limit: x%}}\n", "classes.a.memory-limit: invalid percentage"),
        (
            "classes: {a: {memory-reservation: -1}}\n",
            "memory-reservation: a size cannot be negative",
        ),
        ("classes: {a: {memory-swap: lots}}\n", "memory-swap: invalid size 'lots'"),
        ("classes: {a: {memory-swappiness: 101}}\n", "expected an integer from 0 to 100"),
        ("classes: {a: [1]}\n", "classes.a: expected a mapping of settings"),
        ("classes: [a]\n", "classes: expected a mapping"),
        ("colour: red\n", "unknown key 'colour'"),
    ],
)
def test_config_errors_name_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        policy(text)
    assert problem in str(info.value)
    assert str(info.value).startswith("rt.yaml: ")


def test_policy_errors_are_config_errors() -> None:
    assert issubclass(PolicyError, ConfigError)


def test_reserved_cpus_may_be_a_number() -> None:
    assert policy("reserved-cpus: 3\n").reserved == {3}


def pod(**annotations: str) -> pb.PodSandbox:
    return pb.PodSandbox(name="p", namespace="ns", annotations=annotations)


def test_class_selection_most_specific_key_wins() -> None:
    p = policy()
    assert p.class_for(pod(), "c0").name == "burstable"
    assert p.class_for(pod(**{CLASS_ANNOTATION: "shared"}), "c0").name == "shared"
    both = pod(**{f"{CLASS_ANNOTATION}/pod": "auto", CLASS_ANNOTATION: "shared"})
    assert p.class_for(both, "c0").name == "auto"
    conflicting = pod(
        **{
            f"{CLASS_ANNOTATION}/container.c0": " guaranteed ",
            f"{CLASS_ANNOTATION}/pod": "auto",
        }
    )
    assert p.class_for(conflicting, "c0").name == "guaranteed"
    assert p.class_for(conflicting, "c1").name == "auto"


def test_unknown_class_is_an_error_even_with_a_valid_pod_wide_class() -> None:
    p = policy()
    annotated = pod(
        **{f"{CLASS_ANNOTATION}/container.c0": "gold", f"{CLASS_ANNOTATION}/pod": "auto"}
    )
    with pytest.raises(ClassSelectionError) as info:
        p.class_for(annotated, "c0")
    assert str(info.value) == (
        f"annotation '{CLASS_ANNOTATION}/container.c0': class 'gold' is not defined "
        "(classes: auto, burstable, guaranteed, shared)"
    )
    assert p.class_for(annotated, "c1").name == "auto"


def cpu(**limits: int) -> pb.LinuxResources:
    return linux_resources_from_oci({"cpu": limits})


@pytest.mark.parametrize(
    ("resources", "count"),
    [
        (None, None),
        (pb.LinuxResources(), None),
        (cpu(), None),
        (cpu(quota=200_000, period=100_000), 2),
        (cpu(quota=300_000), 3),  # the default period is 100ms
        (cpu(quota=150_000, period=100_000), None),  # not a whole number of CPUs: shared
        (cpu(quota=-1, period=100_000), None),
        (cpu(quota=50_000, period=50_000), 1),
    ],
)
def test_cpus_from_quota(resources: pb.LinuxResources | None, count: int | None) -> None:
    assert cpus_from_quota(resources) == count
    request = policy().classes["auto"].cpu_request(resources)
    assert (request.count if request else None) == count


def test_cpu_tuning_scales_what_is_set() -> None:
    p = policy()
    burstable = p.classes["burstable"]
    assert burstable.tune_cpu(None) == (None, None)
    assert burstable.tune_cpu(cpu(shares=1024)) == (2048, None)
    assert burstable.tune_cpu(cpu(quota=50_000, period=100_000, shares=1)) == (2, 25_000)
    assert burstable.tune_cpu(cpu(quota=1_500)) == (None, 1000)  # the kernel's minimum
    assert burstable.tune_cpu(cpu(quota=-1)) == (None, None)
    assert p.classes["shared"].tune_cpu(cpu(quota=50_000, shares=10)) == (None, None)
