"""Running v0.1.0 plugins: ``TYPE invoke``, the request on stdin, the result from stdout.

A plugin is hostile: its output is read up to a limit, each run has a time limit, and a
plugin that overruns either is killed with its whole process group. Its stderr goes to
ours, as upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nri.adaptation import go_quote
from nri.stub import RequestError
from nri_v010_adapter._v010 import (
    DEFAULT_BINARY_PATH,
    V010Config,
    V010Result,
    V010ResultError,
    V010Spec,
    build_request,
    parse_result,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_TIMEOUT",
    "InvokeError",
    "Invoker",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds one plugin run may take (upstream waits forever)."""
DEFAULT_MAX_OUTPUT = 1 << 20
"""Bytes of stdout one plugin run may write (upstream reads any amount)."""
_QUOTED_OUTPUT = 512
"""Bytes of a bad output quoted in the error."""


class InvokeError(RequestError):
    """A plugin failed: ``plugin: TYPE: reason`` as upstream words it, on one line."""


class _TooMuchOutput(Exception):
    pass


def _quoted(output: bytes) -> str:
    if not output:
        return "output: <empty>"
    text = go_quote(output[:_QUOTED_OUTPUT].decode("utf-8", "replace"))
    more = len(output) - _QUOTED_OUTPUT
    return f"output: {text}" + (f" (and {more} more bytes)" if more > 0 else "")


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Invoker:
    """Runs the configured plugins of one event in order, as the v0.1.0 client does."""

    binary_path: str = DEFAULT_BINARY_PATH
    """Directory appended to ``$PATH`` for finding plugin binaries."""
    timeout: float = DEFAULT_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The plugins' environment: ours with the binary directory appended to PATH."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{env.get('PATH', '')}:{self.binary_path}"
        return env

    def find(self, name: str, env: Mapping[str, str]) -> str:
        """The path of plugin ``name`` (Go's ``exec.LookPath``); raises InvokeError."""
        if not name:
            raise InvokeError("exec: no command")
        if "/" in name:
            return name
        found = shutil.which(name, path=env.get("PATH", ""))
        if found is None:
            raise InvokeError(f"exec: {go_quote(name)}: executable file not found in $PATH")
        if not os.path.isabs(found):
            raise InvokeError(
                f"exec: {go_quote(name)}: cannot run executable found relative to current directory"
            )
        return found

    async def invoke_all(
        self,
        config: V010Config,
        *,
        state: str,
        id: str,
        pid: int,
        spec: V010Spec,
        sandbox_id: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> list[V010Result]:
        """Run every configured plugin; each sees the results of those before it.

        Raises InvokeError (``plugin: TYPE: ...``) at the first failure, as upstream.
        """
        results: list[V010Result] = []
        if not config.plugins:
            return results
        env = self.environment()
        for plugin in config.plugins:
            request = build_request(
                version=config.version,
                state=state,
                id=id,
                pid=pid,
                spec=spec,
                sandbox_id=sandbox_id,
                labels=labels,
                results=results,
                conf=plugin.conf,
            )
            try:
                results.append(await self.invoke(plugin.type, request.encode(), env))
            except InvokeError as exc:
                raise InvokeError(f"plugin: {plugin.type}: {exc}") from None
        return results

    async def invoke(self, name: str, payload: bytes, env: Mapping[str, str]) -> V010Result:
        """Run one plugin with ``payload`` on stdin; its result, or InvokeError."""
        path = self.find(name, env)
        output, status = await self.run([path, "invoke"], payload, env)
        message = _quoted(output)
        if status != 0:
            message += f" exit code: {status}"
        try:
            result = parse_result(output)
        except V010ResultError as exc:
            raise InvokeError(f"failed to unmarshal plugin output {message}: {exc}") from None
        if result.error:
            raise InvokeError(" ".join(result.error.splitlines()))
        return result

    async def run(
        self, argv: Sequence[str], payload: bytes, env: Mapping[str, str]
    ) -> tuple[bytes, int]:
        """Run ``argv`` with ``payload`` on stdin: its stdout and exit status (Go's
        ``ExitCode``: -1 when killed by a signal). Raises InvokeError."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=dict(env),
                start_new_session=True,
            )
        except OSError as exc:
            raise InvokeError(
                f"fork/exec {argv[0]}: {(exc.strerror or str(exc)).lower()}"
            ) from None
        done = False
        try:
            async with asyncio.timeout(self.timeout):
                feeder = asyncio.ensure_future(self._feed(process, payload))
                try:
                    output = await self._collect(process)
                    status = await process.wait()
                finally:
                    feeder.cancel()
                    await asyncio.gather(feeder, return_exceptions=True)
            done = True
        except TimeoutError:
            raise InvokeError(f"killed after running longer than {self.timeout:g}s") from None
        except _TooMuchOutput:
            raise InvokeError(f"killed after writing more than {self.max_output} bytes") from None
        finally:
            if not done:
                await self._abandon(process)
        return output, status if status >= 0 else -1

    @staticmethod
    async def _abandon(process: asyncio.subprocess.Process) -> None:
        # The group may outlive its leader (a child holding stdout): kill all of it, then
        # close our ends of the pipes even if something outside the group still has them.
        # Close before waiting: wait() also waits for stdout to reach EOF, which a pipe whose
        # reading was paused (a flood) never reports.
        _kill_group(process)
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            async with asyncio.timeout(5):
                await process.wait()

    @staticmethod
    async def _feed(process: asyncio.subprocess.Process, payload: bytes) -> None:
        stdin = process.stdin
        assert stdin is not None
        # a plugin that exits without reading its request is not an error (neither in Go)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(payload)
            await stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()

    async def _collect(self, process: asyncio.subprocess.Process) -> bytes:
        stdout = process.stdout
        assert stdout is not None
        output = bytearray()
        while chunk := await stdout.read(1 << 16):
            output += chunk
            if len(output) > self.max_output:
                raise _TooMuchOutput
        return bytes(output)
