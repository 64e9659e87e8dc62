"""pytest fixtures for testing NRI plugins against the mock runtime.

pytest loads this module through the ``pytest11`` entry point of the ``nri`` distribution
(plugin name ``nri``; ``-p no:nri`` turns it off), so a plugin project that depends on
``nri`` has the fixtures without any conftest. Nothing starts until a test asks for one.

``nri_runtime``
    A started :class:`~nri.mock.SyncMockRuntime`: a mock runtime on a temporary socket whose
    event loop runs in a background thread, for plain (synchronous) tests::

        ULIMITS = {"ulimits.noderesource.dev/container.app": "[{type: nofile, hard: 64}]"}


        def test_sets_nofile(nri_runtime):
            nri_runtime.launch_plugin("nri-ulimit-adjuster --idx 10")  # returns once registered
            pod = nri_runtime.run_pod("web", annotations=ULIMITS)
            ctr = nri_runtime.create_container(pod, "app")
            nofile = {"type": "RLIMIT_NOFILE", "hard": 64, "soft": 0}
            assert nofile in ctr.spec["process"]["rlimits"]
            assert nri_runtime.last("CreateContainer").changes[0].plugin == "10-ulimit-adjuster"

    Teardown stops in-process plugins and terminates (or kills) plugin commands.

``nri_mock_runtime``
    The :class:`~nri.mock.MockRuntime` behind ``nri_runtime``, not started: async tests use
    it directly (``async with nri_mock_runtime as runtime:``). Override this fixture in a
    conftest to change runtime options for both, e.g. ``MockRuntime(request_timeout=0.5)``.

``nri_unused_socket``
    The path of a listening unix socket that nothing may connect to: the test fails at
    teardown if something did. For checking that a plugin command rejects bad flags or
    configuration before it connects::

        import subprocess


        def test_bad_flag(nri_unused_socket):
            command = ["nri-ulimit-adjuster", "--socket-path", nri_unused_socket, "--bogus"]
            assert subprocess.run(command).returncode == 2

``nri_plugin_command``
    A factory of :class:`~nri.testing.PluginCommandCheck`: the checks every plugin command
    shares (bad flags and config files, ``--help``, ``--version``, registration), run
    against ``nri_unused_socket`` and with config files under ``tmp_path``::

        import sys
        import textwrap

        HELLO = '''
        from nri.stub import Plugin, PluginCommand

        class Hello(Plugin):
            def create_container(self, pod, container):
                return None

        PluginCommand(name="hello", description="Hi.", plugin=Hello, distribution="nri").main()
        '''

        def test_command_line(nri_plugin_command, nri_runtime, tmp_path):
            (tmp_path / "hello.py").write_text(textwrap.dedent(HELLO))
            command = [sys.executable, str(tmp_path / "hello.py")]
            check = nri_plugin_command(command, name="hello", distribution="nri")
            check.check_bad_flags()
            check.check_bad_config_files(schema=False)
            check.check_registers(nri_runtime)  # as 10-hello, with -idx 10 -socket-path=...

``nri_profile``
    The runtime profile the runtime of ``nri_runtime`` and ``nri_mock_runtime`` behaves as:
    ``containerd`` (default) or ``cri-o`` (see :class:`~nri.mock.RuntimeProfile`). Set it with
    ``--nri-profile`` or the ini option ``nri_profile``; naming both
    (``--nri-profile=containerd,cri-o``) runs every test that uses the runtime once per
    profile. A test can also pick its own::

        import pytest


        @pytest.mark.parametrize("nri_profile", ["containerd", "cri-o"])
        def test_on_both_runtimes(nri_runtime, nri_profile):
            ctr = nri_runtime.create_container(nri_runtime.run_pod("web"), "app")
            # CRI-O fills in the pid at creation already, containerd once it started.
            assert (ctr.to_proto().pid != 0) == (nri_profile == "cri-o")

When a test using ``nri_runtime`` or ``nri_mock_runtime`` fails, the report gets a section
with the stderr of each plugin command it launched. Options:
``--nri-registration-timeout=SECONDS`` or the ini option ``nri_registration_timeout``
(default 10) set how long plugins get to register.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nri.mock._runtime import MockRuntime
    from nri.mock._sync import SyncMockRuntime
    from nri.testing import PluginCommandCheck

__all__ = [
    "DEFAULT_REGISTRATION_TIMEOUT",
    "PROFILE_INI",
    "REGISTRATION_TIMEOUT_INI",
    "nri_mock_runtime",
    "nri_plugin_command",
    "nri_profile",
    "nri_runtime",
    "nri_unused_socket",
]

REGISTRATION_TIMEOUT_INI = "nri_registration_timeout"
"""The ini option with the seconds a plugin gets to register."""

DEFAULT_REGISTRATION_TIMEOUT = 10.0
"""Seconds a plugin gets to register when no option says otherwise."""

PROFILE_INI = "nri_profile"
"""The ini option with the runtime profile(s) of the mock runtime fixtures."""

_PROFILE_NAMES = ("containerd", "cri-o")  # nri.mock.PROFILES, without importing it here
_REGISTRATION_TIMEOUT = pytest.StashKey[float]()
_PROFILES = pytest.StashKey[list[str]]()
_REPORTED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--nri-registration-timeout`` and the ini option ``nri_registration_timeout``."""
    group = parser.getgroup("nri", "NRI plugin tests with the mock runtime")
    group.addoption(
        "--nri-registration-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"seconds a plugin gets to register with nri_runtime (default: ini option "
        f"{REGISTRATION_TIMEOUT_INI}, else {DEFAULT_REGISTRATION_TIMEOUT:g})",
    )
    parser.addini(
        REGISTRATION_TIMEOUT_INI,
        help="seconds a plugin gets to register with the nri_runtime fixture",
        default=str(DEFAULT_REGISTRATION_TIMEOUT),
    )
    group.addoption(
        "--nri-profile",
        default=None,
        metavar="PROFILE[,PROFILE]",
        help=f"the runtime(s) nri_runtime behaves as: {', '.join(_PROFILE_NAMES)}; several: "
        f"each test once per profile (default: ini option {PROFILE_INI}, else containerd)",
    )
    parser.addini(
        PROFILE_INI,
        help="runtime profile(s) of the nri_runtime fixture (comma-separated)",
        default="containerd",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Check the registration timeout options once, before any test runs."""
    value: float | None = config.getoption("nri_registration_timeout")
    source = "--nri-registration-timeout"
    if value is None:
        raw = config.getini(REGISTRATION_TIMEOUT_INI)
        source = f"ini option {REGISTRATION_TIMEOUT_INI}"
        try:
            value = float(raw)
        except ValueError:
            raise pytest.UsageError(
                f"{source}: expected a number of seconds, got {raw!r}"
            ) from None
    if not value > 0:
        raise pytest.UsageError(f"{source}: expected a positive number of seconds, got {value:g}")
    config.stash[_REGISTRATION_TIMEOUT] = value
    raw_profiles: str | None = config.getoption("nri_profile")
    source = "--nri-profile"
    if raw_profiles is None:
        raw_profiles, source = config.getini(PROFILE_INI), f"ini option {PROFILE_INI}"
    profiles = [p.strip() for p in str(raw_profiles).split(",") if p.strip()]
    unknown = [p for p in profiles if p not in _PROFILE_NAMES]
    if unknown or not profiles:
        raise pytest.UsageError(
            f"{source}: unknown runtime profile {', '.join(unknown) or repr(raw_profiles)} "
            f"(known: {', '.join(_PROFILE_NAMES)})"
        )
    config.stash[_PROFILES] = list(dict.fromkeys(profiles))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests that use ``nri_profile`` once per configured profile, if several."""
    profiles = metafunc.config.stash[_PROFILES]
    if "nri_profile" not in metafunc.fixturenames or len(profiles) < 2:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "nri_profile" in names:
            return  # the test picks its own
    metafunc.parametrize("nri_profile", profiles)


@pytest.fixture
def nri_profile(request: pytest.FixtureRequest) -> str:
    """The runtime profile of ``nri_mock_runtime``: ``containerd`` or ``cri-o``."""
    return request.config.stash[_PROFILES][0]


@pytest.fixture
def nri_mock_runtime(request: pytest.FixtureRequest, nri_profile: str) -> Iterator[MockRuntime]:
    """A :class:`~nri.mock.MockRuntime`, not started, with the configured registration timeout
    and runtime profile (``nri_profile``).

    Use it as ``async with nri_mock_runtime as runtime:`` in async tests. Plugin commands it
    launched and that are still running at teardown are killed.
    """
    from nri.mock._runtime import MockRuntime

    runtime = MockRuntime(
        registration_timeout=request.config.stash[_REGISTRATION_TIMEOUT], profile=nri_profile
    )
    yield runtime
    for handle in runtime.processes:
        if handle.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGKILL)


@pytest.fixture
def nri_runtime(nri_mock_runtime: MockRuntime) -> Iterator[SyncMockRuntime]:
    """A started :class:`~nri.mock.SyncMockRuntime` for synchronous tests; closed at teardown."""
    from nri.mock._sync import SyncMockRuntime

    with SyncMockRuntime(nri_mock_runtime) as runtime:
        yield runtime


@pytest.fixture
def nri_unused_socket() -> Iterator[str]:
    """A listening unix socket's path; the test fails if anything connects to it."""
    # Not under tmp_path: unix socket paths are limited to 107 bytes.
    directory = tempfile.TemporaryDirectory(prefix="nri-unused-")
    path = os.path.join(directory.name, "nri.sock")
    with directory, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen()
        listener.setblocking(False)
        yield path
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.close()
        pytest.fail(f"something connected to {path}, which nothing may use")


@pytest.fixture
def nri_plugin_command(nri_unused_socket: str, tmp_path: Path) -> Callable[..., PluginCommandCheck]:
    """Make a :class:`~nri.testing.PluginCommandCheck` of a plugin command:
    ``nri_plugin_command(command, name=..., **options)``."""
    from nri.testing import PluginCommandCheck

    def make(command: str | list[str], *, name: str, **options: Any) -> PluginCommandCheck:
        return PluginCommandCheck(
            command, name=name, socket=nri_unused_socket, workdir=tmp_path, **options
        )

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Attach the plugin commands' stderr to the first failing report of a test."""
    outcome = yield
    runtime = _mock_runtime_of(item)
    if runtime is None or item.stash.get(_REPORTED, False):
        return
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    item.stash[_REPORTED] = True
    for handle in runtime.processes:
        stderr = bytes(handle.stderr).decode("utf-8", "replace").rstrip()
        status = handle.process.returncode
        title = f"nri plugin {shlex.join(handle.command)} (pid {handle.pid}"
        title += ")" if status is None else f", exit status {status})"
        report.sections.append((f"{title} stderr", stderr or "(nothing)"))
    for plugin in runtime.preinstalled:
        output = bytes(plugin.stderr).decode("utf-8", "replace").rstrip()
        title = f"nri pre-installed plugin {plugin.name} ({plugin.path}) output"
        report.sections.append((title, output or "(nothing)"))


def _mock_runtime_of(item: pytest.Item) -> MockRuntime | None:
    # By fixture name, so that a conftest's own nri_mock_runtime is found as well.
    funcargs: dict[str, Any] = getattr(item, "funcargs", None) or {}
    if "nri_mock_runtime" not in funcargs:
        return None
    from nri.mock._runtime import MockRuntime

    runtime = funcargs["nri_mock_runtime"]
    return runtime if isinstance(runtime, MockRuntime) else None
