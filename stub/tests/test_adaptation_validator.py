"""The default validator: each rejection option, required plugins, the toleration."""

import pytest

from nri.adaptation._result import CreateResult
from nri.adaptation._validator import (
    DefaultValidator,
    DefaultValidatorConfig,
    ValidationError,
    validation_result,
)
from nri.api import api_pb2 as pb

PREFIX = (
    'validator "00-default-validator" rejected container adjustment, reason: validation error: '
)


def request(adjust=None, profile=None, annotations=None, plugins=("10-a", "20-b")):
    ctr = pb.Container(id="c0", name="app")
    if profile is not None:
        ctr.linux.seccomp_profile.profile_type = profile
    result = CreateResult(
        pb.CreateContainerRequest(
            pod=pb.PodSandbox(id="p", annotations=annotations or {}), container=ctr
        )
    )
    for name, adj in adjust or []:
        result.apply(name, pb.CreateContainerResponse(adjust=adj))
    instances = [pb.PluginInstance(index=p[:2], name=p[3:]) for p in plugins]
    return result.validation_request(instances)


def validate(req, **options):
    DefaultValidator(DefaultValidatorConfig(enable=True, **options)).validate(req)


def hooks():
    return pb.ContainerAdjustment(hooks=pb.Hooks(prestart=[pb.Hook(path="/h")]))


def test_oci_hooks_on_and_off():
    req = request([("10-a", hooks()), ("20-b", hooks())])
    validate(req)
    with pytest.raises(ValidationError) as info:
        validate(req, reject_oci_hook_adjustment=True)
    assert str(info.value) == PREFIX + 'plugins "10-a,20-b" attempted restricted OCI hook injection'
    assert info.value.plugin == "00-default-validator"
    with pytest.raises(ValidationError, match='plugin "10-a" attempted'):
        validate(request([("10-a", hooks())]), reject_oci_hook_adjustment=True)


SECCOMP = pb.ContainerAdjustment(
    linux=pb.LinuxContainerAdjustment(seccomp_policy=pb.LinuxSeccomp(default_action="X"))
)


@pytest.mark.parametrize(
    ("profile", "option", "text"),
    [
        (
            None,
            "reject_unconfined_seccomp_adjustment",
            "plugin 10-a attempted restricted  unconfined seccomp policy adjustment",
        ),
        (
            pb.SecurityProfile.UNCONFINED,
            "reject_unconfined_seccomp_adjustment",
            "plugin 10-a attempted restricted  unconfined seccomp policy adjustment",
        ),
        (
            pb.SecurityProfile.RUNTIME_DEFAULT,
            "reject_runtime_default_seccomp_adjustment",
            "plugin 10-a attempted restricted runtime default seccomp policy adjustment",
        ),
        (
            pb.SecurityProfile.LOCALHOST,
            "reject_custom_seccomp_adjustment",
            "plugin 10-a attempted restricted  custom seccomp policy adjustment",
        ),
    ],
)
def test_seccomp_options(profile, option, text):
    req = request([("10-a", SECCOMP)], profile=profile)
    validate(req)
    others = {
        o: True
        for o in (
            "reject_unconfined_seccomp_adjustment",
            "reject_runtime_default_seccomp_adjustment",
            "reject_custom_seccomp_adjustment",
        )
        if o != option
    }
    validate(req, **others)
    with pytest.raises(ValidationError) as info:
        validate(req, **{option: True})
    assert str(info.value) == PREFIX + text


def test_namespaces_on_and_off():
    adj = pb.ContainerAdjustment(
        linux=pb.LinuxContainerAdjustment(namespaces=[pb.LinuxNamespace(type="network")])
    )
    req = request([("20-b", adj)])
    validate(req)
    with pytest.raises(ValidationError) as info:
        validate(req, reject_namespace_adjustment=True)
    assert (
        str(info.value)
        == PREFIX
        + 'attempted restricted namespace adjustment by plugin(s) "20-b" (namespace "network")'
    )


def test_sysctl_on_and_off():
    adj = pb.ContainerAdjustment(linux=pb.LinuxContainerAdjustment(sysctl={"net.x": "1"}))
    req = request([("10-a", adj)])
    validate(req)
    with pytest.raises(ValidationError) as info:
        validate(req, reject_sysctl_adjustment=True)
    assert str(info.value) == PREFIX + "attempted restricted sysctl adjustment by plugin(s) 10-a"


def test_required_plugins_global():
    validate(request(), required_plugins=["a", "20-b"])
    with pytest.raises(ValidationError) as info:
        validate(request(), required_plugins=["a", "zz"])
    assert str(info.value) == PREFIX + 'required plugin "zz" not present'
    with pytest.raises(ValidationError, match='required plugins "x,y" not present'):
        validate(request(), required_plugins=["x", "y"])


@pytest.mark.parametrize(
    "key",
    [
        "required-plugins.noderesource.dev",
        "required-plugins.noderesource.dev/pod",
        "required-plugins.noderesource.dev/container.app",
    ],
)
def test_required_plugins_by_annotation(key):
    validate(request(annotations={key: "[a]"}))
    with pytest.raises(ValidationError, match='required plugin "gpu" not present'):
        validate(request(annotations={key: "- a\n- gpu\n"}))


def test_container_scoped_annotation_wins():
    ann = {
        "required-plugins.noderesource.dev": "[gpu]",
        "required-plugins.noderesource.dev/container.app": "[a]",
    }
    validate(request(annotations=ann))


def test_invalid_required_annotation_rejects():
    with pytest.raises(
        ValidationError, match="invalid required-plugins.noderesource.dev annotation"
    ):
        validate(request(annotations={"required-plugins.noderesource.dev": "{a: b}"}))


def test_tolerate_missing_annotation():
    opts = {"required_plugins": ["gpu"], "tolerate_missing_annotation": "tolerate.example.com"}
    with pytest.raises(ValidationError):
        validate(request(), **opts)
    validate(request(annotations={"tolerate.example.com": "true"}), **opts)
    validate(request(annotations={"tolerate.example.com/container.app": "1"}), **opts)
    with pytest.raises(ValidationError):
        validate(request(annotations={"tolerate.example.com": "false"}), **opts)
    with pytest.raises(ValidationError, match='invalid tolerate.example.com annotation "maybe"'):
        validate(request(annotations={"tolerate.example.com": "maybe"}), **opts)
    # without a configured key, the annotation means nothing
    with pytest.raises(ValidationError):
        validate(request(annotations={"tolerate.example.com": "true"}), required_plugins=["gpu"])


def test_disabled_validator_accepts_everything():
    cfg = DefaultValidatorConfig(
        enable=False, reject_oci_hook_adjustment=True, required_plugins=["x"]
    )
    DefaultValidator(cfg).validate(request([("10-a", hooks())]))


def test_config_from_yaml_upstream_keys():
    cfg = DefaultValidatorConfig.from_yaml(
        "enable: true\nrejectOCIHookAdjustment: true\nrejectRuntimeDefaultSeccompAdjustment: true\n"
        "rejectUnconfinedSeccompAdjustment: true\nrejectCustomSeccompAdjustment: true\n"
        "rejectNamespaceAdjustment: true\nrejectSysctlAdjustment: true\n"
        "requiredPlugins: [a]\ntolerateMissingPluginsAnnotation: t.io\n"
    )
    assert cfg == DefaultValidatorConfig(True, True, True, True, True, True, True, ["a"], "t.io")
    assert DefaultValidatorConfig.from_dict(
        {"reject_oci_hook_adjustment": True}
    ).reject_oci_hook_adjustment
    assert DefaultValidatorConfig.from_yaml("") == DefaultValidatorConfig()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("rejectHooks: true", "unknown option 'rejectHooks'"),
        ("enable: yes please", "enable must be true or false"),
        ("requiredPlugins: a", "requiredPlugins must be a list"),
        ("[1]", "expected a mapping"),
        ("a: [", "invalid YAML"),
    ],
)
def test_config_errors(text, error):
    with pytest.raises(ValueError, match=error) as info:
        DefaultValidatorConfig.from_yaml(text, source="nri.yaml")
    assert str(info.value).startswith("nri.yaml: ")


def test_validation_result_helper():
    assert validation_result("10-v", pb.ValidateContainerAdjustmentResponse()) is None
    err = validation_result("10-v", pb.ValidateContainerAdjustmentResponse(reject=True))
    assert (
        str(err)
        == 'validator "10-v" rejected container adjustment, reason: unknown rejection reason'
    )
    assert str(ValidationError("plain text")) == "plain text"
