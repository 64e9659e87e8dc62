"""What the runtime launches from its plugin directory, what launched plugins inherit, and
broken drop-in configuration files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import pytest
from _adaptation_helpers import RECORDER, FakeRuntime, config_for, install_plugin

from nri.adaptation._output import log_output

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")


def marker_plugin(plugin_dir: Path, filename: str, marker: Path) -> Path:
    """A plugin that leaves ``marker`` behind if it is ever executed."""
    return install_plugin(
        plugin_dir, filename, f"echo ran >> {marker}\nexec {sys.executable} {RECORDER}"
    )


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refusing to launch" in r.getMessage()]


@pytest.mark.timeout(30)
async def test_untrusted_plugin_files_are_not_launched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    plugins = tmp_path / "plugins"
    marker = tmp_path / "ran"
    install_plugin(plugins, "10-good")
    marker_plugin(plugins, "20-world", marker).chmod(0o777)
    marker_plugin(plugins, "30-group", marker).chmod(0o775)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    marker_plugin(elsewhere, "writable", marker).chmod(0o757)
    (plugins / "40-link-to-writable").symlink_to(elsewhere / "writable")
    open_dir = tmp_path / "open"
    marker_plugin(open_dir, "plugin", marker)
    open_dir.chmod(0o777)  # no sticky bit: anyone could replace the file in it
    (plugins / "50-link-into-open-dir").symlink_to(open_dir / "plugin")
    trusted = install_plugin(elsewhere, "trusted")
    (plugins / "60-good-link").symlink_to(trusted)
    runtime = FakeRuntime()
    async with runtime.adaptation(config_for(tmp_path, disable_connections=True)) as nri:
        assert [i.full_name for i in nri.plugins] == ["10-good", "60-good-link"]
    assert not marker.exists()
    refused = refusals(caplog)
    assert len(refused) == 4, refused
    for name, reason in [
        ("20-world", "writable by group and others (mode 0777)"),
        ("30-group", "writable by group (mode 0775)"),
        ("40-link-to-writable", "writable by others (mode 0757)"),
        ("50-link-into-open-dir", f"{open_dir} is writable by group and others"),
    ]:
        assert any(name in r and reason in r for r in refused), (name, refused)
    assert all("\n" not in r for r in refused)


@needs_root
@pytest.mark.timeout(30)
async def test_plugin_owned_by_another_user_is_not_launched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    marker = tmp_path / "ran"
    os.chown(marker_plugin(plugins, "10-foreign", marker), 65534, 65534)
    async with FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True)) as nri:
        assert nri.plugins == []
    assert not marker.exists()
    assert any("owned by uid 65534" in r for r in refusals(caplog))


@pytest.mark.timeout(30)
async def test_writable_plugin_directory_launches_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    marker = tmp_path / "ran"
    marker_plugin(plugins, "10-fine", marker)
    plugins.chmod(0o777)
    async with FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True)) as nri:
        assert nri.plugins == []
    assert not marker.exists()
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(plugins) in m and "writable by group and others" in m for m in messages)


PROBE = """\
import json, os, sys
fds = []
for fd in range(1024):
    try:
        os.fstat(fd)
    except OSError:
        continue
    fds.append(fd)
links = {str(fd): os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)}
with open(sys.argv[1], "w") as f:
    json.dump([fds, links], f)
print("hello from stdout", flush=True)
print("x" * 20000, file=sys.stderr, flush=True)
sys.stderr.buffer.write(b"bad \\xff byte and an \\x1b[31mescape\\n")
sys.stderr.flush()
os.execv(sys.executable, [sys.executable, sys.argv[2]])
"""


@pytest.mark.timeout(30)
async def test_launched_plugin_gets_no_runtime_fds_and_its_output_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation")
    probe, report = tmp_path / "probe.py", tmp_path / "report"
    probe.write_text(PROBE)
    install_plugin(
        tmp_path / "plugins", "10-probe", f"exec {sys.executable} {probe} {report} {RECORDER}"
    )
    leaked = os.open(os.devnull, os.O_RDONLY)  # inheritable, as fds of an embedding runtime may be
    os.set_inheritable(leaked, True)
    try:
        async with FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True)) as nri:
            assert [i.full_name for i in nri.plugins] == ["10-probe"]
            fds, links = json.loads(report.read_text())
    finally:
        os.close(leaked)
    assert fds == [0, 1, 2, 3]
    assert links["0"] == "/dev/null"
    ours = {os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)}
    assert links["1"].startswith("pipe:") and links["2"].startswith("pipe:")
    assert not {links["1"], links["2"]} & ours
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[10-probe] ")]
    assert "[10-probe] hello from stdout" in lines
    long = [line for line in lines if "xxxx" in line]
    assert len(long) == 1 and len(long[0]) < 5000 and "truncated" in long[0]
    assert r"[10-probe] bad \xff byte and an \x1b[31mescape" in lines


@pytest.mark.timeout(30)
async def test_broken_config_files_only_affect_their_plugin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins, conf = tmp_path / "plugins", tmp_path / "conf.d"
    conf.mkdir()
    for name in ("10-binary", "20-fine", "30-fifo", "40-huge", "50-dir"):
        install_plugin(plugins, name)
    (conf / "10-binary.conf").write_bytes(b"record: \xff\xfe\n")
    (conf / "20-fine.conf").write_text("mode: normal\n")
    os.mkfifo(conf / "30-fifo.conf")  # reading it would block forever
    (conf / "40-huge.conf").write_bytes(b"#" * (5 << 20))
    (conf / "50-dir.conf").mkdir()
    async with FakeRuntime().adaptation(config_for(tmp_path, disable_connections=True)) as nri:
        assert [i.full_name for i in nri.plugins] == ["20-fine"]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    for name, reason in [
        ("10-binary.conf", "not UTF-8"),
        ("30-fifo.conf", "not a regular file"),
        ("40-huge.conf", "larger than"),
        ("50-dir.conf", "Is a directory"),
    ]:
        assert any(str(conf / name) in m and reason in m for m in messages), (name, messages)


async def test_plugin_output_lines_are_bounded_whatever_the_chunks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nri.adaptation.plugin")
    stream = asyncio.StreamReader()
    relay = asyncio.create_task(log_output("10-x", stream, max_line=10))
    for chunk in [b"one\ntw", b"o\r\n", b"a" * 25, b"b" * 25, b"\nthree", b"\n\x00ok\n", b"last"]:
        stream.feed_data(chunk)
        await asyncio.sleep(0)
    stream.feed_eof()
    await relay
    assert [r.getMessage() for r in caplog.records] == [
        "[10-x] one",
        "[10-x] two",
        "[10-x] aaaaaaaaaa ... (line truncated at 10 bytes)",
        "[10-x] three",
        r"[10-x] \x00ok",
        "[10-x] last",
    ]
