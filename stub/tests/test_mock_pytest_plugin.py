"""The ``nri`` pytest plugin, used the way a plugin project uses it: through its entry point.

Each test writes a small test project into pytester's directory and runs pytest on it in a
subprocess; nothing there comes from this repository's conftest.
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from nri.api import Adjustment, Update
from nri.api import api_pb2 as pb
from nri.mock import MockRuntime, SyncMockRuntime
from nri.stub import Plugin

pytest_plugins = ["pytester"]

# A plugin command of the test project: sets the env var named by its pod's annotation.
ANNOTATED_ENV_PLUGIN = """
import sys

from nri.api import Adjustment
from nri.stub import Plugin, run


class AnnotatedEnv(Plugin):
    def create_container(self, pod, container):
        wanted = pod.annotations.get("env.example.com/" + container.name, "")
        if wanted == "fail":
            raise ValueError(f"refusing container {container.name}")
        if not wanted:
            return None
        key, _, value = wanted.partition("=")
        return Adjustment().add_env(key, value)


if __name__ == "__main__":
    sys.exit(run(AnnotatedEnv))
"""

# A plugin command that never registers; it leaves its pid behind for the outer test.
SILENT_PLUGIN = """
import os
import pathlib
import time

pathlib.Path(__file__).with_name("silent.pid").write_text(str(os.getpid()))
time.sleep(60)
"""


def _project(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makepyfile(annotated_env=ANNOTATED_ENV_PLUGIN, silent_plugin=SILENT_PLUGIN)
    pytester.makepyfile(test_project=textwrap.dedent(tests))


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_in_process_plugin_test_is_ten_lines(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import sys
        import threading

        import nri.mock.pytest_plugin
        from nri.api import Adjustment
        from nri.stub import Plugin


        def test_loaded_from_the_entry_point_and_idle(pytestconfig):
            manager = pytestconfig.pluginmanager
            assert manager.get_plugin("nri") is nri.mock.pytest_plugin
            assert "nri" in {dist.project_name for _, dist in manager.list_plugin_distinfo()}
            assert threading.active_count() == 1
            assert "nri.mock._runtime" not in sys.modules


        class Hello(Plugin):
            def create_container(self, pod, container):
                return Adjustment().add_env("HELLO", pod.name)


        def test_hello(nri_runtime):
            nri_runtime.add_plugin(Hello(), name="hello", idx="10")
            pod = nri_runtime.run_pod("web")
            ctr = nri_runtime.create_container(pod, "app")
            assert "HELLO=web" in ctr.spec["process"]["env"]
            assert ctr.adjustment.env[0].key == "HELLO"
            create = nri_runtime.last("CreateContainer")
            assert [(c.field, c.key, c.plugin) for c in create.changes] == [
                ("Env", "HELLO", "10-hello")
            ]
            assert nri_runtime.pods == {pod.id: pod}
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_command_drives_the_lifecycle_and_is_gone_after_teardown(
    pytester: pytest.Pytester,
) -> None:
    _project(
        pytester,
        """
        import pathlib
        import sys

        import psutil

        PLUGIN = pathlib.Path(__file__).with_name("annotated_env.py")


        def test_env_from_annotation(nri_runtime):
            plugin = nri_runtime.launch_plugin(
                [sys.executable, str(PLUGIN), "--name", "env", "--idx", "10"]
            )
            pathlib.Path("plugin.pid").write_text(str(plugin.pid))
            assert [p.full_name for p in nri_runtime.plugins] == ["10-env"]
            pod = nri_runtime.run_pod("web", annotations={"env.example.com/app": "X=1"})
            ctr = nri_runtime.create_container(pod, "app", args=["sleep", "inf"])
            assert "X=1" in ctr.spec["process"]["env"]
            assert ctr.owners == {"Env:X": "10-env"}
            nri_runtime.start_container(ctr)
            nri_runtime.update_container(ctr, {"memory": {"limit": 1 << 30}})
            assert ctr.spec["linux"]["resources"]["memory"]["limit"] == 1 << 30
            nri_runtime.remove_pod(pod)
            assert nri_runtime.containers == {}
            assert [r.event for r in nri_runtime.history if r.error] == []


        def test_teardown_stopped_the_plugin():
            assert psutil.Process().children(recursive=True) == []
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert _gone(int((pytester.path / "plugin.pid").read_text()))


def test_failures_are_reported_with_the_plugin_stderr(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import pathlib
        import sys

        COMMAND = [sys.executable, str(pathlib.Path(__file__).with_name("annotated_env.py"))]


        def test_wrong_expectation(nri_runtime):
            nri_runtime.launch_plugin(COMMAND + ["--name", "env", "--idx", "10"])
            pod = nri_runtime.run_pod("web", annotations={"env.example.com/app": "X=1"})
            ctr = nri_runtime.create_container(pod, "app")
            assert "X=2" in ctr.spec["process"]["env"]


        def test_plugin_error(nri_runtime):
            nri_runtime.launch_plugin(COMMAND + ["--name", "env", "--idx", "10"])
            pod = nri_runtime.run_pod("web", annotations={"env.example.com/app": "fail"})
            nri_runtime.create_container(pod, "app")
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_wrong_expectation _*",
            "E  *AssertionError: assert 'X=2' in *'HOSTNAME=web', 'X=1'*",
            "*- nri plugin * --name env --idx 10 (pid *) stderr -*",
            "*10-env*",
            "*_ test_plugin_error _*",
            "E  * refusing container app*",
            "*- nri plugin * --name env --idx 10 (pid *) stderr -*",
            "*10-env: create_container * failed: refusing container app",
        ]
    )
    # The facade's own frames are hidden from the tracebacks.
    assert "run_coroutine" not in result.stdout.str()


def test_overriding_the_runtime_fixture_keeps_the_plugin_stderr_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        from nri.mock import MockRuntime


        @pytest.fixture
        def nri_mock_runtime():
            return MockRuntime(request_timeout=0.5)
        """
    )
    _project(
        pytester,
        """
        import pathlib
        import sys

        COMMAND = [sys.executable, str(pathlib.Path(__file__).with_name("annotated_env.py"))]


        def test_wrong_expectation(nri_runtime):
            nri_runtime.launch_plugin(COMMAND + ["--name", "env", "--idx", "10"])
            assert nri_runtime.runtime.adaptation.config.request_timeout == 0.5
            assert nri_runtime.plugins == []
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*- nri plugin * --name env --idx 10 (pid *) stderr -*", "*10-env*"]
    )


def test_unused_socket_fails_the_test_that_connects(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import socket


        def test_left_alone(nri_unused_socket):
            assert nri_unused_socket.endswith("nri.sock")


        def test_connected(nri_unused_socket):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(nri_unused_socket)
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*something connected to *nri.sock, which nothing may use*"])


def test_unregistered_plugin_times_out_naming_it(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import pathlib
        import sys


        def test_silent(nri_runtime):
            nri_runtime.launch_plugin(
                [sys.executable, str(pathlib.Path(__file__).with_name("silent_plugin.py"))]
            )
        """,
    )
    pytester.makeini("[pytest]\nnri_registration_timeout = 30\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--nri-registration-timeout=0.5"
    )
    assert time.monotonic() - started < 25  # the command line won over the ini file
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E  *TimeoutError: plugin '*silent_plugin.py' did not register within 0.5s"]
    )
    assert _gone(int((pytester.path / "silent.pid").read_text()))


def test_bad_registration_timeout_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnri_registration_timeout = soon\n")
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini option nri_registration_timeout: expected a number of seconds, got 'soon'"]
    )


def test_async_tests_use_the_mock_runtime_fixture(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import asyncio

        from nri.api import Adjustment
        from nri.stub import Plugin


        class Hello(Plugin):
            def create_container(self, pod, container):
                return Adjustment().add_env("HELLO", "world")


        def test_in_my_own_event_loop(nri_mock_runtime):
            async def scenario():
                async with nri_mock_runtime as runtime:
                    await runtime.add_plugin(Hello(), name="hello", idx="10")
                    ctr = await runtime.create_container(await runtime.run_pod("web"), "app")
                    assert "HELLO=world" in ctr.spec["process"]["env"]
                    assert runtime.adaptation.config.registration_timeout == 3

            asyncio.run(scenario())
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nri-registration-timeout=3")
    result.assert_outcomes(passed=1)


# -- SyncMockRuntime directly ---------------------------------------------------------------


class Sleepy(Plugin):
    """Blocks the event loop it runs in: what an in-process plugin must not do."""

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        time.sleep(0.6)


class Hello(Plugin):
    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        return Adjustment().add_env("HELLO", "world")


def test_blocked_event_loop_fails_the_call_instead_of_hanging() -> None:
    with SyncMockRuntime(MockRuntime(), call_timeout=0.2) as runtime:
        runtime.add_plugin(Sleepy(), name="sleepy", idx="10", timeout=5)
        pod = runtime.run_pod("web")
        with pytest.raises(TimeoutError, match=r"MockRuntime.create_container did not finish"):
            runtime.create_container(pod, "app")
        time.sleep(0.6)  # let the handler return before closing
    assert runtime.containers == {}


def test_unsolicited_updates_through_run_coroutine() -> None:
    with SyncMockRuntime() as runtime:
        stub = runtime.add_plugin(Hello(), name="hello", idx="10")
        ctr = runtime.create_container(runtime.run_pod("web"), "app")
        failed = runtime.run_coroutine(
            stub.update_containers([Update(ctr.id).set_linux_cpu_shares(512)])
        )
        assert failed == []
        assert ctr.spec["linux"]["resources"]["cpu"]["shares"] == 512
        assert runtime.history[-1].event == "UpdateContainers"
        assert runtime.container("app") is ctr
    with pytest.raises(RuntimeError, match="the mock runtime is not running"):
        runtime.run_pod("db")


def test_close_terminates_plugin_commands(tmp_path: Path) -> None:
    script = tmp_path / "annotated_env.py"
    script.write_text(ANNOTATED_ENV_PLUGIN)
    with SyncMockRuntime() as runtime:
        handle = runtime.launch_plugin([sys.executable, str(script), "--idx", "10"])
        assert psutil.Process(handle.pid).is_running()
    assert handle.process.returncode is not None
    assert _gone(handle.pid)


def test_runtime_profiles_from_option_ini_and_parametrize(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_profiles="""
        import pytest


        def test_default(nri_runtime, nri_profile):
            assert nri_runtime.profile.name == nri_profile
            ctr = nri_runtime.create_container(nri_runtime.run_pod("web"), "app")
            print("PROFILE", nri_profile, "pid" if ctr.to_proto().pid else "no-pid")


        @pytest.mark.parametrize("nri_profile", ["cri-o"])
        def test_own_choice(nri_runtime):
            assert nri_runtime.runtime.profile.name == "cri-o"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PROFILE containerd no-pid*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--nri-profile=cri-o")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PROFILE cri-o pid*"])
    # Both: the tests that use the runtime run once per profile (not the one that picks).
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "--nri-profile", "containerd,cri-o"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_default?containerd? PASSED*",
            "*test_default?cri-o? PASSED*",
            "*test_own_choice?cri-o? PASSED*",
        ]
    )
    pytester.makeini("[pytest]\nnri_profile = cri-o\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-k", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PROFILE cri-o pid*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nri-profile=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--nri-profile: unknown runtime profile docker (known: containerd, cri-o)*"]
    )


def test_pytest_plugin_knows_every_profile() -> None:
    from nri.mock import PROFILES
    from nri.mock.pytest_plugin import _PROFILE_NAMES

    assert list(_PROFILE_NAMES) == list(PROFILES)


def test_failure_report_has_the_pre_installed_plugins_output(pytester: pytest.Pytester) -> None:
    plugins = pytester.mkdir("plugins")
    plugin = plugins / "20-env"
    script = pytester.path / "annotated_env.py"
    plugin.write_text(
        f'#!/bin/sh\necho "pre-installed hello" >&2\nexec {sys.executable} {script}\n'
    )
    plugin.chmod(0o755)
    pytester.makeconftest(
        f"""
        import pytest

        from nri.mock import MockRuntime


        @pytest.fixture
        def nri_mock_runtime():
            return MockRuntime(plugin_path={str(plugins)!r})
        """
    )
    _project(
        pytester,
        """
        def test_fails(nri_runtime):
            assert [p.full_name for p in nri_runtime.plugins] == []
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*- nri pre-installed plugin 20-env ({plugin}) output -*",
            "pre-installed hello",
            "*20-env: plugin 20-env started*",
        ]
    )
