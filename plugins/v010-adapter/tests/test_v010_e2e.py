"""nri-v010-adapter launched by the mock runtime, running v0.1.0 plugin scripts the tests
write, at pod and container start and stop."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nri.adaptation import PluginError
from nri.api import api_pb2 as pb
from nri.api import mask_of
from nri.mock import SyncMockRuntime
from nri.testing import PluginCommandCheck, Rejection

RECORDER = """#!{python}
import json, sys
request = json.load(sys.stdin)
with open({log!r}, "a") as log:
    log.write(json.dumps(request) + "\\n")
fail = (request.get("conf") or {{}}).get("fail", {{}}).get(request["state"])
if fail and fail in request.get("spec", {{}}).get("annotations", {{}}).values():
    print(json.dumps({{"plugin": "recorder", "error": "refusing " + fail}}))
else:
    print(json.dumps({{"plugin": "recorder", "version": request["version"], "error": ""}}))
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "requests.log"
    plugin = bindir / "recorder"
    plugin.write_text(RECORDER.format(python=sys.executable, log=str(log)))
    plugin.chmod(0o755)
    conf = tmp_path / "conf.json"
    conf.write_text(
        json.dumps(
            {
                "version": "0.1",
                "plugins": [
                    {"type": "recorder", "conf": {"fail": {"create": "fail-create"}}},
                    {"type": str(plugin), "conf": {"fail": {"delete": "fail-delete"}}},
                ],
            }
        )
    )
    return conf, bindir, log


def requests(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def launch(runtime: SyncMockRuntime, conf: Path, bindir: Path, *flags: str) -> Any:
    command = [sys.executable, "-m", "nri_v010_adapter", "--v010-config", str(conf),
               "--v010-bin-dir", str(bindir), *flags]  # fmt: skip
    return runtime.launch_plugin(command, idx="00")


def test_lifecycle(nri_runtime: SyncMockRuntime, setup: tuple[Path, Path, Path]) -> None:
    conf, bindir, log = setup
    handle = launch(nri_runtime, conf, bindir)
    assert handle.info.name == "v010-adapter"
    assert handle.info.events == mask_of(
        pb.RUN_POD_SANDBOX, pb.STOP_POD_SANDBOX, pb.START_CONTAINER, pb.STOP_CONTAINER
    )
    pod = nri_runtime.run_pod("web", namespace="ns", labels={"app": "web"}, annotations={"a": "1"})
    assert len(requests(log)) == 2  # both plugins ran
    ctr = nri_runtime.create_container(pod, "app")
    assert len(requests(log)) == 2  # nothing at CreateContainer
    nri_runtime.start_container(ctr)
    nri_runtime.stop_container(ctr)
    nri_runtime.stop_pod(pod)

    runs = requests(log)
    assert [(r["state"], r["id"]) for r in runs] == [
        ("create", pod.id), ("create", pod.id),
        ("create", ctr.id), ("create", ctr.id),
        ("delete", ctr.id), ("delete", ctr.id),
        ("delete", pod.id), ("delete", pod.id),
    ]  # fmt: skip
    first, second = runs[0], runs[1]
    assert first["conf"] == {"fail": {"create": "fail-create"}}
    assert first["version"] == "0.1"
    assert first["sandboxID"] == pod.id
    assert first["labels"] == {"app": "web"}
    assert "results" not in first
    assert second["conf"] == {"fail": {"delete": "fail-delete"}}
    assert second["results"] == [{"plugin": "recorder", "version": "0.1", "error": ""}]
    proto = pod.to_proto()
    assert first.get("pid", 0) == proto.pid
    spec = first["spec"]
    assert spec["annotations"] == dict(proto.annotations) and spec["annotations"]["a"] == "1"
    assert spec.get("namespaces", {}) == {ns.type: ns.path for ns in proto.linux.namespaces}
    assert spec.get("cgroupsPath", "") == proto.linux.cgroups_path
    start = runs[2]
    assert start["sandboxID"] == pod.id
    assert start["labels"] == {"app": "web"}  # the pod's labels, also for containers
    container = ctr.to_proto()
    assert start["spec"]["annotations"] == dict(container.annotations)
    assert start["spec"]["cgroupsPath"] == container.linux.cgroups_path
    assert start["spec"]["namespaces"] == {ns.type: ns.path for ns in container.linux.namespaces}
    assert start["spec"]["resources"] is None or "memory" in start["spec"]["resources"]
    nri_runtime.run_coroutine(handle.wait_for_output("starting container ns/web/app"))


def test_failures(nri_runtime: SyncMockRuntime, setup: tuple[Path, Path, Path]) -> None:
    conf, bindir, log = setup
    launch(nri_runtime, conf, bindir)
    with pytest.raises(PluginError, match="plugin: recorder: refusing fail-create"):
        nri_runtime.run_pod("bad", annotations={"x": "fail-create"})
    pod = nri_runtime.run_pod("ok")
    ctr = nri_runtime.create_container(pod, "c", annotations={"y": "fail-delete"})
    nri_runtime.start_container(ctr)
    nri_runtime.stop_container(ctr)  # a failure at StopContainer is only logged
    assert requests(log)[-1]["state"] == "delete"
    pod2 = nri_runtime.run_pod("gone", annotations={"z": "fail-delete"})
    with pytest.raises(PluginError, match="refusing fail-delete"):
        nri_runtime.stop_pod(pod2)

    conf.write_text("{broken")  # read at every event, as upstream
    with pytest.raises(PluginError, match=f"{conf}: line 1 column 2"):
        nri_runtime.run_pod("later")
    conf.unlink()  # no file: no plugins
    count = len(requests(log))
    nri_runtime.run_pod("fine")
    assert len(requests(log)) == count


def test_bad_config_exits_before_connecting(tmp_path: Path, nri_unused_socket: str) -> None:
    conf = tmp_path / "conf.json"
    conf.write_text('{"plugins": [null]}')
    done = subprocess.run(
        [sys.executable, "-m", "nri_v010_adapter", "--socket", nri_unused_socket,
         "--v010-config", str(conf)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{conf}: plugins[0] must be an object, got null" in done.stderr


@pytest.mark.slow  # many short-lived processes
def test_shared_command_checks(
    nri_plugin_command: Callable[..., PluginCommandCheck],
    nri_runtime: SyncMockRuntime,
    setup: tuple[Path, Path, Path],
) -> None:
    check = nri_plugin_command(
        [sys.executable, "-m", "nri_v010_adapter"], name="v010-adapter", idx="00"
    )
    check.check_help("--v010-config", "--v010-bin-dir", "--invoke-timeout", "--max-output")
    check.check_version()
    check.check_bad_flags()
    check.assert_all_rejected(
        [
            Rejection(["--invoke-timeout", "0"], "must be a positive number of seconds, got 0"),
            Rejection(["-invoke-timeout=inf"], "must be a positive number of seconds, got inf"),
            Rejection(["--max-output", "-1"], "must be a positive number of bytes, got -1"),
            Rejection(["--max-output", "lots"], "not a number of bytes: 'lots'"),
        ]
    )
    conf = setup[0]
    log = check.check_registers(
        nri_runtime, "-socket", nri_runtime.socket_path, "-v010-config", str(conf)
    )
    assert "registering plugin 00-v010-adapter" in log.stderr
