"""NRI rules: adjust containers by the ordered rules of a YAML file, no plugin code needed.

A rule matches containers by pod namespace, pod and container name, labels, annotations,
image, runtime handler and QoS class, and applies what any plugin can at CreateContainer
(env, mounts, devices with host lookup, CDI devices, rlimits, hooks, annotations,
resources, OOM score, sysctls, command line, scheduler, I/O priority, memory policy,
namespaces, network devices, seccomp policy, Intel RDT) and resource updates at
UpdateContainer. See README.md.
"""

from nri_rules._apply import (
    Outcome,
    RuleApplyError,
    RuleConflictError,
    build_adjustment,
    build_update,
    evaluate_create,
    evaluate_update,
    host_resolver,
    parse_rules,
    placeholder_devices,
    static_conflicts,
)
from nri_rules._explain import PodContainer, PodError, pod_containers, pod_qos_class
from nri_rules._linux import LinuxSettings
from nri_rules._match import (
    QOS_CLASSES,
    ContainerFacts,
    KeyMatcher,
    Pattern,
    PatternError,
    container_facts,
    qos_class,
)
from nri_rules._plugin import DEFAULT_POLL_INTERVAL, RulesPlugin, load_rules_file
from nri_rules._rules import (
    MAX_RULES,
    Match,
    ResourceSettings,
    Rule,
    RuleActions,
    RulesError,
    RuleSet,
    read_rules,
)

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "MAX_RULES",
    "QOS_CLASSES",
    "ContainerFacts",
    "KeyMatcher",
    "LinuxSettings",
    "Match",
    "Outcome",
    "Pattern",
    "PatternError",
    "PodContainer",
    "PodError",
    "ResourceSettings",
    "Rule",
    "RuleActions",
    "RuleApplyError",
    "RuleConflictError",
    "RuleSet",
    "RulesError",
    "RulesPlugin",
    "build_adjustment",
    "build_update",
    "container_facts",
    "evaluate_create",
    "evaluate_update",
    "host_resolver",
    "load_rules_file",
    "parse_rules",
    "placeholder_devices",
    "pod_containers",
    "pod_qos_class",
    "qos_class",
    "read_rules",
    "static_conflicts",
]
