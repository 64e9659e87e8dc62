"""nri-default-validator launched by a mock runtime without a built-in validator: it
rejects what the built-in validator with the same configuration rejects, with the same
reasons."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from nri.adaptation import DefaultValidatorConfig, ValidationError
from nri.api import Adjustment, make_hook, mask_of
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime, SyncMockRuntime
from nri.stub import Plugin

CONFIG = """\
rejectOCIHookAdjustment: true
rejectNamespaceAdjustment: true
rejectSysctlAdjustment: true
rejectUnconfinedSeccompAdjustment: true
requiredPlugins: [injector]
tolerateMissingPluginsAnnotation: tolerate-missing.example.com
"""
# the same rules, for the built-in validator
BUILTIN = dataclasses.replace(DefaultValidatorConfig.from_yaml(CONFIG), enable=True)


class Injector(Plugin):
    """Asks for what the container's name says."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        adjust = Adjustment()
        if container.name == "hooks":
            adjust.add_hooks(pb.Hooks(prestart=[make_hook("/bin/true")]))
        elif container.name == "netns":
            adjust.add_or_replace_namespace(pb.LinuxNamespace(type="network", path="/run/netns/x"))
        elif container.name == "sysctl":
            adjust.set_linux_sysctl("net.ipv4.ip_forward", "1")
        elif container.name == "seccomp":
            adjust.set_linux_seccomp_policy(pb.LinuxSeccomp(default_action="SCMP_ACT_ALLOW"))
        else:
            adjust.add_env("INJECTED", "1")
        return adjust


ANNOTATIONS = {
    "required-plugins.noderesource.dev/container.needs": "[injector, missing-one]",
    "required-plugins.noderesource.dev/container.needs2": "[a, b]",
    "required-plugins.noderesource.dev/container.broken": "[a",
    "tolerate-missing.example.com/container.tolerant": "true",
    "required-plugins.noderesource.dev/container.tolerant": "[missing-one]",
    "tolerate-missing.example.com/container.badbool": "maybe",
}
NAMES = ["plain", "hooks", "netns", "sysctl", "seccomp", "needs", "needs2", "broken", "tolerant",
         "badbool"]  # fmt: skip


def outcomes(runtime: SyncMockRuntime) -> dict[str, str]:
    """Create every container; the reason of each rejection ("" if created)."""
    runtime.add_plugin(Injector(), name="injector", idx="05")
    pod = runtime.run_pod("p", namespace="ns", annotations=ANNOTATIONS)
    result = {}
    for name in NAMES:
        try:
            runtime.create_container(pod, name)
        except ValidationError as exc:
            result[name] = exc.reason or ""
        else:
            result[name] = ""
    return result


def test_rejects_like_the_built_in_validator(tmp_path: Path) -> None:
    config = tmp_path / "validator.yaml"
    config.write_text(CONFIG)
    with SyncMockRuntime(MockRuntime(socket_path=tmp_path / "a.sock")) as runtime:
        handle = runtime.launch_plugin(
            [sys.executable, "-m", "nri_default_validator", "--config", str(config)], idx="90"
        )
        assert handle.info.name == "default-validator"
        assert handle.info.events == mask_of(pb.VALIDATE_CONTAINER_ADJUSTMENT)
        standalone = outcomes(runtime)
        created = {c.name for c in runtime.containers.values()}
        with pytest.raises(ValidationError, match='^validator "90-default-validator" rejected'):
            runtime.create_container(runtime.pods[next(iter(runtime.pods))], "hooks")
    runtime = SyncMockRuntime(
        MockRuntime(socket_path=tmp_path / "b.sock", default_validator=BUILTIN)
    )
    with runtime:
        builtin = outcomes(runtime)

    assert standalone == builtin
    assert created == {"plain", "tolerant"}
    assert standalone["hooks"] == (
        'validation error: plugin "05-injector" attempted restricted OCI hook injection'
    )
    assert standalone["netns"] == (
        "validation error: attempted restricted namespace adjustment by plugin(s) "
        '"05-injector" (namespace "network")'
    )
    assert standalone["sysctl"] == (
        "validation error: attempted restricted sysctl adjustment by plugin(s) 05-injector"
    )
    assert "unconfined seccomp policy adjustment" in standalone["seccomp"]
    assert standalone["needs"] == 'validation error: required plugin "missing-one" not present'
    assert standalone["needs2"] == 'validation error: required plugins "a,b" not present'
    assert standalone["broken"].startswith(
        'invalid required-plugins.noderesource.dev annotation "[a": '
    )
    assert standalone["badbool"] == (
        'invalid tolerate-missing.example.com annotation "maybe": '
        'strconv.ParseBool: parsing "maybe": invalid syntax'
    )


def test_runtime_provided_config_and_no_restrictions(nri_runtime: SyncMockRuntime) -> None:
    # without any configuration nothing is restricted
    nri_runtime.launch_plugin("nri-default-validator --idx 90")
    nri_runtime.add_plugin(Injector(), name="injector", idx="05")
    pod = nri_runtime.run_pod("p")
    ctr = nri_runtime.create_container(pod, "hooks")
    assert ctr.spec["hooks"]["prestart"] == [{"path": "/bin/true"}]


def test_in_process_with_config_text(nri_runtime: SyncMockRuntime) -> None:
    from nri_default_validator import DefaultValidatorPlugin

    nri_runtime.add_plugin(
        DefaultValidatorPlugin(), name="default-validator", idx="90", config="enable: false\n"
    )
    nri_runtime.add_plugin(Injector(), name="injector", idx="05")
    pod = nri_runtime.run_pod("p")
    assert nri_runtime.create_container(pod, "sysctl").spec["linux"]["sysctl"] == {
        "net.ipv4.ip_forward": "1"
    }
