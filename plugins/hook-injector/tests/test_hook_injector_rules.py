"""Hook-file validation, `when` matching rules, stage mapping and the CreateContainer handler."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from nri_hook_injector import HookConfigError, HookInjector, HookMatchError, parse_hook

from nri.api import api_pb2 as pb
from nri.api import make_hook

HOOK = sys.executable  # an executable that surely exists


def doc(when: dict[str, Any], stages: list[str] | None = None, **hook: Any) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "hook": {"path": HOOK, **hook},
        "when": when,
        "stages": stages if stages is not None else ["prestart"],
    }


def matches(
    when: dict[str, Any],
    annotations: dict[str, str] | None = None,
    args: list[str] | None = None,
    bind_mounts: bool = False,
) -> bool:
    config = parse_hook(json.dumps(doc(when)), "t.json")
    return config.when.matches(annotations or {}, args or ["/bin/sh"], bind_mounts)


def test_always() -> None:
    assert matches({"always": True})
    assert not matches({"always": False})


def test_has_bind_mounts() -> None:
    assert matches({"hasBindMounts": True}, bind_mounts=True)
    assert not matches({"hasBindMounts": True}, bind_mounts=False)
    # As upstream: hasBindMounts false is a condition that never matches.
    assert not matches({"hasBindMounts": False}, bind_mounts=False)


def test_annotation_regexes_need_a_pair_matching_key_and_value() -> None:
    when = {"annotations": {r"^com\.example\.department$": ".*fluid-dynamics$"}}
    assert matches(when, {"com.example.department": "r&d-fluid-dynamics"})
    assert not matches(when, {"com.example.department": "fluid-dynamics-2"})
    assert not matches(when, {"com.example.dept": "fluid-dynamics"})
    # The key and the value must match in the same annotation.
    assert not matches(when, {"com.example.department": "x", "other": "fluid-dynamics"})


def test_every_annotation_pattern_must_match() -> None:
    when = {"annotations": {"^a$": "1", "^b$": "2"}}
    assert matches(when, {"a": "1", "b": "2", "c": "3"})
    assert not matches(when, {"a": "1"})


def test_regexes_are_unanchored_searches() -> None:
    assert matches({"annotations": {"gpu": "yes"}}, {"example.com/gpu-wanted": "oh yes"})
    assert matches({"commands": ["busybox"]}, args=["/bin/busybox", "sh"])


def test_commands_match_args0_only() -> None:
    when = {"commands": [".*/init$", ".*/systemd$"]}
    assert matches(when, args=["/usr/lib/systemd/systemd"])
    assert matches(when, args=["/sbin/init", "--foo"])
    assert not matches(when, args=["/bin/sh", "/sbin/init"])


def test_conditions_combine_with_and() -> None:
    when = {"always": True, "annotations": {"^x$": "^1$"}, "hasBindMounts": True}
    assert matches(when, {"x": "1"}, bind_mounts=True)
    assert not matches(when, {"x": "1"}, bind_mounts=False)
    assert not matches(when, {"x": "2"}, bind_mounts=True)
    assert not matches({**when, "always": False}, {"x": "1"}, bind_mounts=True)


def test_commands_decide_after_the_other_conditions() -> None:
    when = {"annotations": {"^x$": "1"}, "commands": ["sh$"]}
    assert matches(when, {"x": "1"}, args=["/bin/sh"])
    assert not matches(when, {"x": "1"}, args=["/bin/true"])
    assert not matches(when, {"x": "0"}, args=["/bin/sh"])


def test_commands_with_no_args_is_an_error() -> None:
    config = parse_hook(json.dumps(doc({"commands": ["sh"]})), "t.json")
    with pytest.raises(HookMatchError, match="no args"):
        config.when.matches({}, [], False)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version="2.0"), "unsupported hook version '2.0'"),
        (lambda d: d.update(version=1), "version: cannot unmarshal number 1 into string"),
        # 0.1.0 (or no version) reads "hook" as the path
        (lambda d: d.update(version="0.1.0"), "hook: cannot unmarshal object into string"),
        (lambda d: d.pop("version"), "hook: cannot unmarshal object into string"),
        (lambda d: d.pop("hook"), "hook.path: missing required property"),
        (lambda d: d["hook"].update(path="bin/true"), "'bin/true' must be an absolute path"),
        (lambda d: d["hook"].pop("path"), "hook.path: missing required property"),
        (lambda d: d["hook"].update(path="/nonexistent/hook"), "hook.path: /nonexistent/hook"),
        (lambda d: d["hook"].update(args="x"), "hook.args: cannot unmarshal string into []"),
        (lambda d: d["hook"].update(env=[1]), "hook.env[0]: cannot unmarshal number 1 into"),
        (lambda d: d["hook"].update(timeout=-1), "hook.timeout: must not be negative"),
        (lambda d: d["hook"].update(timeout="5"), "hook.timeout: cannot unmarshal string"),
        (lambda d: d["hook"].update(timeout=1.0), "hook.timeout: cannot unmarshal number 1.0"),
        (lambda d: d.pop("when"), "when: at least one condition must be set"),
        (lambda d: d.update(when={}), "when: at least one condition must be set"),
        (lambda d: d.update(when={"always": "yes"}), "when.always: cannot unmarshal string"),
        (lambda d: d.update(when={"commands": ["("]}), "when.commands[0]: invalid regex '('"),
        (
            lambda d: d.update(when={"annotations": {"[": "x"}}),
            "when.annotations key: invalid regex '['",
        ),
        (
            lambda d: d.update(when={"annotations": {"k": "*"}}),
            "when.annotations['k']: invalid regex '*'",
        ),
        (lambda d: d.pop("stages"), "stages: missing required property"),
        (lambda d: d.update(stages=["prestart", "later"]), "unknown stage 'later'"),
        (lambda d: d.update(stages="prestart"), "stages: cannot unmarshal string into []"),
        (lambda d: d.update(stages=None), "stages: missing required property"),
    ],
)
def test_invalid_files_are_rejected_with_a_specific_reason(mutate: Any, message: str) -> None:
    document = doc({"always": True})
    mutate(document)
    with pytest.raises(HookConfigError) as info:
        parse_hook(json.dumps(document), "/hooks/bad.json")
    assert str(info.value).startswith("/hooks/bad.json: ")
    assert message in str(info.value)


def test_bad_json_names_the_file_and_position() -> None:
    with pytest.raises(HookConfigError, match=r"^x\.json: invalid JSON: .*line 1 column"):
        parse_hook('{"version": "1.0.0",', "x.json")
    with pytest.raises(HookConfigError, match="expected a JSON object, got list"):
        parse_hook("[]", "x.json")


def test_unknown_keys_are_warned_about_not_rejected(caplog: pytest.LogCaptureFixture) -> None:
    document = doc({"always": True, "annotation": {"a": "b"}})
    with caplog.at_level(logging.WARNING, logger="nri.hook_injector"):
        parse_hook(json.dumps(document), "x.json")
    assert "x.json: when: ignoring unknown key(s) 'annotation'" in caplog.text


def test_stage_mapping_to_nri_hooks_fields() -> None:
    stages = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    config = parse_hook(
        json.dumps(doc({"always": True}, stages, args=["h", "1"], env=["A=1"], timeout=7)),
        "all.json",
    )
    hooks = pb.Hooks()
    config.add_to(hooks)
    expected = make_hook(HOOK, ["h", "1"], ["A=1"], 7)
    assert list(hooks.prestart) == []  # prestart is createRuntime, as in containers/common
    assert list(hooks.create_runtime) == [expected, expected]
    for field in (
        "create_container",
        "start_container",
        "poststart",
        "poststop",
    ):
        assert list(getattr(hooks, field)) == [expected]
    assert expected.timeout.value == 7


def write(directory: Path, name: str, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(document))
    return path


def container(
    args: list[str], annotations: dict[str, str] | None = None, mounts: int = 0
) -> pb.Container:
    ctr = pb.Container(id="c1", name="ctr", args=args, annotations=annotations or {})
    for i in range(mounts):
        ctr.mounts.add(destination=f"/m{i}", source=f"/src{i}", type="bind")
    return ctr


def test_handler_injects_matching_hooks_in_file_name_order(tmp_path: Path) -> None:
    write(tmp_path, "b-second.json", doc({"always": True}, ["prestart"], args=["b"]))
    write(tmp_path, "A-first.json", doc({"always": True}, ["prestart", "poststop"], args=["a"]))
    write(tmp_path, "c-mounts.json", doc({"hasBindMounts": True}, ["poststart"], args=["c"]))
    write(tmp_path, "d-busybox.json", doc({"commands": ["busybox$"]}, ["createRuntime"]))
    plugin = HookInjector([str(tmp_path)], poll_interval=0)
    pod = pb.PodSandbox(name="pod")

    adjust = plugin.create_container(pod, container(["/bin/busybox"], mounts=1))
    assert adjust is not None
    a, b, c, d = (
        make_hook(HOOK, ["a"]),
        make_hook(HOOK, ["b"]),
        make_hook(HOOK, ["c"]),
        make_hook(HOOK),
    )
    assert adjust.message == pb.ContainerAdjustment(
        hooks=pb.Hooks(create_runtime=[a, b, d], poststop=[a], poststart=[c])
    )

    adjust = plugin.create_container(pod, container(["/bin/sh"]))
    assert adjust is not None
    assert adjust.message == pb.ContainerAdjustment(
        hooks=pb.Hooks(create_runtime=[a, b], poststop=[a])
    )


def test_handler_uses_pod_and_container_annotations(tmp_path: Path) -> None:
    write(tmp_path, "gpu.json", doc({"annotations": {"^gpu$": "^yes$"}}))
    plugin = HookInjector([str(tmp_path)], poll_interval=0)
    assert plugin.create_container(pb.PodSandbox(), container(["x"])) is None
    assert plugin.create_container(pb.PodSandbox(), container(["x"], {"gpu": "yes"})) is not None
    pod = pb.PodSandbox(annotations={"gpu": "yes"})
    assert plugin.create_container(pod, container(["x"])) is not None
    # Pod annotations override the container's for the same key.
    pod = pb.PodSandbox(annotations={"gpu": "no"})
    assert plugin.create_container(pod, container(["x"], {"gpu": "yes"})) is None


def test_handler_returns_none_without_hook_files(tmp_path: Path) -> None:
    plugin = HookInjector([str(tmp_path / "missing")], poll_interval=0)
    assert plugin.create_container(pb.PodSandbox(), container(["/bin/sh"])) is None


def test_handler_fails_the_request_for_commands_without_args(tmp_path: Path) -> None:
    write(tmp_path, "cmd.json", doc({"commands": ["sh"]}))
    plugin = HookInjector([str(tmp_path)], poll_interval=0)
    with pytest.raises(HookMatchError, match="matching hook 'cmd.json': .*no args"):
        plugin.create_container(pb.PodSandbox(), container([]))
