"""The ``lab`` fixture: network namespaces of one test (see network_device_injector_lab)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from network_device_injector_lab import NetnsLab, unavailable

_REASON: list[str | None] = []


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    """A :class:`NetnsLab`; skips the test where the machine forbids namespaces."""
    if not _REASON:
        _REASON.append(unavailable())
    if _REASON[0] is not None:
        pytest.skip(_REASON[0])
    made = NetnsLab()
    try:
        yield made
    finally:
        made.cleanup()
