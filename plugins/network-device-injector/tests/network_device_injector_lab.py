"""Real network namespaces for the tests, made and checked with iproute2's ``ip``.

Every test that moves devices works inside namespaces it creates: a stand-in for the host's
network namespace and one per pod, with veth pairs made inside the stand-in host. The
machine's own interfaces are never touched. The namespaces (and with them the veths) are
deleted at teardown, whatever the test did. Without root, ``ip`` or permission to create
namespaces and veths, those tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import netns as pyroute2_netns  # type: ignore[import-untyped]

T = TypeVar("T")

NETNS_DIR = "/var/run/netns"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip")
    assert ip is not None
    done = subprocess.run([ip, *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


class NetnsLab:
    """Network namespaces and veth pairs of one test, all removed by :meth:`cleanup`."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.names: list[str] = []

    def netns(self, role: str) -> str:
        """Create a namespace; returns its name (its path is :meth:`path`)."""
        name = f"nrit-{self.tag}-{role}"
        self.names.append(name)
        _ip("netns", "add", name)
        return name

    @staticmethod
    def path(name: str) -> str:
        """The bind-mount path of namespace ``name``, as a runtime reports a pod's."""
        return f"{NETNS_DIR}/{name}"

    def veth(self, ns: str, name: str, peer: str, *, up: bool = False) -> None:
        """A veth pair inside namespace ``ns``."""
        _ip("-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer)
        if up:
            _ip("-n", ns, "link", "set", name, "up")

    @staticmethod
    def ip(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``ip -n ns ARGS`` (checked)."""
        return _ip("-n", ns, *args)

    @staticmethod
    def link(ns: str, name: str) -> dict[str, Any] | None:
        """``ip -j -d link show`` of a device, or None when ``ns`` has none of that name."""
        done = _ip("-j", "-d", "-n", ns, "link", "show", "dev", name, check=False)
        if done.returncode != 0:
            return None
        (link,) = json.loads(done.stdout)
        return dict(link)

    @staticmethod
    def links(ns: str) -> list[str]:
        """Names of the devices in ``ns``."""
        return [link["ifname"] for link in json.loads(_ip("-j", "-n", ns, "link").stdout)]

    @staticmethod
    def addresses(ns: str, name: str) -> list[str]:
        """``address/prefix`` of each address of a device."""
        (entry,) = json.loads(_ip("-j", "-n", ns, "addr", "show", "dev", name).stdout)
        return [f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])]

    @staticmethod
    def run_in(ns: str, call: Callable[[], T]) -> T:
        """Run ``call`` in a thread that entered namespace ``ns`` (its "host" namespace)."""
        result: list[Any] = []

        def target() -> None:
            try:
                fd = os.open(f"{NETNS_DIR}/{ns}", os.O_RDONLY)
                try:
                    pyroute2_netns.setns(fd)
                finally:
                    os.close(fd)
                result.append((True, call()))
            except BaseException as exc:  # re-raised in the test's thread
                result.append((False, exc))

        thread = threading.Thread(target=target, name=f"in-{ns}")
        thread.start()
        thread.join(60)
        assert result, f"call in {ns} did not finish"
        ok, value = result[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def exec_prefix(self, ns: str) -> list[str]:
        """A command prefix running a program in namespace ``ns``."""
        ip = shutil.which("ip")
        assert ip is not None
        return [ip, "netns", "exec", ns]

    def cleanup(self) -> None:
        """Delete every namespace of the test (veths inside go with them)."""
        for name in reversed(self.names):
            _ip("netns", "delete", name, check=False)
        self.names.clear()


def unavailable() -> str | None:
    """Why namespaces cannot be tested here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    probe = NetnsLab()
    try:
        ns = probe.netns("probe")
        probe.veth(ns, "probe0", "probe1")
        _ip("netns", "exec", ns, "true")
    except AssertionError as exc:
        return f"this machine cannot create network namespaces and veths: {exc}"
    finally:
        probe.cleanup()
    return None
