"""nri.stub helpers shared by plugin commands: LogFile and the deprecated
default_plugin_name."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pytest

from nri.stub import ConfigError, LogFile, default_plugin_name


def test_log_file_switches_between_a_file_and_stderr(tmp_path: Path) -> None:
    logger = logging.getLogger("test.stub.logfile")
    logger.setLevel(logging.INFO)
    out = LogFile(logger)
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    out.switch(str(first))
    assert not logger.propagate
    logger.info("one")
    out.switch(str(first))  # the same file stays open
    out.switch(str(second))
    logger.info("two")
    with pytest.raises(ConfigError, match="cannot open log file"):
        out.switch(str(tmp_path / "missing" / "c.log"))
    logger.info("three")  # the old output stays after a failed switch
    out.switch("")
    assert logger.propagate and not logger.handlers
    assert first.read_text().count("INFO    one") == 1
    assert "two" not in first.read_text()
    assert [line.split()[-1] for line in second.read_text().splitlines()] == ["two", "three"]
    out.close()


@pytest.mark.parametrize(
    ("program", "flag", "env", "expected"),
    [
        ("/x/nri_logger/__main__.py", None, None, "logger"),
        ("/x/nri_logger/__main__.py", "mine", None, "mine"),
        ("/x/nri_logger/__main__.py", None, "from-env", None),
        ("/usr/bin/nri-logger", None, None, None),
    ],
)
def test_default_plugin_name_only_under_python_m(
    monkeypatch: pytest.MonkeyPatch,
    program: str,
    flag: str | None,
    env: str | None,
    expected: str | None,
) -> None:
    monkeypatch.setattr(sys, "argv", [program])
    if env is None:
        monkeypatch.delenv("NRI_PLUGIN_NAME", raising=False)
    else:
        monkeypatch.setenv("NRI_PLUGIN_NAME", env)
    args = argparse.Namespace(name=flag)
    with pytest.deprecated_call():  # PluginCommand defaults the name however it is started
        default_plugin_name(args, "logger")
    assert args.name == (expected if flag is None else flag)
