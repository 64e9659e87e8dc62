"""The configuration: the built-in validator's keys, YAML or TOML, enabled by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from nri_default_validator import ConfigError, DefaultValidatorPlugin, parse_config

from nri.adaptation import DefaultValidatorConfig

SAMPLE = Path(__file__).resolve().parents[1] / "sample-config.yaml"


def test_empty_config_is_enabled_and_restricts_nothing() -> None:
    assert parse_config("") == DefaultValidatorConfig(enable=True)
    assert parse_config("# nothing\n") == DefaultValidatorConfig(enable=True)
    assert DefaultValidatorPlugin().config == DefaultValidatorConfig(enable=True)


def test_upstream_yaml_keys() -> None:
    config = parse_config(
        "rejectOCIHookAdjustment: true\n"
        "rejectRuntimeDefaultSeccompAdjustment: true\n"
        "rejectUnconfinedSeccompAdjustment: true\n"
        "rejectCustomSeccompAdjustment: true\n"
        "rejectNamespaceAdjustment: true\n"
        "rejectSysctlAdjustment: true\n"
        "requiredPlugins: [a, 10-b]\n"
        "tolerateMissingPluginsAnnotation: tolerate.example.com\n"
    )
    assert config == DefaultValidatorConfig(
        enable=True,
        reject_oci_hook_adjustment=True,
        reject_runtime_default_seccomp_adjustment=True,
        reject_unconfined_seccomp_adjustment=True,
        reject_custom_seccomp_adjustment=True,
        reject_namespace_adjustment=True,
        reject_sysctl_adjustment=True,
        required_plugins=["a", "10-b"],
        tolerate_missing_annotation="tolerate.example.com",
    )


def test_containerd_toml_keys() -> None:
    config = parse_config(
        "enable = true\n"
        "reject_oci_hook_adjustment = true\n"
        'required_plugins = ["x"]\n'
        'tolerate_missing_plugins_annotation = "t"\n'
    )
    assert config == DefaultValidatorConfig(
        enable=True,
        reject_oci_hook_adjustment=True,
        required_plugins=["x"],
        tolerate_missing_annotation="t",
    )


def test_enable_false_is_kept() -> None:
    assert parse_config("enable: false\nrejectOCIHookAdjustment: true\n").enable is False


def test_sample_config() -> None:
    config = parse_config(SAMPLE.read_text(), source=str(SAMPLE))
    assert config.enable and config.reject_oci_hook_adjustment


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rejectFoo: true\n", "unknown option 'rejectFoo'"),
        ("rejectOCIHookAdjustment: 1\n", "rejectOCIHookAdjustment must be true or false"),
        ("requiredPlugins: a\n", "requiredPlugins must be a list of plugin names"),
        ("rejectOCIHookAdjustment: [\n", "line 2 column 1"),
        ("just text\n", "expected a mapping of options, got str"),
        ("- a\n", "expected a mapping of options, got list"),
    ],
)
def test_bad_config(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="cfg")
    assert str(info.value).startswith("cfg")
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_repeated_key_keeps_the_last_value() -> None:
    assert parse_config("enable: true\nenable: false\n").enable is False


def test_oversized_config() -> None:
    with pytest.raises(ConfigError, match="^cfg: .*1048576"):
        parse_config("a: " + "x" * (2 << 20), source="cfg")
