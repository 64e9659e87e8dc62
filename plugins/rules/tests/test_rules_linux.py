"""The process and Linux settings of a rule: validation, the built adjustment, conflicts,
and what ``check`` and ``explain`` print for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nri_rules import RulesError, build_adjustment, parse_rules, placeholder_devices

from nri.api import message_to_data


def one_rule(body: str) -> str:
    return "rules:\n- name: r\n" + "".join(f"  {line}\n" for line in body.splitlines())


SCHED = "adjust.scheduler"
SECCOMP = "adjust.seccomp"


@pytest.mark.parametrize(
    ("adjust", "message"),
    [
        # args
        ("args: []", "adjust.args: empty list (a container needs a command)"),
        ("args: /bin/sh", "adjust.args: expected a list (the command and its arguments), got string"),
        ("args: ['', x]", "adjust.args[0]: the command must not be empty"),
        ("args: [sh, true]", "adjust.args[1]: expected a string, got boolean True (quote it)"),
        # scheduler
        ("scheduler: {nice: 1}", f"{SCHED}.policy: missing"),
        ("scheduler: {policy: FIFO}", f"{SCHED}.policy: expected one of SCHED_OTHER, SCHED_FIFO, "
         "SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE, got string 'FIFO'"),
        ("scheduler: {policy: SCHED_NONE}", f"{SCHED}.policy: expected one of SCHED_OTHER"),
        ("scheduler: {policy: SCHED_FIFO}",
         f"{SCHED}.priority: missing (SCHED_FIFO needs a priority from 1 to 99)"),
        ("scheduler: {policy: SCHED_RR, priority: 100}",
         f"{SCHED}.priority: must be between 1 and 99, got 100"),
        ("scheduler: {policy: SCHED_OTHER, priority: 5}",
         f"{SCHED}.priority: only for SCHED_FIFO and SCHED_RR, not SCHED_OTHER"),
        ("scheduler: {policy: SCHED_BATCH, nice: 20}", f"{SCHED}.nice: must be between -20 and 19"),
        ("scheduler: {policy: SCHED_OTHER, nice: '1'}", f"{SCHED}.nice: expected an integer"),
        ("scheduler: {policy: SCHED_OTHER, flags: [SCHED_FLAG_RECLAIM, SCHED_FLAG_RECLAIM]}",
         f"{SCHED}.flags[1]: SCHED_FLAG_RECLAIM is given twice"),
        ("scheduler: {policy: SCHED_OTHER, flags: [RESET_ON_FORK]}",
         f"{SCHED}.flags[0]: expected one of SCHED_FLAG_RESET_ON_FORK,"),
        ("scheduler: {policy: SCHED_OTHER, runtime: 1}",
         f"{SCHED}.runtime: only for SCHED_DEADLINE, not SCHED_OTHER"),
        ("scheduler: {policy: SCHED_DEADLINE, runtime: 10}",
         f"{SCHED}.deadline: missing (SCHED_DEADLINE needs runtime and deadline)"),
        ("scheduler: {policy: SCHED_DEADLINE, runtime: 10, deadline: 5}",
         f"{SCHED}: runtime 10 is above deadline 5"),
        ("scheduler: {policy: SCHED_DEADLINE, runtime: 1, deadline: 5, period: 2}",
         f"{SCHED}: deadline 5 is above period 2"),
        ("scheduler: {policy: SCHED_OTHER, prio: 1}", f"{SCHED}: unknown key 'prio' (known: policy,"),
        # ioPriority
        ("ioPriority: {priority: 1}", "adjust.ioPriority.class: missing"),
        ("ioPriority: {class: IOPRIO_CLASS_NONE}", "adjust.ioPriority.class: expected one of "
         "IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, got string 'IOPRIO_CLASS_NONE'"),
        ("ioPriority: {class: IOPRIO_CLASS_BE, priority: 8}",
         "adjust.ioPriority.priority: must be between 0 and 7, got 8"),
        ("ioPriority: IOPRIO_CLASS_BE", "adjust.ioPriority: expected a mapping (class, priority)"),
        # memoryPolicy
        ("memoryPolicy: {nodes: '0'}", "adjust.memoryPolicy.mode: missing"),
        ("memoryPolicy: {mode: bind, nodes: '0'}",
         "adjust.memoryPolicy.mode: expected one of MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND,"),
        ("memoryPolicy: {mode: MPOL_BIND}",
         "adjust.memoryPolicy.nodes: missing (MPOL_BIND needs at least one node)"),
        ("memoryPolicy: {mode: MPOL_LOCAL, nodes: 0}", "adjust.memoryPolicy.nodes: MPOL_LOCAL takes no nodes"),
        ("memoryPolicy: {mode: MPOL_INTERLEAVE, nodes: all}",
         "adjust.memoryPolicy.nodes: expected a list such as 0-3,7, got 'all'"),
        ("memoryPolicy: {mode: MPOL_BIND, nodes: '0', flags: [MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES]}",
         "adjust.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"),
        ("memoryPolicy: {mode: MPOL_DEFAULT, flags: [MPOL_F_NUMA_BALANCING]}",
         "adjust.memoryPolicy.flags: MPOL_DEFAULT takes no flags"),
        ("memoryPolicy: {mode: MPOL_BIND, nodes: '0', flags: [STATIC]}",
         "adjust.memoryPolicy.flags[0]: expected one of MPOL_F_STATIC_NODES"),
        # namespaces
        ("namespaces: [{path: /x}]", "adjust.namespaces[0].type: missing"),
        ("namespaces: [{type: net}]", "adjust.namespaces[0].type: expected one of mount, pid, "
         "network, uts, ipc, user, cgroup, time, got string 'net'"),
        ("namespaces: [{type: network, path: netns/x}]",
         "adjust.namespaces[0].path: 'netns/x' must be an absolute path without '..'"),
        ("namespaces: [{type: network, path: ''}]", "adjust.namespaces[0].path: must not be empty"),
        ("namespaces: [{type: pid}, {type: pid, path: /proc/1/ns/pid}]",
         "adjust.namespaces[1]: namespace pid is given twice"),
        ("namespaces: [{type: pid, mode: x}]", "adjust.namespaces[0]: unknown key 'mode' (known: type, path)"),
        ("removeNamespaces: [mnt]", "adjust.removeNamespaces[0]: expected one of mount, pid,"),
        ("removeNamespaces: [ipc, ipc]", "adjust.removeNamespaces[1]: ipc is given twice"),
        ("namespaces: [{type: ipc}]\nremoveNamespaces: [ipc]",
         "adjust.removeNamespaces: ipc is also in namespaces"),
        # netDevices
        ("netDevices: [eth1]", "adjust.netDevices: expected a mapping (host interface: {name: ...})"),
        ("netDevices: {eth1: {name: a/b}}", "adjust.netDevices.eth1.name: invalid interface name 'a/b'"),
        ("netDevices: {'eth 1': {}}", "adjust.netDevices.eth 1: invalid interface name 'eth 1'"),
        ("netDevices: {-eth1: {}}", "adjust.netDevices.-eth1: invalid interface name '-eth1'"),
        ("netDevices: {eth1: {name: a-very-long-name0}}",
         "adjust.netDevices.eth1.name: interface name 'a-very-long-name0' is longer than 15 bytes"),
        ("netDevices: {eth1: {nam: x}}", "adjust.netDevices.eth1: unknown key 'nam' (known: name)"),
        ("netDevices: {eth1: net1, eth2: {name: net1}}",
         "adjust.netDevices.eth2: 'net1' is also the container name of 'eth1'"),
        ("removeNetDevices: eth1", "adjust.removeNetDevices: expected a list (host interface names)"),
        ("netDevices: {eth1: {}}\nremoveNetDevices: [eth1]",
         "adjust.removeNetDevices: 'eth1' is also in netDevices"),
        # seccomp
        ("seccomp: {syscalls: []}", f"{SECCOMP}.defaultAction: missing"),
        ("seccomp: {defaultAction: ALLOW}", f"{SECCOMP}.defaultAction: expected one of SCMP_ACT_KILL,"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, defaultErrnoRet: 1}",
         f"{SECCOMP}.defaultErrnoRet: only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"),
        ("seccomp: {defaultAction: SCMP_ACT_ERRNO, defaultErrnoRet: -1}",
         f"{SECCOMP}.defaultErrnoRet: must be between 0 and 4294967295, got -1"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, architectures: [x86_64]}",
         f"{SECCOMP}.architectures[0]: expected one of SCMP_ARCH_X86, SCMP_ARCH_X86_64,"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, flags: [TSYNC]}",
         f"{SECCOMP}.flags[0]: expected one of SECCOMP_FILTER_FLAG_TSYNC,"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{action: SCMP_ACT_ERRNO}]}",
         f"{SECCOMP}.syscalls[0].names: missing"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{names: [], action: SCMP_ACT_ERRNO}]}",
         f"{SECCOMP}.syscalls[0].names: empty list"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{names: [read], action: SCMP_ACT_LOG, errnoRet: 1}]}",
         f"{SECCOMP}.syscalls[0].errnoRet: only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_LOG"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{names: [read], action: SCMP_ACT_ERRNO, "
         "args: [{index: 6, value: 0, op: SCMP_CMP_EQ}]}]}",
         f"{SECCOMP}.syscalls[0].args[0].index: must be between 0 and 5, got 6"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{names: [read], action: SCMP_ACT_ERRNO, "
         "args: [{index: 0, value: 0}]}]}", f"{SECCOMP}.syscalls[0].args[0].op: missing"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{names: [read], action: SCMP_ACT_ERRNO, "
         "args: [{index: 0, value: 0, op: '=='}]}]}",
         f"{SECCOMP}.syscalls[0].args[0].op: expected one of SCMP_CMP_NE,"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscalls: [{names: [read], action: SCMP_ACT_NOTIFY}]}",
         f"{SECCOMP}.listenerPath: missing (SCMP_ACT_NOTIFY needs a listener)"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, listenerMetadata: x}",
         f"{SECCOMP}.listenerMetadata: needs listenerPath"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, listenerPath: run/agent.sock}",
         f"{SECCOMP}.listenerPath: 'run/agent.sock' must be an absolute path"),
        ("seccomp: {defaultAction: SCMP_ACT_ALLOW, syscall: []}", f"{SECCOMP}: unknown key 'syscall'"),
        # intelRdt
        ("intelRdt: {}", "adjust.intelRdt: sets nothing"),
        ("intelRdt: {closID: a/b}", "adjust.intelRdt.closID: invalid resctrl group name 'a/b'"),
        ("intelRdt: {closID: ''}", "adjust.intelRdt.closID: must not be empty"),
        ("intelRdt: {schemata: [ff]}", "adjust.intelRdt.schemata[0]: expected a line such as L3:0=ff, got 'ff'"),
        ("intelRdt: {enableMonitoring: 'yes'}",
         "adjust.intelRdt.enableMonitoring: expected true or false, got string 'yes'"),
        ("intelRdt: {closId: gold}", "adjust.intelRdt: unknown key 'closId' (known: closID, schemata,"),
    ],
)  # fmt: skip
def test_validation_errors_name_rule_and_field(adjust: str, message: str) -> None:
    body = "adjust:\n" + "".join(f"  {line}\n" for line in adjust.splitlines())
    with pytest.raises(RulesError) as caught:
        parse_rules(one_rule(body), "rules.yaml")
    text = str(caught.value)
    assert text.startswith("rules.yaml: rule #0 (r): ")
    assert message in text
    assert "\n" not in text


EVERY_KIND = """adjust:
  args: [/bin/app, --port, 8080, '']
  scheduler: {policy: SCHED_DEADLINE, flags: [SCHED_FLAG_DL_OVERRUN], runtime: 100000,
              deadline: 500000, period: 1000000}
  ioPriority: {class: IOPRIO_CLASS_BE, priority: 2}
  memoryPolicy: {mode: MPOL_INTERLEAVE, nodes: 0-1, flags: [MPOL_F_RELATIVE_NODES]}
  namespaces: [{type: network, path: /var/run/netns/blue}, {type: time}]
  removeNamespaces: [ipc]
  netDevices: {eth1: {name: net1}, eth2: {}, eth3: net3}
  removeNetDevices: [eth9]
  seccomp:
    defaultAction: SCMP_ACT_ERRNO
    defaultErrnoRet: 38
    architectures: [SCMP_ARCH_X86_64]
    flags: [SECCOMP_FILTER_FLAG_LOG]
    listenerPath: /run/agent.sock
    listenerMetadata: meta
    syscalls:
      - {names: [read, write], action: SCMP_ACT_ALLOW}
      - names: [clone]
        action: SCMP_ACT_NOTIFY
        args: [{index: 0, value: 16, valueTwo: 16, op: SCMP_CMP_MASKED_EQ}]
      - {names: [ptrace], action: SCMP_ACT_ERRNO, errnoRet: 1}
  intelRdt: {closID: gold, schemata: ['L3:0=ff', 'MB:0=50'], enableMonitoring: false}
"""


def test_every_linux_kind_is_built() -> None:
    rule = parse_rules(one_rule(EVERY_KIND), "f").rules[0]
    data = message_to_data(build_adjustment(rule, placeholder_devices).message)
    assert data["args"] == ["/bin/app", "--port", "8080", ""]
    linux = data["linux"]
    assert linux["scheduler"] == {
        "policy": "SCHED_DEADLINE",
        "flags": ["SCHED_FLAG_DL_OVERRUN"],
        "runtime": 100000,
        "deadline": 500000,
        "period": 1000000,
    }
    assert linux["io_priority"] == {"class": "IOPRIO_CLASS_BE", "priority": 2}
    assert linux["memory_policy"] == {
        "mode": "MPOL_INTERLEAVE",
        "nodes": "0-1",
        "flags": ["MPOL_F_RELATIVE_NODES"],
    }
    assert linux["namespaces"] == [
        {"type": "-ipc"},  # NRI's removal marker
        {"type": "network", "path": "/var/run/netns/blue"},
        {"type": "time"},
    ]
    assert linux["net_devices"] == {
        "-eth9": {},
        "eth1": {"name": "net1"},
        "eth2": {},
        "eth3": {"name": "net3"},
    }
    assert linux["seccomp_policy"] == {
        "default_action": "SCMP_ACT_ERRNO",
        "default_errno": {"value": 38},
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listener_path": "/run/agent.sock",
        "listener_metadata": "meta",
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["clone"],
                "action": "SCMP_ACT_NOTIFY",
                "args": [{"value": 16, "value_two": 16, "op": "SCMP_CMP_MASKED_EQ"}],
            },
            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errno_ret": {"value": 1}},
        ],
    }
    assert linux["rdt"] == {
        "clos_id": {"value": "gold"},
        "schemata": {"value": ["L3:0=ff", "MB:0=50"]},
        "enable_monitoring": {},  # false: the proto3 zero value
    }


def test_a_rule_with_only_linux_settings_is_not_empty() -> None:
    rules = parse_rules(one_rule("adjust: {ioPriority: {class: IOPRIO_CLASS_IDLE}}"), "f")
    data = message_to_data(build_adjustment(rules.rules[0], placeholder_devices).message)
    assert data == {"linux": {"io_priority": {"class": "IOPRIO_CLASS_IDLE"}}}


CONFLICTS = [
    ("args: [a]", "args: [b]", "Args"),
    ("scheduler: {policy: SCHED_BATCH}", "scheduler: {policy: SCHED_IDLE}", "LinuxSched"),
    ("ioPriority: {class: IOPRIO_CLASS_BE}", "ioPriority: {class: IOPRIO_CLASS_IDLE}", "IoPriority"),
    ("memoryPolicy: {mode: MPOL_LOCAL}", "memoryPolicy: {mode: MPOL_BIND, nodes: '1'}",
     "MemoryPolicy"),
    ("namespaces: [{type: network, path: /a}]", "namespaces: [{type: network, path: /b}]",
     "Namespace network"),
    ("namespaces: [{type: pid}]", "removeNamespaces: [pid]", "Namespace pid"),
    ("netDevices: {eth1: {name: a}}", "netDevices: {eth1: {name: b}}", "LinuxNetDevices eth1"),
    ("seccomp: {defaultAction: SCMP_ACT_ALLOW}", "seccomp: {defaultAction: SCMP_ACT_LOG}",
     "SeccompPolicy"),
    ("intelRdt: {closID: a}", "intelRdt: {closID: b}", "RdtClosID"),
    ("intelRdt: {schemata: ['L3:0=f']}", "intelRdt: {schemata: ['L3:0=ff']}", "RdtSchemata"),
    ("intelRdt: {enableMonitoring: true}", "intelRdt: {enableMonitoring: false}",
     "RdtEnableMonitoring"),
]  # fmt: skip


@pytest.mark.parametrize(("adjust_a", "adjust_b", "field"), CONFLICTS)
def test_two_rules_setting_one_field_conflict(adjust_a: str, adjust_b: str, field: str) -> None:
    same = f"rules:\n- {{name: a, adjust: {{{adjust_a}}}}}\n- {{name: b, adjust: {{{adjust_b}}}}}\n"
    with pytest.raises(RulesError) as caught:
        parse_rules(same, "f")
    assert str(caught.value) == (
        f"f: rule #0 (a) and rule #1 (b) both set {field} (the rules match the same containers)"
    )
    possible = (
        f"rules:\n- {{name: a, match: {{podLabels: {{x: '1'}}}}, adjust: {{{adjust_a}}}}}\n"
        f"- {{name: b, match: {{podLabels: {{y: '1'}}}}, adjust: {{{adjust_b}}}}}\n"
    )
    assert parse_rules(possible, "f").warnings == (
        f"rule #0 (a) and rule #1 (b) both set {field} (for a container matching both)",
    )
    disjoint = possible.replace("{y: '1'}", "{x: '2'}")
    assert parse_rules(disjoint, "f").warnings == ()


@pytest.mark.parametrize(
    ("adjust_a", "adjust_b"),
    [
        ("namespaces: [{type: network, path: /a}]", "namespaces: [{type: pid}]"),
        ("netDevices: {eth1: {name: a}}", "netDevices: {eth2: {name: b}}"),
        ("intelRdt: {closID: a}", "intelRdt: {enableMonitoring: true}"),
        ("scheduler: {policy: SCHED_BATCH}", "ioPriority: {class: IOPRIO_CLASS_BE}"),
    ],
)
def test_different_fields_do_not_conflict(adjust_a: str, adjust_b: str) -> None:
    text = f"rules:\n- {{name: a, adjust: {{{adjust_a}}}}}\n- {{name: b, adjust: {{{adjust_b}}}}}\n"
    assert parse_rules(text, "f").warnings == ()


def nri_rules(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nri_rules", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_check_prints_the_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "rules:\n- name: rt\n  adjust:\n    scheduler: {policy: SCHED_RR, priority: 0}\n"
    )
    (tmp_path / "good.yaml").write_text(one_rule(EVERY_KIND))
    done = nri_rules("check", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "good.yaml: 1 rules, valid\n"
    assert done.stderr == (
        "nri-rules: error: bad.yaml: rule #0 (rt): adjust.scheduler.priority: must be between 1 "
        "and 99, got 0\n"
    )


POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ml}
spec:
  containers: [{name: app, image: example.com/app:1}]
"""


def test_explain_shows_the_linux_settings(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(one_rule(EVERY_KIND))
    (tmp_path / "pod.yaml").write_text(POD)
    done = nri_rules("explain", "rules.yaml", "--pod", "pod.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for line in (
        "    args:",
        "    - /bin/app",
        "      scheduler:",
        "        policy: SCHED_DEADLINE",
        "      io_priority:",
        "        class: IOPRIO_CLASS_BE",
        "      memory_policy:",
        "        mode: MPOL_INTERLEAVE",
        "      namespaces:",
        "      - type: -ipc",
        "        path: /var/run/netns/blue",
        "      net_devices:",
        "          name: net1",
        "      seccomp_policy:",
        "        default_action: SCMP_ACT_ERRNO",
        "      rdt:",
        "          value: gold",
    ):
        assert line in text.splitlines(), (line, text)
