"""NRI version inference from runtime name/version (upstream ``pkg/api/version.go``).

Used when a runtime reports an empty, ``(devel)`` or unknown ``NRI_version``.
"""

from __future__ import annotations

import re
from typing import Final

from nri.api._constants import UNKNOWN_VERSION

__all__ = [
    "UnknownRuntimeVersionError",
    "compare_versions",
    "find_closest_version",
    "infer_version_from_runtime",
]


class UnknownRuntimeVersionError(ValueError):
    """The NRI version of a runtime name/version pair cannot be inferred."""


def _table(pairs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in pairs.split():
        versions, nri = line.split("=")
        for runtime_version in versions.split(","):
            out[runtime_version] = nri
    return out


def _range(prefix: str, first: int, last: int) -> str:
    return ",".join(f"{prefix}{n}" for n in range(first, last + 1))


_CRIO_0_3_1: Final = "v0.3.1-0.20230504231226-94185418e253"
_CRIO_0_9_1: Final = "v0.9.1-0.20250219030224-e597e7849f24"

# runtime -> runtime version -> NRI version the runtime was released with
_RUNTIME_VERSIONS: Final[dict[str, dict[str, str]]] = {
    "containerd": _table(
        f"""
        {_range("v1.7.", 0, 6)}=v0.3.0
        {_range("v1.7.", 7, 13)}=v0.4.0
        v1.7.14,v1.7.15=v0.6.0
        {_range("v1.7.", 16, 25)}=v0.6.1
        {_range("v1.7.", 26, 30)}=v0.8.0
        {_range("v2.0.", 0, 7)}=v0.8.0
        {_range("v2.1.", 0, 6)}=v0.8.0
        v2.2.0=v0.10.0
        v2.2.1=v0.11.0
        """
    ),
    "cri-o": _table(
        f"""
        v1.26.0,v1.26.1=v0.2.0
        v1.26.2,v1.26.3,v1.27.0=v0.3.0
        v1.26.4,{_range("v1.27.", 1, 8)}={_CRIO_0_3_1}
        {_range("v1.28.", 0, 11)}={_CRIO_0_3_1}
        v1.29.0,v1.29.1=v0.5.0
        {_range("v1.29.", 2, 13)}=v0.6.0
        {_range("v1.30.", 0, 14)}=v0.6.0
        {_range("v1.31.", 0, 13)}=v0.6.1
        {_range("v1.32.", 0, 12)}=v0.9.0
        {_range("v1.33.", 0, 8)}={_CRIO_0_9_1}
        {_range("v1.34.", 0, 4)}=v0.10.0
        v1.35.0=v0.11.0
        """
    ),
}

_IDENT: Final = re.compile(r"[0-9A-Za-z-]+")
_NUM: Final = re.compile(r"0|[1-9][0-9]*")


def _parse(version: str) -> tuple[int, int, int, str] | None:
    """Parse ``vMAJOR[.MINOR[.PATCH]][-PRE][+BUILD]``; None if invalid (build is dropped)."""
    if not version.startswith("v"):
        return None
    rest, has_build, build = version[1:].partition("+")
    if has_build and not all(_IDENT.fullmatch(i) for i in build.split(".")):
        return None
    core, has_pre, pre = rest.partition("-")
    if has_pre:
        for ident in pre.split("."):
            if not _IDENT.fullmatch(ident) or (ident.isdigit() and not _NUM.fullmatch(ident)):
                return None
    parts = core.split(".")
    if len(parts) > 3 or (len(parts) < 3 and (has_pre or has_build)):
        return None
    if not all(_NUM.fullmatch(p) for p in parts):
        return None
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2], pre


def _compare_pre(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    xs, ys = a.split("."), b.split(".")
    for x, y in zip(xs, ys, strict=False):
        if x == y:
            continue
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        if x.isdigit():
            return -1 if int(x) < int(y) else 1
        return -1 if x < y else 1
    return -1 if len(xs) < len(ys) else 1


def compare_versions(a: str, b: str) -> int:
    """Compare semantic versions like Go's semver: -1, 0 or 1; invalid sorts first."""
    pa, pb_ = _parse(a), _parse(b)
    if pa is None or pb_ is None:
        return (pa is not None) - (pb_ is not None)
    if pa[:3] != pb_[:3]:
        return -1 if pa[:3] < pb_[:3] else 1
    return _compare_pre(pa[3], pb_[3])


def _strip_git_suffix(version: str) -> str:
    # "v2.2.0-225-ge9dc15b7a.m" is newer than v2.2.0, not a pre-release of it
    parsed = _parse(version)
    if parsed is None:
        return version
    major, minor, patch, pre = parsed
    match = re.fullmatch(r"([0-9]+)-g([0-9a-fA-F]+)(\..*)?", pre)
    if not match:
        return version
    return f"v{major}.{minor}.{patch}"


def find_closest_version(version: str, candidates: list[str]) -> str:
    """Return the largest candidate <= ``version`` (git-describe suffix ignored), or ``""``."""
    target = _strip_git_suffix(version)
    best = ""
    for candidate in sorted(candidates, key=_SortKey):
        if compare_versions(candidate, target) > 0:
            break
        best = candidate
    return best


class _SortKey:
    __slots__ = ("version",)

    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: _SortKey) -> bool:
        return compare_versions(self.version, other.version) < 0


def infer_version_from_runtime(runtime: str, runtime_version: str) -> str:
    """Guess the NRI version of ``runtime`` (``containerd`` or ``cri-o``) at ``runtime_version``.

    Raises UnknownRuntimeVersionError for an unknown runtime or a too old version.
    """
    table = _RUNTIME_VERSIONS.get(runtime)
    if table is None:
        raise UnknownRuntimeVersionError(f"can't infer NRI version for unknown runtime {runtime!r}")
    tag = find_closest_version(runtime_version, list(table))
    if not tag:
        raise UnknownRuntimeVersionError(
            f"no known NRI version for {runtime} {runtime_version!r} (reporting {UNKNOWN_VERSION})"
        )
    return table[tag]
