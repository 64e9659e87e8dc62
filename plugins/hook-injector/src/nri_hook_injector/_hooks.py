"""OCI hook configuration files (oci-hooks(5), schema 1.0.0): parsing, matching, directories.

A hook file is a JSON object::

    {"version": "1.0.0",
     "hook": {"path": "/usr/local/bin/my-hook", "args": ["my-hook", "x"], "env": [], "timeout": 5},
     "when": {"annotations": {"^example\\.com/gpu$": "true"}},
     "stages": ["prestart", "poststop"]}

Matching follows containers/common ``pkg/hooks``: every condition set in ``when`` must match
(``always: false`` and ``hasBindMounts: false`` never match); ``commands`` is checked last and
decides on its own once the other conditions matched: the hook is injected if any command
regex matches ``args[0]``. Regexes are searched, not anchored, as Go's ``MatchString`` does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nri.api import api_pb2 as pb
from nri.api import make_hook

__all__ = [
    "DEFAULT_HOOK_DIRS",
    "SCHEMA_VERSION",
    "STAGES",
    "HookConfig",
    "HookConfigError",
    "HookManager",
    "HookMatchError",
    "When",
    "load_hook_file",
    "parse_hook",
]

log = logging.getLogger("nri.hook_injector")

#: Hook directories in increasing precedence, as CRI-O and podman use them.
DEFAULT_HOOK_DIRS: tuple[str, ...] = (
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
)

#: The only supported hook-file schema version.
SCHEMA_VERSION = "1.0.0"

#: OCI stage name -> field of the NRI ``Hooks`` message.
STAGES: dict[str, str] = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}

_TOP_KEYS = {"version", "hook", "when", "stages"}
_HOOK_KEYS = {"path", "args", "env", "timeout"}
_WHEN_KEYS = {"always", "annotations", "commands", "hasBindMounts"}


class HookConfigError(ValueError):
    """A hook file is unusable; the message names the file and what is wrong in it."""


class HookMatchError(RuntimeError):
    """A hook's conditions cannot be evaluated for a container (e.g. it has no args)."""


@dataclass(frozen=True)
class When:
    """The conditions of a hook; all that are set must match."""

    always: bool | None = None
    annotations: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = ()
    commands: tuple[re.Pattern[str], ...] = ()
    has_bind_mounts: bool | None = None

    def matches(
        self, annotations: Mapping[str, str], args: Sequence[str], has_bind_mounts: bool
    ) -> bool:
        """Whether a container with these annotations, args and mounts gets the hook.

        Raises HookMatchError when ``commands`` is set and ``args`` is empty.
        """
        matched = 0
        if self.always is not None:
            if not self.always:
                return False
            matched += 1
        if self.has_bind_mounts is not None:
            if not (self.has_bind_mounts and has_bind_mounts):
                return False
            matched += 1
        for key_re, value_re in self.annotations:
            if not any(
                key_re.search(key) and value_re.search(value) for key, value in annotations.items()
            ):
                return False
            matched += 1
        if self.commands:
            if not args:
                raise HookMatchError("the container has no args to match 'commands' against")
            return any(command_re.search(args[0]) for command_re in self.commands)
        return matched > 0


@dataclass(frozen=True)
class HookConfig:
    """One valid hook file."""

    name: str
    """File name; it orders injection and lets a later directory mask an earlier one."""
    source: Path
    """The file it was read from."""
    hook: pb.Hook = field(compare=False)
    when: When
    stages: tuple[str, ...]
    """OCI stage names, in file order (duplicates inject the hook twice, as upstream does)."""

    def add_to(self, hooks: pb.Hooks) -> None:
        """Append this hook to ``hooks`` once per stage."""
        for stage in self.stages:
            getattr(hooks, STAGES[stage]).append(self.hook)


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise HookConfigError(f"{where}: expected a regex string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise HookConfigError(f"{where}: invalid regex {pattern!r}: {exc}") from exc


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HookConfigError(f"{where}: expected a list of strings, got {value!r}")
    return value


def _optional_bool(when: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = when.get(key)
    if value is not None and not isinstance(value, bool):
        raise HookConfigError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _warn_unknown(obj: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", where, ", ".join(map(repr, unknown)))


def _parse_hook_entry(entry: Any, source: str, check_path: bool) -> pb.Hook:
    where = f"{source}: hook"
    if not isinstance(entry, dict):
        raise HookConfigError(f"{where}: expected an object, got {entry!r}")
    _warn_unknown(entry, _HOOK_KEYS, where)
    path = entry.get("path")
    if not isinstance(path, str) or not path:
        raise HookConfigError(f"{where}.path: missing required property (a non-empty string)")
    if check_path:
        try:
            os.stat(path)
        except OSError as exc:
            raise HookConfigError(f"{where}.path: {path}: {exc.strerror or exc}") from exc
    args = _string_list(entry.get("args", []), f"{where}.args")
    env = _string_list(entry.get("env", []), f"{where}.env")
    timeout = entry.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise HookConfigError(f"{where}.timeout: expected a positive integer, got {timeout!r}")
    return make_hook(path, args, env, timeout)


def _parse_when(when: Any, source: str) -> When:
    where = f"{source}: when"
    if not isinstance(when, dict):
        raise HookConfigError(f"{where}: missing required property (an object)")
    _warn_unknown(when, _WHEN_KEYS, where)
    if not _WHEN_KEYS & set(when):
        known = ", ".join(sorted(_WHEN_KEYS))
        raise HookConfigError(f"{where}: at least one condition must be set ({known})")
    annotations = when.get("annotations", {})
    if not isinstance(annotations, dict):
        raise HookConfigError(f"{where}.annotations: expected an object, got {annotations!r}")
    return When(
        always=_optional_bool(when, "always", where),
        annotations=tuple(
            (
                _compile(key, f"{where}.annotations key"),
                _compile(value, f"{where}.annotations[{key!r}]"),
            )
            for key, value in annotations.items()
        ),
        commands=tuple(
            _compile(c, f"{where}.commands[{i}]")
            for i, c in enumerate(_string_list(when.get("commands", []), f"{where}.commands"))
        ),
        has_bind_mounts=_optional_bool(when, "hasBindMounts", where),
    )


def parse_hook(
    text: str | bytes, source: str = "hook", *, name: str | None = None, check_path: bool = True
) -> HookConfig:
    """Parse and validate the JSON text of one hook file.

    ``source`` names the file in errors. With ``check_path`` (the default, as upstream) the
    hook's executable must exist. Raises HookConfigError naming the problem.
    """
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HookConfigError(f"{source}: invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise HookConfigError(f"{source}: expected a JSON object, got {type(document).__name__}")
    version = document.get("version")
    if version != SCHEMA_VERSION:
        raise HookConfigError(
            f"{source}: unsupported hook version {version!r} (expected {SCHEMA_VERSION!r}; "
            "the deprecated 0.1.0 schema is not supported)"
        )
    _warn_unknown(document, _TOP_KEYS, source)
    if "hook" not in document:
        raise HookConfigError(f"{source}: hook: missing required property (an object)")
    hook = _parse_hook_entry(document["hook"], source, check_path)
    when = _parse_when(document.get("when"), source)
    if "stages" not in document:
        raise HookConfigError(f"{source}: stages: missing required property (a list)")
    stages = _string_list(document["stages"], f"{source}: stages")
    for stage in stages:
        if stage not in STAGES:
            known = ", ".join(STAGES)
            raise HookConfigError(f"{source}: stages: unknown stage {stage!r} (known: {known})")
    return HookConfig(
        name=name if name is not None else Path(source).name,
        source=Path(source),
        hook=hook,
        when=when,
        stages=tuple(stages),
    )


def load_hook_file(path: str | os.PathLike[str], *, check_path: bool = True) -> HookConfig:
    """Read and validate the hook file at ``path``; raises HookConfigError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HookConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_hook(data, str(path), name=path.name, check_path=check_path)


_StatKey = tuple[int, int, int, int, int]


@dataclass
class _Entry:
    path: Path
    key: _StatKey
    result: HookConfig | HookConfigError


class HookManager:
    """The hooks of a list of directories, reloaded when their files change.

    Directories are in increasing precedence: a file in a later directory masks the file of
    the same name in earlier ones (even when the later one is broken). Missing directories
    count as empty and are picked up once they appear. Call :meth:`refresh` to rescan; it
    only rereads files whose identity, size or times changed, and reports each broken file
    once per change.
    """

    def __init__(
        self, directories: Iterable[str | os.PathLike[str]], *, check_path: bool = True
    ) -> None:
        self.directories = tuple(Path(d) for d in directories)
        self.check_path = check_path
        self._entries: dict[str, _Entry] = {}
        self._dir_errors: dict[Path, str] = {}
        self._hooks: list[HookConfig] = []

    @property
    def hooks(self) -> list[HookConfig]:
        """The valid hooks, in injection order (file names compared case-insensitively)."""
        return list(self._hooks)

    @property
    def errors(self) -> dict[Path, str]:
        """The broken files in force (masked ones excluded) and why each was skipped."""
        return {
            entry.path: str(entry.result)
            for entry in self._entries.values()
            if isinstance(entry.result, HookConfigError)
        }

    def _scan(self) -> dict[str, tuple[Path, _StatKey]]:
        found: dict[str, tuple[Path, _StatKey]] = {}
        for directory in self.directories:
            try:
                names = sorted(os.listdir(directory))
            except FileNotFoundError:
                self._dir_errors.pop(directory, None)
                continue
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if self._dir_errors.get(directory) != reason:
                    log.warning("hook directory %s: cannot list: %s", directory, reason)
                self._dir_errors[directory] = reason
                continue
            self._dir_errors.pop(directory, None)
            for name in names:
                if not name.endswith(".json"):
                    continue
                path = directory / name
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue  # dangling symlink or removed meanwhile
                except OSError as exc:
                    log.warning("hook file %s: cannot stat: %s", path, exc.strerror or exc)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                found[name] = (
                    path,
                    (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns),
                )
        return found

    def refresh(self) -> bool:
        """Rescan the directories; return whether any hook file was added, changed or removed."""
        found = self._scan()
        changed = False
        for name in sorted(set(self._entries) - set(found)):
            log.info("hook file %s removed", self._entries.pop(name).path)
            changed = True
        for name, (path, key) in found.items():
            old = self._entries.get(name)
            if old is not None and old.path == path and old.key == key:
                continue
            changed = True
            result: HookConfig | HookConfigError
            try:
                result = load_hook_file(path, check_path=self.check_path)
            except HookConfigError as exc:
                result = exc
                log.error("skipping broken hook file %s", exc)
            else:
                verb = "loaded" if old is None else "reloaded"
                stages = ", ".join(result.stages) or "no stages"
                log.info("%s hook file %s (%s)", verb, path, stages)
            self._entries[name] = _Entry(path, key, result)
        if changed:
            valid = [e.result for e in self._entries.values() if isinstance(e.result, HookConfig)]
            valid.sort(key=lambda h: (h.name.lower(), h.name))
            self._hooks = valid
        return changed

    def matching(
        self, annotations: Mapping[str, str], args: Sequence[str], has_bind_mounts: bool
    ) -> list[HookConfig]:
        """The hooks whose conditions match, in injection order.

        Raises HookMatchError naming the hook file whose conditions cannot be evaluated.
        """
        result = []
        for hook in self._hooks:
            try:
                if hook.when.matches(annotations, args, has_bind_mounts):
                    result.append(hook)
            except HookMatchError as exc:
                raise HookMatchError(f"matching hook {hook.name!r}: {exc}") from exc
        return result

    def hooks_for(
        self, annotations: Mapping[str, str], args: Sequence[str], has_bind_mounts: bool
    ) -> pb.Hooks | None:
        """The combined ``Hooks`` to inject, or None when no hook file matches."""
        matched = self.matching(annotations, args, has_bind_mounts)
        if not matched:
            return None
        hooks = pb.Hooks()
        for hook in matched:
            hook.add_to(hooks)
        return hooks
