"""pytest fixtures for testing NRI plugins against the mock runtime.

pytest loads this module through the ``pytest11`` entry point of the ``nri`` distribution
(plugin name ``nri``; ``-p no:nri`` turns it off), so a plugin project that depends on
``nri`` has the fixtures without any conftest. Nothing starts until a test asks for one.

``nri_runtime``
    A started :class:`~nri.mock.SyncMockRuntime`: a mock runtime on a temporary socket whose
    event loop runs in a background thread, for plain (synchronous) tests::

        def test_adds_env(nri_runtime):
            nri_runtime.launch_plugin("nri-my-plugin --idx 10")  # returns once registered
            pod = nri_runtime.run_pod("web", annotations={"my-plugin/env": "X=1"})
            ctr = nri_runtime.create_container(pod, "app")
            assert "X=1" in ctr.spec["process"]["env"]
            assert nri_runtime.history[-2].changes[0].plugin == "10-my-plugin"

    Teardown stops in-process plugins and terminates (or kills) plugin commands.

``nri_mock_runtime``
    The :class:`~nri.mock.MockRuntime` behind ``nri_runtime``, not started: async tests use
    it directly (``async with nri_mock_runtime as runtime:``). Override this fixture in a
    conftest to change runtime options for both, e.g. ``MockRuntime(request_timeout=0.5)``.

``nri_unused_socket``
    The path of a listening unix socket that nothing may connect to: the test fails at
    teardown if something did. For checking that a plugin command rejects bad flags or
    configuration before it connects::

        def test_bad_flag(nri_unused_socket):
            done = subprocess.run(["nri-my-plugin", "--socket-path", nri_unused_socket, "--bogus"])
            assert done.returncode == 2

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
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nri.mock._runtime import MockRuntime
    from nri.mock._sync import SyncMockRuntime

__all__ = [
    "DEFAULT_REGISTRATION_TIMEOUT",
    "REGISTRATION_TIMEOUT_INI",
    "nri_mock_runtime",
    "nri_runtime",
    "nri_unused_socket",
]

REGISTRATION_TIMEOUT_INI = "nri_registration_timeout"
"""The ini option with the seconds a plugin gets to register."""

DEFAULT_REGISTRATION_TIMEOUT = 10.0
"""Seconds a plugin gets to register when no option says otherwise."""

_REGISTRATION_TIMEOUT = pytest.StashKey[float]()
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


@pytest.fixture
def nri_mock_runtime(request: pytest.FixtureRequest) -> Iterator[MockRuntime]:
    """A :class:`~nri.mock.MockRuntime`, not started, with the configured registration timeout.

    Use it as ``async with nri_mock_runtime as runtime:`` in async tests. Plugin commands it
    launched and that are still running at teardown are killed.
    """
    from nri.mock._runtime import MockRuntime

    runtime = MockRuntime(registration_timeout=request.config.stash[_REGISTRATION_TIMEOUT])
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


def _mock_runtime_of(item: pytest.Item) -> MockRuntime | None:
    # By fixture name, so that a conftest's own nri_mock_runtime is found as well.
    funcargs: dict[str, Any] = getattr(item, "funcargs", None) or {}
    if "nri_mock_runtime" not in funcargs:
        return None
    from nri.mock._runtime import MockRuntime

    runtime = funcargs["nri_mock_runtime"]
    return runtime if isinstance(runtime, MockRuntime) else None
