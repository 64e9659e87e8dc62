"""Hook directories: precedence, reload on add/change/remove, broken files reported and skipped."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from nri_hook_injector import HookInjector, HookManager

from nri.api import api_pb2 as pb

HOOK = sys.executable


def write(directory: Path, name: str, args: list[str], **extra: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "version": "1.0.0",
        "hook": {"path": HOOK, "args": args},
        "when": {"always": True},
        "stages": ["prestart"],
        **extra,
    }
    path = directory / name
    path.write_text(json.dumps(document))
    return path


def injected(manager: HookManager) -> list[list[str]]:
    return [list(h.hook.args) for h in manager.matching({}, ["/bin/sh"], False)]


def test_later_directory_masks_same_file_name(tmp_path: Path) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    write(usr, "01-a.json", ["usr-a"])
    write(usr, "02-b.json", ["usr-b"])
    write(etc, "02-b.json", ["etc-b"])
    write(etc, "03-c.json", ["etc-c"])
    manager = HookManager([usr, etc])
    assert manager.refresh()
    assert injected(manager) == [["usr-a"], ["etc-b"], ["etc-c"]]
    assert [str(h.source) for h in manager.hooks][1] == str(etc / "02-b.json")


def test_injection_order_ignores_case(tmp_path: Path) -> None:
    write(tmp_path, "02-another.json", ["2"])
    write(tmp_path, "01-UPPER.json", ["1U"])
    write(tmp_path, "01-my-hook.json", ["1m"])
    manager = HookManager([tmp_path])
    manager.refresh()
    assert injected(manager) == [["1m"], ["1U"], ["2"]]


def test_non_json_files_and_subdirectories_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "hook.json", ["ok"])
    (tmp_path / "README").write_text("not a hook")
    (tmp_path / "old.json.bak").write_text("{")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    manager = HookManager([tmp_path])
    manager.refresh()
    assert injected(manager) == [["ok"]]
    assert manager.errors == {}


def test_reload_after_add_change_remove(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    manager = HookManager([usr, etc])
    assert not manager.refresh()
    assert injected(manager) == []

    write(usr, "hook.json", ["v1"])
    assert manager.refresh()
    assert injected(manager) == [["v1"]]
    assert not manager.refresh()  # nothing changed: nothing reread

    write(usr, "hook.json", ["v2-longer"])
    assert manager.refresh()
    assert injected(manager) == [["v2-longer"]]

    override = write(etc, "hook.json", ["etc"])
    assert manager.refresh()
    assert injected(manager) == [["etc"]]
    write(usr, "hook.json", ["v3-ignored-while-masked"])
    manager.refresh()
    assert injected(manager) == [["etc"]]

    override.unlink()
    with caplog.at_level(logging.INFO, logger="nri.hook_injector"):
        assert manager.refresh()
    assert injected(manager) == [["v3-ignored-while-masked"]]
    assert f"reloaded hook file {usr / 'hook.json'}" in caplog.text

    (usr / "hook.json").unlink()
    assert manager.refresh()
    assert injected(manager) == []


def test_same_size_rewrite_is_noticed(tmp_path: Path) -> None:
    path = write(tmp_path, "hook.json", ["aaa"])
    manager = HookManager([tmp_path])
    manager.refresh()
    before = os.stat(path)
    write(tmp_path, "hook.json", ["bbb"])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert manager.refresh()
    assert injected(manager) == [["bbb"]]


def test_broken_files_are_reported_once_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "01-good.json", ["good"])
    (tmp_path / "02-bad-json.json").write_text('{"version": "1.0.0", ')
    write(tmp_path, "03-bad-regex.json", ["x"], when={"commands": ["a(b"]})
    write(tmp_path, "04-bad-version.json", ["x"], version="2.0")
    manager = HookManager([tmp_path])
    with caplog.at_level(logging.ERROR, logger="nri.hook_injector"):
        manager.refresh()
    assert injected(manager) == [["good"]]
    errors = {path.name: reason for path, reason in manager.errors.items()}
    assert sorted(errors) == ["02-bad-json.json", "03-bad-regex.json", "04-bad-version.json"]
    assert "invalid JSON" in errors["02-bad-json.json"]
    assert "when.commands[0]: invalid regex 'a(b'" in errors["03-bad-regex.json"]
    assert "unsupported hook version '2.0'" in errors["04-bad-version.json"]
    for name in errors:
        assert f"skipping broken hook file {tmp_path / name}: " in caplog.text

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="nri.hook_injector"):
        manager.refresh()
    assert caplog.text == ""  # unchanged broken files are not reported again

    write(tmp_path, "03-bad-regex.json", ["fixed"])
    manager.refresh()
    assert injected(manager) == [["good"], ["fixed"]]


def test_broken_override_masks_the_lower_file(tmp_path: Path) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    write(usr, "hook.json", ["usr"])
    etc.mkdir()
    (etc / "hook.json").write_text("not json")
    manager = HookManager([usr, etc])
    manager.refresh()
    assert injected(manager) == []
    assert list(manager.errors) == [etc / "hook.json"]


def test_plugin_rescans_before_each_create_container(tmp_path: Path) -> None:
    plugin = HookInjector([str(tmp_path)], poll_interval=0)
    ctr = pb.Container(id="c", name="c", args=["/bin/sh"])
    assert plugin.create_container(pb.PodSandbox(), ctr) is None
    write(tmp_path, "late.json", ["late"])
    adjust = plugin.create_container(pb.PodSandbox(), ctr)
    assert adjust is not None
    assert [list(h.args) for h in adjust.message.hooks.create_runtime] == [["late"]]


@pytest.mark.timeout(10)
async def test_background_poll_reports_broken_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = HookInjector([str(tmp_path)], poll_interval=0.05)
    await plugin.configure("", "test", "1")
    try:
        with caplog.at_level(logging.ERROR, logger="nri.hook_injector"):
            (tmp_path / "late.json").write_text("{oops")
            for _ in range(400):  # bounded; the test's time limit is the real guard
                if plugin.manager.errors:
                    break
                await asyncio.sleep(0.02)
        assert f"skipping broken hook file {tmp_path / 'late.json'}: " in caplog.text
    finally:
        plugin.stop_polling()


async def test_configure_takes_hook_dirs_from_the_configuration(tmp_path: Path) -> None:
    write(tmp_path / "a", "a.json", ["a"])
    write(tmp_path / "b", "b.json", ["b"])
    plugin = HookInjector(poll_interval=0)
    await plugin.configure(f"hookDirs: [{tmp_path / 'a'}]\npollInterval: 0\n", "test", "1")
    assert [h.name for h in plugin.manager.hooks] == ["a.json"]
    # --hook-dirs wins over the configuration.
    fixed = HookInjector([str(tmp_path / "b")], poll_interval=0)
    await fixed.configure(f"hookDirs: [{tmp_path / 'a'}]\n", "test", "1")
    assert [h.name for h in fixed.manager.hooks] == ["b.json"]


async def test_configure_rejects_bad_configuration() -> None:
    plugin = HookInjector(poll_interval=0)
    with pytest.raises(ValueError, match="hookDirs: expected a list"):
        await plugin.configure("hookDirs: /etc/x\n", "test", "1")
    with pytest.raises(ValueError, match="pollInterval: must be >= 0"):
        await plugin.configure("pollInterval: -1\n", "test", "1")
