"""The injector allowlist: parsing, Kubernetes label-selector matching, refusal and ignore."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from nri.api import api_pb2 as pb
from nri.stub import (
    Allowlist,
    ConfigError,
    InjectionDenied,
    LabelRequirement,
    load_config_with_allowlist,
    parse_allowlist,
)


def pod(namespace: str, **labels: str) -> pb.PodSandbox:
    return pb.PodSandbox(name="p", namespace=namespace, labels=labels)


def test_no_section_allows_every_pod() -> None:
    allow = parse_allowlist(None, "allow")
    assert allow.allows_all
    assert allow.allows("anything", {})


def test_namespaces_take_exact_names_and_globs() -> None:
    allow = parse_allowlist({"namespaces": ["gpu-jobs", "ml-*"]}, "allow")
    assert allow.allows("gpu-jobs", {})
    assert allow.allows("ml-train", {})
    assert not allow.allows("gpu-jobs-2", {})
    assert not allow.allows("default", {})
    assert not parse_allowlist({"namespaces": []}, "allow").allows("default", {})


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ["a", "b"], {"k": "a"}, True),
        ("In", ["a", "b"], {"k": "c"}, False),
        ("In", ["a"], {}, False),
        ("NotIn", ["a"], {"k": "b"}, True),
        ("NotIn", ["a"], {}, True),
        ("NotIn", ["a"], {"k": "a"}, False),
        ("Exists", [], {"k": ""}, True),
        ("Exists", [], {}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"k": "x"}, False),
    ],
)
def test_label_expressions_follow_kubernetes(
    operator: str, values: list[str], labels: dict[str, str], expected: bool
) -> None:
    section = {"pod-selector": {"matchExpressions": [{"key": "k", "operator": operator}]}}
    if values:
        section["pod-selector"]["matchExpressions"][0]["values"] = values  # type: ignore[index]
    assert parse_allowlist(section, "allow").allows("ns", labels) is expected


def test_match_labels_and_expressions_all_must_hold() -> None:
    allow = parse_allowlist(
        {
            "podSelector": {
                "matchLabels": {"team": "ml"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}],
            }
        },
        "allow",
    )
    assert allow.pod_selector == (
        LabelRequirement("team", "In", ("ml",)),
        LabelRequirement("tier", "NotIn", ("web",)),
    )
    assert allow.allows("x", {"team": "ml", "tier": "batch"})
    assert not allow.allows("x", {"team": "ml", "tier": "web"})
    assert not allow.allows("x", {"team": "ops"})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"on-denied": "drop"}, "allow.on-denied: expected refuse or ignore, got 'drop'"),
        ({"namespace": ["x"]}, "allow: unknown key 'namespace'"),
        ({"namespaces": "x"}, "allow.namespaces: expected a list of non-empty strings"),
        (
            {"pod-selector": {"matchExpressions": [{"key": "k", "operator": "In"}]}},
            "operator In needs at least one value",
        ),
        (
            {
                "pod-selector": {
                    "matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]
                }
            },
            "operator Exists takes no values",
        ),
        (
            {"pod-selector": {"matchExpressions": [{"key": "k", "operator": "Gt"}]}},
            "allow.pod-selector.matchExpressions[0].operator: expected one of In, NotIn",
        ),
        ({"pod-selector": {"matchLabels": {"n": 1}}}, "matchLabels.n: expected a string"),
    ],
)
def test_malformed_sections_name_the_field(section: object, message: str) -> None:
    with pytest.raises(
        ConfigError,
        match="^" + message.replace("[", r"\[").replace("]", r"\]")
        if message.startswith("allow")
        else message,
    ):
        parse_allowlist(section, "allow")


def test_refuse_raises_naming_pod_namespace_and_request() -> None:
    allow = Allowlist(namespaces=("ml",))
    with pytest.raises(InjectionDenied) as caught:
        allow.check(pod("default"), "annotation 'x'", logging.getLogger("t"))
    assert str(caught.value) == (
        "pod 'p' in namespace 'default' may not request injection (annotation 'x'): "
        "not in the plugin's allowlist"
    )
    assert allow.check(pod("ml"), "annotation 'x'", logging.getLogger("t"))


def test_ignore_logs_once_and_denies(caplog: pytest.LogCaptureFixture) -> None:
    allow = Allowlist(namespaces=("ml",), on_denied="ignore")
    with caplog.at_level(logging.WARNING):
        assert not allow.check(pod("default"), "annotation 'x'", logging.getLogger("t"))
    assert [r.getMessage() for r in caplog.records] == [
        "pod 'p' in namespace 'default' may not request injection (annotation 'x'): "
        "not in the plugin's allowlist; ignoring it"
    ]


@dataclasses.dataclass
class _Config:
    verbose: bool = False
    allow: Allowlist = dataclasses.field(default_factory=Allowlist)


def test_config_loading_checks_the_other_keys_as_usual() -> None:
    config = load_config_with_allowlist(
        "verbose: true\nallow: {namespaces: [a]}\n", _Config, source="c.yaml"
    )
    assert config == _Config(verbose=True, allow=Allowlist(namespaces=("a",)))
    assert load_config_with_allowlist("", _Config, source="c.yaml") == _Config()
    with pytest.raises(ConfigError, match=r"^c.yaml: unknown key 'bogus'"):
        load_config_with_allowlist("bogus: 1\n", _Config, source="c.yaml")
    with pytest.raises(ConfigError, match=r"^c.yaml: allow.on-denied"):
        load_config_with_allowlist("allow: {on-denied: x}\n", _Config, source="c.yaml")
