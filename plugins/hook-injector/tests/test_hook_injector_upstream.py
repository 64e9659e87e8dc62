"""Hook files as containers/common loads them: Go JSON keys, timeout 0, 0.1.0, size bounds."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from nri_hook_injector import HookConfigError, HookInjector, parse_hook
from nri_hook_injector._hooks import MAX_HOOK_FILE_BYTES
from nri_hook_injector._plugin import MAX_INJECTED_BYTES, HookSizeError

from nri.api import api_pb2 as pb
from nri.api import make_hook
from nri.mock import MockRuntime

HOOK = sys.executable


def write(directory: Path, name: str, document: Any) -> Path:
    path = directory / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_keys_in_any_letter_case_like_go() -> None:
    text = json.dumps(
        {
            "Version": "1.0.0",
            "Hook": {"Path": HOOK, "ARGS": ["h"], "Timeout": 0},
            "When": {"Always": True, "HASBINDMOUNTS": True},
            "Stages": ["poststop"],
        }
    )
    config = parse_hook(text, "case.json")
    assert config.stages == ("poststop",)
    assert config.when.always is True and config.when.has_bind_mounts is True
    assert config.hook == make_hook(HOOK, ["h"], [], 0)
    assert config.hook.HasField("timeout") and config.hook.timeout.value == 0


def test_unknown_keys_are_warned_in_any_letter_case(caplog: pytest.LogCaptureFixture) -> None:
    text = json.dumps(
        {
            "version": "1.0.0",
            "HOOK": {"path": HOOK, "colour": 1},
            "When": {"always": True, "sometimes": True},
            "stages": [],
        }
    )
    with caplog.at_level(logging.WARNING, logger="nri.hook_injector"):
        parse_hook(text, "x.json")
    assert "x.json: hook: ignoring unknown key(s) 'colour'" in caplog.text
    assert "x.json: when: ignoring unknown key(s) 'sometimes'" in caplog.text


def test_repeated_keys_take_the_last_value_like_go() -> None:
    text = (
        '{"version": "1.0.0", "hook": {"path": "/nonexistent", "path": ' + json.dumps(HOOK) + "},"
        ' "when": {"always": true}, "stages": ["poststop"], "Stages": ["poststart"]}'
    )
    config = parse_hook(text, "dup.json")
    assert config.hook.path == HOOK and config.stages == ("poststart",)


def test_old_schema_is_loaded_like_containers_common() -> None:
    old = {
        "hook": HOOK,
        "arguments": ["one"],
        "stage": ["prestart"],
        "cmd": ["sleep$"],
        "annotation": ["^gpu$", "^fpga$"],
    }
    config = parse_hook(json.dumps(old), "old.json")
    assert config.hook == make_hook(HOOK, [HOOK, "one"])
    assert config.stages == ("prestart",)
    when = config.when
    # any one condition suffices in 0.1.0
    assert when.matches({"x": "fpga"}, ["/bin/sh"], False)
    assert when.matches({}, ["/bin/sleep"], False)
    assert not when.matches({"x": "cpu"}, ["/bin/sh"], False)
    for bad, problem in (
        ({**old, "stages": ["poststop"]}, "cannot set both 'stage' and 'stages'"),
        ({"stages": ["poststop"], "cmds": ["x"]}, "missing required property: hook"),
        ({"hook": HOOK, "cmds": ["x"]}, "missing required property: stages"),
    ):
        with pytest.raises(HookConfigError, match=problem):
            parse_hook(json.dumps(bad), "old.json")


def test_prestart_is_injected_as_create_runtime(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.json",
        {
            "version": "1.0.0",
            "hook": {"path": HOOK},
            "when": {"always": True},
            "stages": ["prestart", "createRuntime"],
        },
    )
    adjust = HookInjector([str(tmp_path)], poll_interval=0).create_container(
        pb.PodSandbox(name="p"), pb.Container(name="c", args=["sh"])
    )
    assert adjust is not None
    assert adjust.message.hooks == pb.Hooks(create_runtime=[make_hook(HOOK), make_hook(HOOK)])


def test_oversized_and_deep_files_are_skipped_and_the_rest_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"version": "1.0.0", "hook": {"path": HOOK}, "when": {"always": True}}
    write(tmp_path, "good.json", {**good, "stages": ["poststop"]})
    huge = {**good, "hook": {"path": HOOK, "args": ["x" * 1000] * 100}, "stages": ["poststop"]}
    write(tmp_path, "huge.json", huge)
    write(tmp_path, "deep.json", "[" * 50_000)
    (tmp_path / "binary.json").write_bytes(b'{"version": "\xff"}')
    plugin = HookInjector([str(tmp_path)], poll_interval=0)
    with caplog.at_level(logging.ERROR, logger="nri.hook_injector"):
        adjust = plugin.create_container(pb.PodSandbox(name="p"), pb.Container(name="c"))
    assert adjust is not None and list(adjust.message.hooks.poststop) == [make_hook(HOOK)]
    errors = {path.name: reason for path, reason in plugin.manager.errors.items()}
    assert f"too large (over {MAX_HOOK_FILE_BYTES} bytes)" in errors["huge.json"]
    assert "nesting deeper than 16 levels" in errors["deep.json"]
    assert "not valid UTF-8" in errors["binary.json"]
    assert all("\n" not in reason for reason in errors.values())


def test_injected_hooks_are_bounded(tmp_path: Path) -> None:
    args = ["y" * 1000] * 60  # about 60 KB per file, under the file limit
    count = MAX_INJECTED_BYTES // 60_000 + 2
    for i in range(count):
        hook = {"path": HOOK, "args": args}
        document = {"version": "1.0.0", "hook": hook, "when": {"always": True}}
        write(tmp_path, f"{i:03}.json", {**document, "stages": ["poststop"]})
    plugin = HookInjector([str(tmp_path)], poll_interval=0)
    assert len(plugin.manager.hooks) == 0 and plugin.manager.refresh()
    assert len(plugin.manager.hooks) == count
    with pytest.raises(HookSizeError, match=r"p/c: hooks from 000.json, .* add up to \d+ bytes"):
        plugin.create_container(pb.PodSandbox(name="p"), pb.Container(name="c"))


@pytest.mark.timeout(30)
async def test_a_huge_hook_file_does_not_break_creation(tmp_path: Path) -> None:
    hooks_dir = tmp_path / "hooks.d"
    hooks_dir.mkdir()
    good = {"version": "1.0.0", "hook": {"path": HOOK}, "when": {"always": True}}
    write(hooks_dir, "a.json", {**good, "stages": ["poststop"]})
    with open(hooks_dir / "b.json", "w") as file:  # 40 MB, as seen in the wild
        file.write('{"version": "1.0.0", "hook": {"path": ' + json.dumps(HOOK) + ', "args": [')
        file.write('"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",' * 850_000)
        file.write('"x"]}, "when": {"always": true}, "stages": ["poststop"]}')
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        plugin = HookInjector([str(hooks_dir)], poll_interval=0)
        await rt.add_plugin(plugin, name="hook-injector", idx="10")
        pod = await rt.run_pod("p")
        for name in ("c1", "c2"):
            ctr = await rt.create_container(pod, name, args=["sh"])
            assert ctr.spec["hooks"] == {"poststop": [{"path": HOOK}]}
        assert "too large" in plugin.manager.errors[hooks_dir / "b.json"]


def test_readme_example_file() -> None:
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (text,) = re.findall(r"```json\n(.*?)```", readme, re.S)
    config = parse_hook(text, "readme.json", check_path=False)
    assert config.when.matches({}, ["/bin/busybox"], False)
    assert not config.when.matches({}, ["/bin/sh"], False)
    hooks = pb.Hooks()
    config.add_to(hooks)
    expected = make_hook("/usr/local/sbin/nri-demo-hook.sh", ["nri-demo-hook.sh", "x"], ["A=1"], 5)
    assert hooks == pb.Hooks(create_runtime=[expected], poststop=[expected])
