"""Running v0.1.0 plugins: small plugin scripts the tests write, real processes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest
from nri_v010_adapter import (
    InvokeError,
    Invoker,
    V010Config,
    V010Plugin,
    V010Result,
    spec_from_pod,
)

from nri.api import api_pb2 as pb

RECORDER = """#!{python}
import json, os, sys
request = json.load(sys.stdin)
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "request": request}}) + "\\n")
print(json.dumps({{"plugin": {name!r}, "version": request["version"], "error": "",
                  "metadata": {{"seen": str(len(request.get("results", [])))}}}}))
"""


def script(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def recorder(directory: Path, name: str, log: Path) -> Path:
    return script(directory, name, RECORDER.format(python=sys.executable, log=str(log), name=name))


def entries(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def pod() -> pb.PodSandbox:
    return pb.PodSandbox(id="pod-1", name="p", namespace="ns", labels={"app": "x"}, pid=7)


async def invoke(invoker: Invoker, *plugins: V010Plugin) -> list[V010Result]:
    p = pod()
    return await invoker.invoke_all(
        V010Config(version="0.1", plugins=plugins),
        state="create", id=p.id, pid=p.pid, spec=spec_from_pod(p), sandbox_id=p.id,
        labels=p.labels,
    )  # fmt: skip


async def test_plugins_run_in_order_and_see_earlier_results(tmp_path: Path) -> None:
    log = tmp_path / "log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    recorder(bindir, "first", log)  # found in the binary directory
    second = recorder(tmp_path, "second", log)  # by path
    results = await invoke(
        Invoker(str(bindir)), V010Plugin("first", '{"level":3}'), V010Plugin(str(second))
    )
    assert results == [
        V010Result("first", "0.1", "", {"seen": "0"}),
        V010Result("second", "0.1", "", {"seen": "1"}),
    ]
    first_run, second_run = entries(log)
    assert first_run["argv"] == ["invoke"]
    assert first_run["request"] == {
        "conf": {"level": 3}, "version": "0.1", "state": "create", "id": "pod-1",
        "sandboxID": "pod-1", "pid": 7, "spec": {"resources": None}, "labels": {"app": "x"},
    }  # fmt: skip
    request = second_run["request"]
    assert isinstance(request, dict)
    assert "conf" not in request
    assert request["results"] == [
        {"plugin": "first", "version": "0.1", "error": "", "metadata": {"seen": "0"}}
    ]


async def test_path_is_searched_before_the_binary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log"
    (tmp_path / "on-path").mkdir()
    (tmp_path / "bin").mkdir()
    recorder(tmp_path / "on-path", "dup", log)
    script(tmp_path / "bin", "dup", '#!/bin/sh\necho \'{"error": "wrong one"}\'\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'on-path'}:{os.environ['PATH']}")
    assert (await invoke(Invoker(str(tmp_path / "bin")), V010Plugin("dup")))[0].plugin == "dup"


async def test_plugin_sees_path_with_binary_directory(tmp_path: Path) -> None:
    out = tmp_path / "path"
    script(tmp_path, "env", f'#!/bin/sh\nprintf %s "$PATH" > {out}\necho null\n')
    await invoke(Invoker("/opt/elsewhere"), V010Plugin(str(tmp_path / "env")))
    assert out.read_text().endswith(":/opt/elsewhere")


async def test_error_result_stops_the_chain(tmp_path: Path) -> None:
    log = tmp_path / "log"
    bad = script(
        tmp_path, "bad", '#!/bin/sh\nprintf \'%s\' \'{"plugin": "bad", "error": "no\\nway"}\'\n'
    )
    with pytest.raises(InvokeError) as info:
        await invoke(Invoker(), V010Plugin(str(bad)), V010Plugin(str(recorder(tmp_path, "r", log))))
    assert str(info.value) == f"plugin: {bad}: no way"
    assert not log.exists()


async def test_unparsable_output_names_output_and_exit_code(tmp_path: Path) -> None:
    bad = script(tmp_path, "bad", "#!/bin/sh\necho 'oops \"x\"'\nexit 3\n")
    with pytest.raises(InvokeError) as info:
        await invoke(Invoker(), V010Plugin(str(bad)))
    assert str(info.value).startswith(
        f'plugin: {bad}: failed to unmarshal plugin output output: "oops \\"x\\"\\n" '
        "exit code: 3: line 1 column 1"
    )
    empty = script(tmp_path, "empty", "#!/bin/sh\nexit 0\n")
    with pytest.raises(InvokeError, match="output: <empty>: unexpected end of JSON input$"):
        await invoke(Invoker(), V010Plugin(str(empty)))


async def test_nonzero_exit_with_a_result_is_success(tmp_path: Path) -> None:
    # upstream only looks at the exit code when the output does not parse
    odd = script(tmp_path, "odd", '#!/bin/sh\necho \'{"plugin": "odd"}\'\nexit 1\n')
    assert (await invoke(Invoker(), V010Plugin(str(odd))))[0].plugin == "odd"


async def test_missing_and_unrunnable_plugins(tmp_path: Path) -> None:
    with pytest.raises(
        InvokeError, match='^plugin: nope-not-here: exec: "nope-not-here": executable file not'
    ):
        await invoke(Invoker(str(tmp_path)), V010Plugin("nope-not-here"))
    with pytest.raises(InvokeError, match="^plugin: : exec: no command$"):
        await invoke(Invoker(), V010Plugin(""))
    with pytest.raises(InvokeError, match=f"^plugin: {tmp_path}/gone: fork/exec .*no such file"):
        await invoke(Invoker(), V010Plugin(f"{tmp_path}/gone"))
    (tmp_path / "noexec").write_text("#!/bin/sh\n")
    with pytest.raises(InvokeError, match="fork/exec .*noexec: permission denied"):
        await invoke(Invoker(), V010Plugin(str(tmp_path / "noexec")))


@pytest.mark.timeout(20)
async def test_hanging_plugin_and_its_children_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = script(tmp_path, "hang", f"#!/bin/sh\nsleep 300 &\necho $! > {pids}\nexec sleep 300\n")
    started = time.monotonic()
    with pytest.raises(InvokeError, match="killed after running longer than 0.5s"):
        await invoke(Invoker(timeout=0.5), V010Plugin(str(hang)))
    assert time.monotonic() - started < 5
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the plugin's child survived"
        time.sleep(0.05)


@pytest.mark.timeout(20)
async def test_child_keeping_stdout_open_does_not_hang(tmp_path: Path) -> None:
    # the plugin exits, but a background child still holds its stdout
    lingering = script(tmp_path, "linger", "#!/bin/sh\necho null\nsleep 300 &\nexit 0\n")
    with pytest.raises(InvokeError, match="killed after running longer than 0.5s"):
        await invoke(Invoker(timeout=0.5), V010Plugin(str(lingering)))


async def test_flooding_plugin_is_killed(tmp_path: Path) -> None:
    flood = script(
        tmp_path,
        "flood",
        f"#!{sys.executable}\nimport sys\nwhile True: sys.stdout.write('x' * 65536)\n",
    )
    with pytest.raises(InvokeError, match="killed after writing more than 100000 bytes"):
        await invoke(Invoker(max_output=100_000), V010Plugin(str(flood)))


async def test_plugin_not_reading_a_large_request(tmp_path: Path) -> None:
    quick = script(tmp_path, "quick", '#!/bin/sh\necho \'{"plugin": "quick"}\'\n')
    p = pod()
    p.annotations["big"] = "x" * (1 << 20)  # more than a pipe holds
    results = await Invoker().invoke_all(
        V010Config(plugins=(V010Plugin(str(quick)),)),
        state="create", id=p.id, pid=0, spec=spec_from_pod(p),
    )  # fmt: skip
    assert results[0].plugin == "quick"


async def test_long_bad_output_is_quoted_in_part(tmp_path: Path) -> None:
    noisy = script(tmp_path, "noisy", f"#!{sys.executable}\nprint('y' * 5000)\n")
    with pytest.raises(InvokeError) as info:
        await invoke(Invoker(), V010Plugin(str(noisy)))
    assert "(and 4489 more bytes)" in str(info.value)
    assert len(str(info.value)) < 1000


async def test_no_plugins_runs_nothing() -> None:
    assert await invoke(Invoker()) == []
