"""Rules files: validation errors, matching, QoS classes, conflicts, the built adjustments."""

from __future__ import annotations

from pathlib import Path

import pytest
from nri_rules import (
    MAX_RULES,
    ContainerFacts,
    KeyMatcher,
    Pattern,
    RuleConflictError,
    RulesError,
    build_adjustment,
    build_update,
    container_facts,
    evaluate_create,
    parse_rules,
    placeholder_devices,
    pod_qos_class,
    qos_class,
)

from nri.api import message_to_data, pb

FACTS = ContainerFacts(
    namespace="ml",
    pod="trainer-0",
    container="app",
    pod_labels={"team": "ml", "tier": "gold"},
    pod_annotations={"example.com/gpu": "true"},
    container_labels={"io.kubernetes.container.name": "app"},
    container_annotations={},
    image="registry.example.com/ml/train:1.2",
    runtime_handler="nvidia",
    qos_class="Burstable",
)


def one_rule(body: str) -> str:
    return "rules:\n- name: r\n" + "".join(f"  {line}\n" for line in body.splitlines())


def matches(match: str) -> bool:
    rules = parse_rules(one_rule(f"match: {match}\nadjust: {{env: {{X: '1'}}}}"), "f")
    return rules.rules[0].match.mismatch(FACTS) is None


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ("{}", True),
        ("{namespace: ml}", True),
        ("{namespace: [prod, ml]}", True),
        ("{namespace: 'm*'}", True),
        ("{namespace: 'ml-*'}", False),
        ("{pod: {regex: 'trainer-[0-9]+'}}", True),
        ("{pod: {regex: 'trainer'}}", False),  # a regex matches the whole name
        ("{pod: {glob: 'trainer-?'}}", True),
        ("{container: [web, {regex: 'a.p'}]}", True),
        ("{image: 'registry.example.com/ml/*'}", True),
        ("{image: 'docker.io/*'}", False),
        ("{runtimeHandler: nvidia}", True),
        ("{runtimeHandler: kata}", False),
        ("{qosClass: Burstable}", True),
        ("{qosClass: [Guaranteed, BestEffort]}", False),
        ("{podLabels: {team: ml}}", True),
        ("{podLabels: {team: {equals: web}}}", False),
        ("{podLabels: {tier: {regex: 'gold|silver'}}}", True),
        ("{podLabels: {tier: {regex: 'gol'}}}", False),
        ("{podLabels: {team: {exists: true}, missing: {exists: false}}}", True),
        ("{podLabels: {missing: {exists: true}}}", False),
        ("{podAnnotations: {example.com/gpu: 'true'}}", True),
        ("{containerLabels: {io.kubernetes.container.name: app}}", True),
        ("{containerAnnotations: {a: {exists: true}}}", False),
        ("{namespace: ml, runtimeHandler: kata}", False),  # every condition must hold
    ],
)
def test_matching(match: str, expected: bool) -> None:
    assert matches(match) is expected


def test_mismatch_names_the_condition() -> None:
    rules = parse_rules(
        one_rule("match: {namespace: ml, podLabels: {tier: silver}}\nadjust: {env: {X: '1'}}"),
        "f",
    )
    assert rules.rules[0].match.mismatch(FACTS) == "podLabels: not 'tier' = 'silver'"


def test_regexes_are_linear_time_re2() -> None:
    pattern = Pattern.re("(a+)+$")
    assert not pattern.matches("a" * 100_000 + "b")  # a backtracking engine would not return
    assert pattern.matches("aaa")


def test_key_matcher_disjointness() -> None:
    assert KeyMatcher("a", equals="1").disjoint(KeyMatcher("a", equals="2"))
    assert KeyMatcher("a").disjoint(KeyMatcher("a", exists=False))
    assert KeyMatcher("a", equals="x").disjoint(KeyMatcher("a", regex=Pattern.re("[0-9]+")))
    assert not KeyMatcher("a", equals="1").disjoint(KeyMatcher("a", regex=Pattern.re("[0-9]+")))
    assert not KeyMatcher("a", equals="1").disjoint(KeyMatcher("b", equals="2"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("adjust: {env: {X: true}}", "rule #0 (r): adjust.env.X: expected a string, got boolean "
         "True (quote it)"),
        ("adjust: {env: {X: 1.5}}", "adjust.env.X: expected a string, got number 1.5 (quote it)"),
        ("adjust: {env: {-X: '1'}}", "adjust.env.-X: invalid name '-X' (no leading '-', no '=')"),
        ("adjust: {env: {'A=B': '1'}}", "adjust.env.A=B: invalid name 'A=B'"),
        ("adjust: {removeAnnotations: [-a]}", "adjust.removeAnnotations[0]: invalid name '-a'"),
        ("adjust: {sysctls: {'': '1'}}", "adjust.sysctls: empty name"),
        ("adjust: {envv: {}}", "rule #0 (r): adjust: unknown key 'envv' (known: env, removeEnv,"),
        ("adjust: {}", "rule #0 (r): adjust: changes nothing"),
        ("match: {namespace: ml}", "rule #0 (r): adjust: missing (a rule needs adjust, update"),
        ("match: {pod: {regex: '('}}\nadjust: {env: {X: '1'}}",
         "rule #0 (r): match.pod.regex: invalid regex '(': missing ): ("),
        ("match: {pod: {regex: '(?=x)'}}\nadjust: {env: {X: '1'}}",
         "match.pod.regex: invalid regex '(?=x)': invalid perl operator: (?="),
        ("match: {pod: {regex: x, glob: y}}\nadjust: {env: {X: '1'}}",
         "match.pod: expected exactly one of glob, regex"),
        ("match: {namespace: []}\nadjust: {env: {X: '1'}}",
         "match.namespace: empty list (it would match nothing)"),
        ("match: {qosClass: [Gold]}\nadjust: {env: {X: '1'}}",
         "match.qosClass[0]: expected one of Guaranteed, Burstable, BestEffort, got 'Gold'"),
        ("match: {podLabels: {a: {exists: 'yes'}}}\nadjust: {env: {X: '1'}}",
         "match.podLabels.a.exists: expected true or false, got string 'yes'"),
        ("match: {podLabels: {a: {like: b}}}\nadjust: {env: {X: '1'}}",
         "match.podLabels.a: unknown key 'like' (known: exists, equals, regex)"),
        ("match: {labels: {}}\nadjust: {env: {X: '1'}}", "rule #0 (r): match: unknown key 'labels'"),
        ("adjust: {mounts: [{source: /x}]}", "adjust.mounts[0]: missing mandatory field 'destination'"),
        ("adjust: {mounts: [{destination: x}]}", "adjust.mounts[0]: destination 'x' must be an absolute path"),
        ("adjust: {mounts: [{destination: /x, opts: []}]}", "adjust.mounts[0]: unknown key 'opts'"),
        ("adjust: {devices: [{path: /dev/x, type: c}]}",
         "adjust.devices[0]: missing mandatory field(s): major, minor"),
        ("adjust: {devices: [{match: {}}]}",
         "adjust.devices[0]: 'match' needs at least one of subsystem, properties, attributes"),
        ("adjust: {cdiDevices: [gpu0]}", "adjust.cdiDevices[0]: expected vendor.com/class=name, got 'gpu0'"),
        ("adjust: {rlimits: [{type: nofiles, hard: 1}]}", "adjust.rlimits[0].type: unknown rlimit 'nofiles'"),
        ("adjust: {rlimits: [{type: core, soft: 2, hard: 1}]}",
         "adjust.rlimits[0]: hard limit 1 is below soft limit 2"),
        ("adjust: {rlimits: [{type: core, hard: 1}, {type: RLIMIT_CORE, hard: 2}]}",
         "adjust.rlimits[1]: RLIMIT_CORE is given twice"),
        ("adjust: {hooks: {prestrat: []}}", "adjust.hooks: unknown key 'prestrat'"),
        ("adjust: {hooks: {poststop: [{args: [x]}]}}", "adjust.hooks.poststop[0].path: missing"),
        ("adjust: {oomScoreAdj: 1001}", "adjust.oomScoreAdj: must be between -1000 and 1000, got 1001"),
        ("adjust: {resources: {memory: {limit: 1Zi}}}",
         "adjust.resources.memory.limit: expected bytes or a quantity such as 512Mi, got '1Zi'"),
        ("adjust: {resources: {memory: {disableOomKiller: false}}}",
         "adjust.resources.memory.disableOomKiller: can only be set to true"),
        ("adjust: {resources: {cpu: {cpus: 'all'}}}",
         "adjust.resources.cpu.cpus: expected a list such as 0-3,7, got 'all'"),
        ("adjust: {resources: {cpu: {shares: 1}}}",
         "adjust.resources.cpu.shares: must be between 2 and 262144, got 1"),
        ("adjust: {resources: {}}", "adjust.resources: sets nothing"),
        ("update: {resources: {cpu: {quota: x}}}",
         "update.resources.cpu.quota: expected an integer, got string 'x'"),
        ("update: {}", "update.resources: missing"),
    ],
)  # fmt: skip
def test_validation_errors_name_rule_and_field(body: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(one_rule(body), "rules.yaml")
    text = str(caught.value)
    assert text.startswith("rules.yaml: rule #0 (r): ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: {a: 1}", "rules.yaml: rules: expected a list of rules, got a mapping"),
        ("- a\n", "rules.yaml: expected a mapping with key 'rules', got a list"),
        ("rule: []", "rules.yaml: unknown key 'rule' (known: rules)"),
        ("rules: [x]", "rules.yaml: rule #0: expected a mapping, got string 'x'"),
        ("rules: [{adjust: {env: {X: '1'}}}]", "rules.yaml: rule #0: name: missing"),
        ("rules: [{name: 'a b', adjust: {env: {X: '1'}}}]",
         "rules.yaml: rule #0: name: expected letters, digits"),
        ("rules: [{name: a, adjust: {env: {X: '1'}}}, {name: a, adjust: {env: {Y: '1'}}}]",
         "rules.yaml: rule #1 (a): name: already used by rule #0"),
        ("rules: [{name: a, adjust: {env: {X: '1'}}, when: {}}]",
         "rules.yaml: rule #0 (a): rule: unknown key 'when' (known: name, match, adjust, update)"),
        ("rules: [\n", "rules.yaml: "),
    ],
)  # fmt: skip
def test_file_level_errors(text: str, message: str) -> None:
    with pytest.raises(RulesError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_rules(text, "rules.yaml")


def test_the_number_of_rules_is_bounded() -> None:
    rule = "- {name: r%d, adjust: {env: {E%d: v}}}"
    text = "rules:\n" + "\n".join(rule % (i, i) for i in range(MAX_RULES + 1))
    with pytest.raises(RulesError, match=f"^f: {MAX_RULES + 1} rules, more than the limit of "):
        parse_rules(text, "f")
    assert len(parse_rules(text.rsplit("\n", 1)[0], "f").rules) == MAX_RULES


def test_empty_file_has_no_rules() -> None:
    assert parse_rules("", "f").rules == ()
    assert parse_rules("rules:\n", "f").rules == ()


CONFLICTS = [
    # certain: one rule matches everything, or both have the same conditions
    ("{}", "{namespace: a}", "env: {X: '1'}", "env: {X: '2'}", "error"),
    ("{namespace: a}", "{namespace: a}", "rlimits: [{type: nofile, hard: 1}]",
     "rlimits: [{type: NOFILE, hard: 2}]", "error"),
    ("{}", "{}", "devices: [{path: /dev/x, type: c, major: 1, minor: 2}]",
     "devices: [{path: /dev/x}]", "error"),
    ("{}", "{}", "resources: {memory: {limit: 1Gi}}", "resources: {memory: {limit: 2Gi}}", "error"),
    # possible: they might match one container
    ("{namespace: a}", "{namespace: 'a*'}", "env: {X: '1'}", "env: {X: '2'}", "warning"),
    ("{podLabels: {x: '1'}}", "{podLabels: {y: '1'}}", "oomScoreAdj: 1", "oomScoreAdj: 2",
     "warning"),
    # disjoint: no container matches both
    ("{namespace: a}", "{namespace: [b, c]}", "env: {X: '1'}", "env: {X: '2'}", None),
    ("{namespace: a}", "{namespace: 'b*'}", "env: {X: '1'}", "env: {X: '2'}", None),
    ("{podLabels: {x: '1'}}", "{podLabels: {x: '2'}}", "env: {X: '1'}", "env: {X: '2'}", None),
    ("{podLabels: {x: {exists: true}}}", "{podLabels: {x: {exists: false}}}", "env: {X: '1'}",
     "env: {X: '2'}", None),
    ("{qosClass: Guaranteed}", "{qosClass: [Burstable, BestEffort]}", "env: {X: '1'}",
     "env: {X: '2'}", None),
    # different fields, or fields that accumulate, never conflict
    ("{}", "{}", "env: {X: '1'}", "env: {Y: '2'}", None),
    ("{}", "{}", "hooks: {prestart: [{path: /a}]}", "hooks: {prestart: [{path: /b}]}", None),
]  # fmt: skip


@pytest.mark.parametrize(("match_a", "match_b", "adjust_a", "adjust_b", "kind"), CONFLICTS)
def test_static_conflicts(
    match_a: str, match_b: str, adjust_a: str, adjust_b: str, kind: str | None
) -> None:
    text = (
        f"rules:\n- {{name: a, match: {match_a}, adjust: {{{adjust_a}}}}}\n"
        f"- {{name: b, match: {match_b}, adjust: {{{adjust_b}}}}}\n"
    )
    if kind == "error":
        with pytest.raises(RulesError, match=r"rule #0 \(a\) and rule #1 \(b\) both set .* \(the "):
            parse_rules(text, "f")
        return
    rules = parse_rules(text, "f")
    if kind == "warning":
        assert len(rules.warnings) == 1
        assert rules.warnings[0].startswith("rule #0 (a) and rule #1 (b) both set ")
    else:
        assert rules.warnings == ()


def test_runtime_conflict_names_both_rules() -> None:
    rules = parse_rules(
        "rules:\n"
        "- {name: a, match: {podLabels: {team: ml}}, adjust: {env: {X: '1'}}}\n"
        "- {name: b, match: {podLabels: {tier: gold}}, adjust: {env: {X: '2'}}}\n",
        "f",
    )
    with pytest.raises(
        RuleConflictError, match=r"^rule #0 \(a\) and rule #1 \(b\) both set Env X$"
    ):
        evaluate_create(rules.rules, FACTS, pb.Container(id="c"), placeholder_devices)


def test_every_adjustment_kind_is_built() -> None:
    rules = parse_rules(
        one_rule(
            """adjust:
  env: {A: '1', PORT: 8080}
  removeEnv: [OLD]
  annotations: {example.com/x: y1}
  removeAnnotations: [example.com/old]
  mounts: [{destination: /data, source: /srv, type: bind, options: [rbind]}]
  removeMounts: [/old]
  devices: [{path: /dev/x, type: c, major: 1, minor: 2, file_mode: 0660}]
  removeDevices: [/dev/old]
  cdiDevices: [vendor.com/gpu=0]
  rlimits: [{type: nofile, soft: 10, hard: 20}, {type: core, hard: 0}]
  hooks: {createContainer: [{path: /bin/h, args: [h, x], env: ['A=1'], timeout: 3}]}
  oomScoreAdj: -10
  sysctls: {net.ipv4.ip_forward: 1}
  removeSysctls: [kernel.x]
  resources:
    cpu: {shares: 512, quota: 50000, period: 100000, cpus: '0-3', mems: '0'}
    memory: {limit: 1Gi, reservation: 512M, swap: 2Gi, swappiness: 10, disableOomKiller: true}
    pidsLimit: 100
    hugepageLimits: {2MB: 4Mi}
    unified: {memory.high: 900Mi}
    blockioClass: slow
    rdtClass: gold
update:
  resources: {cpu: {shares: 256}, memory: {limit: 2Gi}}
"""
        ),
        "f",
    )
    rule = rules.rules[0]
    data = message_to_data(build_adjustment(rule, placeholder_devices).message)
    assert data["env"] == [
        {"key": "-OLD"},
        {"key": "A", "value": "1"},
        {"key": "PORT", "value": "8080"},
    ]
    assert data["annotations"] == {"example.com/x": "y1", "-example.com/old": ""}
    assert data["mounts"] == [
        {"destination": "-/old"},
        {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"]},
    ]
    assert data["CDI_devices"] == [{"name": "vendor.com/gpu=0"}]
    assert data["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 20, "soft": 10},
        {"type": "RLIMIT_CORE"},  # hard and soft 0: proto3 zero values
    ]
    assert data["hooks"] == {
        "create_container": [
            {"path": "/bin/h", "args": ["h", "x"], "env": ["A=1"], "timeout": {"value": 3}}
        ]
    }
    linux = data["linux"]
    assert linux["devices"] == [
        {"path": "-/dev/old"},
        {"path": "/dev/x", "type": "c", "major": 1, "minor": 2},
    ]
    assert linux["oom_score_adj"] == {"value": -10}
    assert linux["sysctl"] == {"net.ipv4.ip_forward": "1", "-kernel.x": ""}
    resources = linux["resources"]
    assert resources["cpu"] == {
        "shares": {"value": 512},
        "quota": {"value": 50000},
        "period": {"value": 100000},
        "cpus": "0-3",
        "mems": "0",
    }
    assert resources["memory"] == {
        "limit": {"value": 1 << 30},
        "reservation": {"value": 512_000_000},
        "swap": {"value": 2 << 30},
        "swappiness": {"value": 10},
        "disable_oom_killer": {"value": True},
    }
    assert resources["pids"] == {"limit": 100}
    assert resources["hugepage_limits"] == [{"page_size": "2MB", "limit": 4 << 20}]
    assert resources["unified"] == {"memory.high": "900Mi"}
    assert resources["blockio_class"] == {"value": "slow"}
    assert resources["rdt_class"] == {"value": "gold"}
    update = message_to_data(build_update(rule, "ctr1").message)
    assert update == {
        "container_id": "ctr1",
        "linux": {
            "resources": {
                "memory": {"limit": {"value": 2 << 30}},
                "cpu": {"shares": {"value": 256}},
            }
        },
    }


def _pod(cgroup_parent: str = "") -> pb.PodSandbox:
    pod = pb.PodSandbox(name="p", namespace="ns")
    pod.linux.cgroup_parent = cgroup_parent
    return pod


def _container(oom: int | None = None, **resources: int) -> pb.Container:
    ctr = pb.Container(name="c")
    if oom is not None:
        ctr.linux.oom_score_adj.value = oom
    if "memory" in resources:
        ctr.linux.resources.memory.limit.value = resources["memory"]
    for name in ("shares", "quota", "period"):
        if name in resources:
            getattr(ctr.linux.resources.cpu, name).value = resources[name]
    return ctr


@pytest.mark.parametrize(
    ("pod", "container", "expected"),
    [
        (_pod("/kubepods/besteffort/pod1"), _container(), "BestEffort"),
        (_pod("/kubepods/burstable/pod1"), _container(), "Burstable"),
        (_pod("/kubepods/pod1"), _container(), "Guaranteed"),
        (_pod("kubepods-burstable-pod1.slice"), _container(), "Burstable"),
        (_pod("kubepods-besteffort-pod1.slice"), _container(), "BestEffort"),
        (_pod("kubepods-pod1.slice"), _container(-997), "Guaranteed"),
        (_pod(), _container(-997), "Guaranteed"),
        (_pod(), _container(1000), "BestEffort"),
        (_pod(), _container(500), "Burstable"),
        (_pod(), _container(shares=2), "BestEffort"),
        (_pod(), _container(memory=1 << 30, shares=1024, quota=100000, period=100000), "Guaranteed"),
        (_pod(), _container(memory=1 << 30, shares=512, quota=100000, period=100000), "Burstable"),
        (_pod(), _container(shares=512), "Burstable"),
    ],
)  # fmt: skip
def test_qos_class(pod: pb.PodSandbox, container: pb.Container, expected: str) -> None:
    assert qos_class(pod, container) == expected


def test_container_facts_take_the_image_from_either_runtime() -> None:
    pod = _pod("/kubepods/pod1")
    pod.runtime_handler = "kata"
    for key in ("io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName"):
        ctr = pb.Container(name="c", annotations={key: "nginx:1"})
        facts = container_facts(pod, ctr)
        assert (facts.image, facts.runtime_handler, facts.qos_class) == (
            "nginx:1",
            "kata",
            "Guaranteed",
        )


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([{}], "BestEffort"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
        ([{"requests": {"memory": "1Gi"}}], "Burstable"),
    ],
)
def test_pod_qos_class_follows_kubernetes(
    resources: list[dict[str, object]], expected: str
) -> None:
    assert pod_qos_class([{"name": "c", "resources": r} for r in resources]) == expected


def test_sample_config_is_valid_without_warnings() -> None:
    sample = Path(__file__).parent.parent / "sample-config.yaml"
    rules = parse_rules(sample.read_text(), str(sample))
    assert [r.name for r in rules.rules] == ["ci-fuse", "local-time", "sandbox-cap"]
    assert rules.warnings == ()
