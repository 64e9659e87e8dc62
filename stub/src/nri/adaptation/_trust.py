"""Ownership and permission checks on the paths a root runtime trusts.

A plugin file the runtime executes, and the directory its socket lives in, must be out of
reach of other users: owned by root or the runtime's own user and not writable by group or
others, and the same for every directory above them (after resolving symlinks), as the
trust checks of other root daemons (OpenSSH's StrictModes, sudo) do. A sticky directory
owned by root or us (like ``/tmp``) is accepted: others may add entries there but cannot
rename or replace ours.
"""

from __future__ import annotations

import os
import stat

__all__ = ["UntrustedPathError", "check_directory", "check_executable"]


class UntrustedPathError(Exception):
    """A path is writable by, or belongs to, someone the runtime must not trust."""


def _owner_problem(path: str, st: os.stat_result) -> str | None:
    uid = os.geteuid()
    if st.st_uid not in (0, uid):
        trusted = "root" if uid == 0 else f"root or uid {uid}"
        return f"{path} is owned by uid {st.st_uid}, not {trusted}"
    return None


def _mode_problem(path: str, st: os.stat_result, *, sticky_ok: bool) -> str | None:
    mode = st.st_mode
    if not mode & 0o022 or (sticky_ok and mode & stat.S_ISVTX):
        return None
    who = "group and others" if mode & 0o022 == 0o022 else "group" if mode & 0o020 else "others"
    return f"{path} is writable by {who} (mode {stat.S_IMODE(mode):04o})"


def _check_ancestors(real: str) -> None:
    """Check every directory from ``real`` (resolved, absolute) up to ``/``."""
    current = real
    while True:
        st = os.stat(current)
        if not stat.S_ISDIR(st.st_mode):
            raise UntrustedPathError(f"{current} is not a directory")
        problem = _owner_problem(current, st) or _mode_problem(current, st, sticky_ok=True)
        if problem is not None:
            raise UntrustedPathError(problem)
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def check_directory(path: str) -> None:
    """Raise UntrustedPathError unless directory ``path`` and all above it are trusted.

    OSError (e.g. FileNotFoundError) propagates.
    """
    _check_ancestors(os.path.realpath(path))


def check_executable(path: str) -> str:
    """Return the resolved path of the regular file ``path`` if it may be executed.

    Symlinks are resolved and the target is checked: owned by root or us, not writable by
    group or others, in trusted directories. Raises UntrustedPathError saying what is wrong;
    OSError propagates.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    shown = real if real == os.path.abspath(path) else f"its target {real}"
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedPathError(f"{shown} is not a regular file")
    problem = _owner_problem(shown, st) or _mode_problem(shown, st, sticky_ok=False)
    if problem is not None:
        raise UntrustedPathError(problem)
    _check_ancestors(os.path.dirname(real))
    return real
