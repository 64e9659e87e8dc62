"""Checks of a plugin command's command line, shared by the tests of every plugin.

A plugin built on :class:`~nri.stub.PluginCommand` inherits its flags, configuration file
handling and exit statuses; :class:`PluginCommandCheck` runs the command as a process and
checks that it behaves as every plugin command must. The ``nri_plugin_command`` fixture of
the pytest plugin makes one (with a socket that nothing may connect to)::

    def test_command_line(nri_plugin_command):
        check = nri_plugin_command("nri-my-plugin", name="my-plugin")
        check.check_help("--verbose")
        check.check_version()
        check.check_bad_flags()
        check.check_bad_config_files(wrong_type=("verbose: maybe", "verbose: expected bool"))

    def test_registers(nri_plugin_command, nri_runtime):
        nri_plugin_command("nri-my-plugin", name="my-plugin").check_registers(nri_runtime)
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nri.adaptation import PluginInfo

__all__ = ["PluginCommandCheck", "Registration", "Rejection"]


class ListeningRuntime(Protocol):
    """What :meth:`PluginCommandCheck.check_registers` needs of a runtime: a
    :class:`~nri.mock.SyncMockRuntime`, for one."""

    @property
    def socket_path(self) -> str:
        """The socket external plugins dial."""
        ...

    @property
    def plugins(self) -> list[PluginInfo]:
        """The registered plugins."""
        ...

    def wait_for_plugins(
        self, count: int | None = None, names: Iterable[str] = (), *, timeout: float = 10.0
    ) -> list[PluginInfo]:
        """Wait until ``count`` plugins and all ``names`` are registered."""
        ...


@dataclass(frozen=True)
class Rejection:
    """One bad command line: ``args`` (and a config file with ``config``) make the command
    exit 2 with ``message`` in its one-line error."""

    args: Sequence[str] = ()
    message: str = ""
    config: str | bytes | None = None


@dataclass(frozen=True)
class Registration:
    """What :meth:`PluginCommandCheck.check_registers` saw."""

    plugins: list[PluginInfo]
    """The plugin as the runtime registered it (one per index)."""
    stderr: str
    """Everything the command wrote to stderr until it stopped."""


@dataclass
class PluginCommandCheck:
    """Run a plugin command as a process and check the behaviour every plugin command shares.

    ``command`` starts it (``"nri-my-plugin"``, or ``[sys.executable, "-m", "nri_my_plugin"]``);
    ``name`` is the plugin's own name, ``prog`` the program name its errors start with
    (``nri-<name>``), ``distribution`` what ``--version`` reports (``nri-<name>``).
    ``socket`` is a socket path given to every run that does not pass its own, ``workdir`` a
    directory for config files. ``idx`` is added to runs without an index (None for a
    command that registers at several indices by itself).
    """

    command: str | Sequence[str]
    name: str
    socket: str
    workdir: Path
    prog: str | None = None
    distribution: str | None = None
    idx: str | None = "10"
    env: Mapping[str, str] | None = None
    timeout: float = 30.0
    _files: int = field(default=0, init=False, repr=False)

    @property
    def argv(self) -> list[str]:
        """The command as a list."""
        if isinstance(self.command, str):
            return shlex.split(self.command)
        return list(self.command)

    @property
    def program(self) -> str:
        """The program name that starts its error messages."""
        return self.prog or f"nri-{self.name}"

    def environment(self) -> dict[str, str]:
        """This process's environment without ``NRI_*`` variables, plus ``env``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("NRI_")}
        return {**base, **(self.env or {})}

    def config_file(self, content: str | bytes) -> Path:
        """A new file in ``workdir`` holding ``content``."""
        self._files += 1
        path = self.workdir / f"config-{self._files}.yaml"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def _full_args(self, args: Sequence[str]) -> list[str]:
        extra = list(args)
        names = {a.lstrip("-").split("=", 1)[0] for a in extra if a.startswith("-")}
        if not names & {"socket-path", "socket"}:
            extra = ["--socket-path", self.socket, *extra]
        if self.idx is not None and "idx" not in names:
            extra = ["--idx", self.idx, *extra]
        return extra

    def run(
        self, *args: str, config: str | bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the command with ``args`` (plus socket and index, plus ``--config`` holding
        ``config``) to its end; stdin is closed."""
        extra = list(args)
        if config is not None:
            extra += ["--config", str(self.config_file(config))]
        return subprocess.run(
            [*self.argv, *self._full_args(extra)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            env=self.environment(),
            check=False,
        )

    def assert_rejects(self, *args: str, message: str, config: str | bytes | None = None) -> str:
        """Check that the command exits 2 with one error line ``prog: error: ...`` containing
        ``message`` (argparse's usage lines may precede it), without a traceback; returns
        that line."""
        done = self.run(*args, config=config)
        return self._rejected(done, Rejection(args, message, config))

    def _rejected(self, done: subprocess.CompletedProcess[str], case: Rejection) -> str:
        what = f"{shlex.join(case.args)}" + (" with a config file" if case.config else "")
        lines = done.stderr.rstrip("\n").splitlines()
        assert done.returncode == 2, f"{what}: exit status {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{what}: traceback\n{done.stderr}"
        assert lines, f"{what}: nothing on stderr"
        last = lines[-1]
        prefix = f"{self.program}: error: "
        assert last.startswith(prefix), f"{what}: error line not {prefix!r}...\n{done.stderr}"
        if not last.startswith(prefix + "argument ") and "unrecognized" not in last:
            assert len(lines) == 1, f"{what}: more than one line\n{done.stderr}"
        assert case.message in last, f"{what}: {case.message!r} not in {last!r}"
        return last

    def assert_all_rejected(self, cases: Iterable[Rejection]) -> list[str]:
        """:meth:`assert_rejects` for each case, a few processes at a time."""
        cases = list(cases)
        argv = [  # config files written here, not by the threads
            [*c.args, *(() if c.config is None else ("--config", str(self.config_file(c.config))))]
            for c in cases
        ]
        with ThreadPoolExecutor(max_workers=4) as pool:
            runs = list(pool.map(lambda args: self.run(*args), argv))
        return [self._rejected(done, case) for done, case in zip(runs, cases, strict=True)]

    def check_help(self, *flags: str) -> str:
        """``--help`` (and Go's ``-help``) exits 0 listing the shared flags and ``flags``."""
        for spelling in ("--help", "-help"):
            done = subprocess.run(
                [*self.argv, spelling],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=self.environment(),
                check=False,
            )
            assert done.returncode == 0, f"{spelling}: exit status {done.returncode}"
            shared = ("--name", "--idx", "--socket-path", "--config", "--log-level")
            for flag in (*shared, "--log-format", "--reconnect", "--version", *flags):
                assert flag in done.stdout, f"{spelling}: {flag} missing\n{done.stdout}"
        return done.stdout

    def check_version(self) -> str:
        """``--version`` exits 0 printing the distribution's and nri's versions."""
        from importlib.metadata import version

        done = subprocess.run(
            [*self.argv, "--version"],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            env=self.environment(),
            check=False,
        )
        distribution = self.distribution or f"nri-{self.name}"
        expected = f"nri {version('nri')}"
        if distribution != "nri":
            expected = f"{distribution} {version(distribution)} ({expected})"
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected, f"{done.stdout!r} != {expected!r}"
        return expected

    def bad_flags(self) -> list[Rejection]:
        """The bad command lines every plugin command refuses (upstream spellings among
        them), each before connecting."""
        cases = [
            Rejection(["-no-such-flag=1"], "unrecognized arguments: -no-such-flag=1"),
            Rejection(["--name", ""], "name is empty"),
            Rejection(["-name=bad name"], "invalid character ' '"),
            Rejection(["-log-level", "loud"], "unknown log level 'loud'"),
            Rejection(["--log-format=xml"], "invalid choice: 'xml'"),
            Rejection(["-reconnect=maybe"], "expected true or false, got 'maybe'"),
        ]
        if self.idx is not None:
            cases += [
                Rejection(["-idx", "7"], "invalid plugin index '7'"),
                Rejection(["-name", "10-foo", "-idx", "10"], "starts with an index"),
            ]
        return cases

    def check_bad_flags(self, *extra: Rejection) -> None:
        """Every case of :meth:`bad_flags` and ``extra`` exits 2 with its one-line error."""
        self.assert_all_rejected([*self.bad_flags(), *extra])

    def bad_config_files(self, *, schema: bool = True) -> list[Rejection]:
        """The bad ``--config`` files every plugin command refuses (unreadable, not UTF-8,
        too large); with ``schema`` (a command with a configuration class) also the documents
        it refuses: too deep, invalid YAML, not a mapping, an unknown key."""
        missing = self.workdir / "no-such-config.yaml"
        cases = [
            Rejection(["--config", str(missing)], f"cannot read config file {missing}"),
            Rejection(["-config", str(self.workdir)], "Is a directory"),
            Rejection(config=b"key: \xff\xfe\n", message="not UTF-8"),
            Rejection(config=b"#" * (1 << 20) + b"\n", message="larger than 1048576 bytes"),
        ]
        if schema:
            cases += [
                Rejection(config="key: " + "[" * 100 + "]" * 100, message="nesting deeper than"),
                Rejection(config="key: [\n", message="line 2"),
                Rejection(config="- a\n- b\n", message="expected a mapping"),
                Rejection(config="no-such-key-xyz: 1\n", message="unknown key 'no-such-key-xyz'"),
            ]
        return cases

    def check_bad_config_files(
        self, *, schema: bool = True, wrong_type: tuple[str, str] | None = None
    ) -> None:
        """Every case of :meth:`bad_config_files` exits 2 with one line naming the file;
        ``wrong_type`` is (a config with a value of the wrong type, the expected message)."""
        cases = self.bad_config_files(schema=schema)
        if wrong_type is not None:
            cases.append(Rejection(config=wrong_type[0], message=wrong_type[1]))
        lines = self.assert_all_rejected(cases)
        for line, case in zip(lines, cases, strict=True):
            if case.config is not None:
                assert str(self.workdir) in line, f"{line!r} does not name the file"

    def bad_allow_sections(self) -> list[Rejection]:
        """Malformed ``allow`` sections (:mod:`nri.stub`'s allowlist) an injector plugin
        command refuses, each with the key its error must name."""
        return [
            Rejection(config="allow: [gpu-jobs]\n", message="allow: expected a mapping"),
            Rejection(config="allow: {namespace: [a]}\n", message="allow: unknown key 'namespace'"),
            Rejection(
                config="allow: {namespaces: gpu-jobs}\n",
                message="allow.namespaces: expected a list of non-empty strings",
            ),
            Rejection(
                config="allow: {on-denied: drop}\n",
                message="allow.on-denied: expected refuse or ignore, got 'drop'",
            ),
            Rejection(
                config="allow:\n  pod-selector:\n    matchLabels: {gpu: true}\n",
                message="allow.pod-selector.matchLabels.gpu: expected a string",
            ),
            Rejection(
                config="allow:\n  pod-selector:\n    matchExpressions: [{key: a, operator: Has}]\n",
                message="allow.pod-selector.matchExpressions[0].operator: expected one of",
            ),
        ]

    def check_bad_allow_sections(self) -> None:
        """Every case of :meth:`bad_allow_sections` exits 2 with one line naming the file."""
        cases = self.bad_allow_sections()
        for line in self.assert_all_rejected(cases):
            assert str(self.workdir) in line, f"{line!r} does not name the file"

    def check_registers(
        self,
        runtime: ListeningRuntime,
        *args: str,
        names: Sequence[str] | None = None,
        timeout: float = 20.0,
    ) -> Registration:
        """Start the command with upstream's flag spellings (``-idx 10 -socket-path=P``) as
        an external plugin of ``runtime``; check that it registers as ``names`` (default:
        ``<idx>-<name>``, the plugin's own name) and exits 0 on SIGTERM."""
        flags = ["-socket-path=" + runtime.socket_path]
        if self.idx is not None:
            flags += ["-idx", self.idx]
        expected = list(names or [f"{self.idx}-{self.name}"])
        process = subprocess.Popen(
            [*self.argv, *flags, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.environment(),
        )
        try:
            try:
                plugins = runtime.wait_for_plugins(names=expected, timeout=timeout)
            except TimeoutError:
                process.kill()
                _, err = process.communicate(timeout=self.timeout)
                registered = [p.full_name for p in runtime.plugins]
                raise AssertionError(
                    f"{expected} did not register (registered: {registered})\n{err.decode()}"
                ) from None
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=self.timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        text = err.decode("utf-8", "replace")
        assert process.returncode == 0, f"exit status {process.returncode}\n{text}"
        return Registration([p for p in plugins if p.full_name in expected], text)
