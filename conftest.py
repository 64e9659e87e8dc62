"""Shared pytest setup: run ``async def`` tests on a fresh event loop with a hard time limit.

A hung protocol test must fail, not stall CI, so every coroutine test is bounded by
``NRI_TEST_TIMEOUT`` seconds (default 60) unless it carries ``@pytest.mark.timeout(N)``.
"""

from __future__ import annotations

import asyncio
import inspect
import os

import pytest

DEFAULT_TIMEOUT = float(os.environ.get("NRI_TEST_TIMEOUT", "60"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timeout(seconds): time limit of an async test")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker else DEFAULT_TIMEOUT
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await pyfuncitem.obj(**kwargs)

    asyncio.run(bounded())
    return True
