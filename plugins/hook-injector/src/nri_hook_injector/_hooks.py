"""OCI hook configuration files (oci-hooks(5), schemas 1.0.0 and 0.1.0): parsing, matching.

A hook file is a JSON object::

    {"version": "1.0.0",
     "hook": {"path": "/usr/local/bin/my-hook", "args": ["my-hook", "x"], "env": [], "timeout": 5},
     "when": {"annotations": {"^example\\.com/gpu$": "true"}},
     "stages": ["prestart", "poststop"]}

Matching follows containers/common ``pkg/hooks``: every condition set in ``when`` must match
(``always: false`` and ``hasBindMounts: false`` never match); ``commands`` is checked last and
decides on its own once the other conditions matched: the hook is injected if any command
regex matches ``args[0]``. Regexes are searched, not anchored, as Go's ``MatchString`` does.

Files are decoded like Go's ``encoding/json`` (:func:`nri.decode.from_json`): keys match
case-insensitively, unknown keys are ignored (with a warning), ``"timeout": 0`` is kept.
A file without ``version`` or with ``"0.1.0"`` is read with the old schema
(``hook``, ``arguments``, ``stage(s)``, ``cmd(s)``, ``annotation(s)``, ``hasbindmounts``;
any one condition suffices), as containers/common does. The ``prestart`` stage is injected
as ``createRuntime``, as containers/common does since v0.58. A file is limited to
:data:`MAX_HOOK_FILE_BYTES`.
"""

from __future__ import annotations

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
from nri.decode import Bool, DecodeError, Int, Map, Ptr, Slice, Str, Struct, from_json, load_json
from nri.stub import RequestError

__all__ = [
    "DEFAULT_HOOK_DIRS",
    "MAX_HOOK_FILE_BYTES",
    "OLD_SCHEMA_VERSION",
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

#: The current hook-file schema version.
SCHEMA_VERSION = "1.0.0"
#: The deprecated schema, also used for files without a version.
OLD_SCHEMA_VERSION = "0.1.0"
#: Largest hook file read; a real one is a few hundred bytes.
MAX_HOOK_FILE_BYTES = 64 * 1024

#: OCI stage name -> field of the NRI ``Hooks`` message (``prestart`` as containers/common).
STAGES: dict[str, str] = {
    "prestart": "create_runtime",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}

_VERSION = Struct("version", {"version": Str()})
_HOOK = Struct(
    "Hook",
    {"path": Str(), "args": Slice(Str()), "env": Slice(Str()), "timeout": Ptr(Int(64))},
)
_WHEN = Struct(
    "When",
    {
        "always": Ptr(Bool()),
        "annotations": Map(Str()),
        "commands": Slice(Str()),
        "hasBindMounts": Ptr(Bool()),
    },
)
_CURRENT = Struct(
    "Hook", {"version": Str(), "hook": _HOOK, "when": _WHEN, "stages": Ptr(Slice(Str()))}
)
_OLD = Struct(
    "Hook010",
    {
        name: Ptr(Bool()) if name == "hasbindmounts" else Ptr(Slice(Str()))
        for name in (
            "arguments",
            "stages",
            "stage",
            "cmds",
            "cmd",
            "annotations",
            "annotation",
            "hasbindmounts",
        )
    }
    | {"hook": Ptr(Str())},
)


class HookConfigError(ValueError):
    """A hook file is unusable; the message names the file and what is wrong in it."""


class HookMatchError(RequestError):
    """A hook's conditions cannot be evaluated for a container (e.g. it has no args); the
    request fails with one log line."""


@dataclass(frozen=True)
class When:
    """The conditions of a hook; all that are set must match."""

    always: bool | None = None
    annotations: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = ()
    commands: tuple[re.Pattern[str], ...] = ()
    has_bind_mounts: bool | None = None
    any_of: bool = False
    """One matching condition suffices (the 0.1.0 schema)."""

    def matches(
        self, annotations: Mapping[str, str], args: Sequence[str], has_bind_mounts: bool
    ) -> bool:
        """Whether a container with these annotations, args and mounts gets the hook.

        Raises HookMatchError when ``commands`` is set and ``args`` is empty.
        """
        matched = 0
        results: list[bool] = []
        if self.always is not None:
            results.append(self.always)
        if self.has_bind_mounts is not None:
            results.append(self.has_bind_mounts and has_bind_mounts)
        for key_re, value_re in self.annotations:
            results.append(
                any(
                    key_re.search(key) and value_re.search(value)
                    for key, value in annotations.items()
                )
            )
        for result in results:
            if result and self.any_of:
                return True
            if not result and not self.any_of:
                return False
            matched += result
        if self.commands:
            if not args:
                raise HookMatchError("the container has no args to match 'commands' against")
            return any(command_re.search(args[0]) for command_re in self.commands)
        return matched > 0

    def annotation_in(self, annotations: Mapping[str, str]) -> str | None:
        """The first key of ``annotations`` that satisfies one of the ``annotations``
        conditions (key and value), None when none does."""
        for key, value in annotations.items():
            if any(k.search(key) and v.search(value) for k, v in self.annotations):
                return key
        return None


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


def _warn_unknown(obj: Any, kind: Struct, where: str) -> None:
    if isinstance(obj, dict):
        unknown = sorted(key for key in obj if kind.match(key) is None)
        if unknown:
            log.warning("%s: ignoring unknown key(s) %s", where, ", ".join(map(repr, unknown)))


def _typed(document: Any, kind: Struct, source: str) -> dict[str, Any]:
    try:
        result: dict[str, Any] = from_json(document, kind, source=source)
    except DecodeError as exc:
        raise HookConfigError(str(exc)) from None
    return result


def _read_old(document: Any, source: str) -> dict[str, Any]:
    """Convert a 0.1.0 file to the 1.0.0 fields, as containers/common does."""
    raw = _typed(document, _OLD, source)
    if raw["hook"] is None:
        raise HookConfigError(f"{source}: missing required property: hook")
    merged: dict[str, Any] = {}
    for plural, single in (("stages", "stage"), ("cmds", "cmd"), ("annotations", "annotation")):
        if raw[plural] is not None and raw[single] is not None:
            raise HookConfigError(f"{source}: cannot set both {single!r} and {plural!r}")
        merged[plural] = raw[plural] if raw[plural] is not None else raw[single]
    if merged["stages"] is None:
        raise HookConfigError(f"{source}: missing required property: stages")
    args = [raw["hook"], *raw["arguments"]] if raw["arguments"] is not None else []
    annotations = merged["annotations"]
    return {
        "hook": {"path": raw["hook"], "args": args, "env": [], "timeout": None},
        "when": {
            "always": None,
            "annotations": {".*": "|".join(annotations)} if annotations is not None else {},
            "commands": merged["cmds"] or [],
            "hasBindMounts": raw["hasbindmounts"],
        },
        "stages": merged["stages"],
        "any_of": True,
    }


def _check_hook(hook: dict[str, Any], source: str, check_path: bool) -> pb.Hook:
    where = f"{source}: hook"
    path = hook["path"]
    if not path:
        raise HookConfigError(f"{where}.path: missing required property (a non-empty string)")
    if not path.startswith("/"):
        raise HookConfigError(f"{where}.path: {path!r} must be an absolute path (OCI spec)")
    if check_path:
        try:
            os.stat(path)
        except OSError as exc:
            raise HookConfigError(f"{where}.path: {path}: {exc.strerror or exc}") from exc
    timeout = hook["timeout"]
    if timeout is not None and timeout < 0:
        raise HookConfigError(f"{where}.timeout: must not be negative, got {timeout}")
    return make_hook(path, hook["args"], hook["env"], timeout)


def _check_when(when: dict[str, Any], source: str, any_of: bool) -> When:
    where = f"{source}: when"
    conditions = ("always", "annotations", "commands", "hasBindMounts")
    if not any(when[name] not in (None, {}, []) for name in conditions):
        known = ", ".join(sorted(conditions))
        raise HookConfigError(f"{where}: at least one condition must be set ({known})")
    return When(
        always=when["always"],
        annotations=tuple(
            (
                _compile(key, f"{where}.annotations key"),
                _compile(value, f"{where}.annotations[{key!r}]"),
            )
            for key, value in when["annotations"].items()
        ),
        commands=tuple(
            _compile(c, f"{where}.commands[{i}]") for i, c in enumerate(when["commands"])
        ),
        has_bind_mounts=when["hasBindMounts"],
        any_of=any_of,
    )


def parse_hook(
    text: str | bytes, source: str = "hook", *, name: str | None = None, check_path: bool = True
) -> HookConfig:
    """Parse and validate the JSON text of one hook file.

    ``source`` names the file in errors. With ``check_path`` (the default, as upstream) the
    hook's executable must exist. Raises HookConfigError naming the problem.
    """
    try:
        document = load_json(text, source=source, max_bytes=MAX_HOOK_FILE_BYTES, max_depth=16)
    except DecodeError as exc:
        raise HookConfigError(f"{source}: invalid JSON: {exc.problem}") from None
    if not isinstance(document, dict):
        raise HookConfigError(f"{source}: expected a JSON object, got {type(document).__name__}")
    version = _typed(document, _VERSION, source)["version"]
    if version == SCHEMA_VERSION:
        _warn_unknown(document, _CURRENT, source)
        fields = _typed(document, _CURRENT, source)
        for key, value in document.items():
            part = _CURRENT.match(key)
            if part in ("hook", "when"):
                _warn_unknown(value, _HOOK if part == "hook" else _WHEN, f"{source}: {part}")
        if fields["stages"] is None:
            raise HookConfigError(f"{source}: stages: missing required property (a list)")
        fields["any_of"] = False
    elif version in (OLD_SCHEMA_VERSION, ""):
        _warn_unknown(document, _OLD, source)
        fields = _read_old(document, source)
    else:
        raise HookConfigError(
            f"{source}: unsupported hook version {version!r} "
            f"(expected {SCHEMA_VERSION!r} or {OLD_SCHEMA_VERSION!r})"
        )
    hook = _check_hook(fields["hook"], source, check_path)
    when = _check_when(fields["when"], source, fields["any_of"])
    stages = fields["stages"]
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
        with open(path, "rb") as file:
            data = file.read(MAX_HOOK_FILE_BYTES + 1)  # never read a huge file whole
    except OSError as exc:
        raise HookConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_HOOK_FILE_BYTES:
        raise HookConfigError(f"{path}: too large (over {MAX_HOOK_FILE_BYTES} bytes)")
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
