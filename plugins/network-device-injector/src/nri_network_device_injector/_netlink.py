"""Move network devices between the host's and a pod's network namespace (netlink, pyroute2).

The steps follow upstream, which follows the CNI ``host-device`` plugin: the device is set
down, renamed to ``temp_<ifindex>`` (so it cannot clash with a name in the other namespace),
moved, then given its name there. On the way in, the host name is saved as the device's alias
so that the way out can restore it. A failed step undoes the earlier ones.

Everything here blocks: call it from a worker thread. No thread ever switches its own network
namespace: a netlink socket for the pod's namespace is opened by a short-lived thread that
enters it and ends, and the socket keeps working in whichever thread uses it afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

IPRoute: TypeAlias = Any
"""A ``pyroute2.IPRoute`` (pyroute2 has no type information)."""

__all__ = [
    "IFNAMSIZ",
    "DeviceConfig",
    "NetdevError",
    "inject",
    "release",
]

IFNAMSIZ = 16
"""The kernel's interface name buffer; names have at most ``IFNAMSIZ - 1`` bytes."""

_IFF_UP = 0x1


class NetdevError(RuntimeError):
    """A device could not be moved or configured; the one-line message says which and why."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Addressing applied inside the pod once a device has moved in."""

    address: str = ""
    prefix: int = 0
    """Prefix length; 0 with an address: 32 for IPv4, 128 for IPv6."""
    mtu: int = 0
    """0 keeps the device's MTU."""


@functools.cache
def _pyroute2() -> Any:
    """pyroute2, imported on first use: it takes a quarter second, a plain start needs none."""
    import pyroute2  # type: ignore[import-untyped]
    import pyroute2.netlink.exceptions  # type: ignore[import-untyped]

    return pyroute2


def _failures() -> tuple[type[Exception], ...]:
    return (_pyroute2().netlink.exceptions.NetlinkError, OSError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _pyroute2().netlink.exceptions.NetlinkError):
        code = exc.code
        return os.strerror(code) if code else str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def _check_name(name: str, what: str) -> None:
    """The kernel's rule (dev_valid_name): 1-15 bytes, no "/", ":" or space, not "." or ".."."""
    size = len(name.encode("utf-8", "surrogateescape"))
    if (
        not 0 < size < IFNAMSIZ
        or name in (".", "..")
        or any(c in "/:\0" or c.isspace() for c in name)
    ):
        raise NetdevError(f"invalid {what} {name!r}: not a valid interface name")


def _open_socket_in(netns_fd: int) -> socket.socket:
    """A NETLINK_ROUTE socket created inside the namespace ``netns_fd`` refers to."""
    result: list[socket.socket | BaseException] = []

    def enter_and_open() -> None:
        # setns(2) changes the namespace of this thread only; the thread ends right after.
        try:
            _pyroute2().netns.setns(netns_fd)
            result.append(socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))
        except BaseException as exc:  # handed over to the caller
            result.append(exc)

    thread = threading.Thread(target=enter_and_open, name="nri-netns-enter", daemon=True)
    thread.start()
    thread.join()
    (outcome,) = result
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@contextlib.contextmanager
def _namespaces(netns_path: str) -> Iterator[tuple[IPRoute, IPRoute, int, int]]:
    """Netlink handles of the current ("host") and the pod's namespace, and fds of both."""
    iproute = _pyroute2().IPRoute  # imported here, not in the thread that changes namespace
    try:
        pod_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetdevError(f"network namespace {netns_path}: {_reason(exc)}") from exc
    try:
        host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                pod_sock = _open_socket_in(pod_fd)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    raise NetdevError(
                        f"network namespace {netns_path}: not a network namespace"
                    ) from exc
                raise NetdevError(f"network namespace {netns_path}: {_reason(exc)}") from exc
            try:
                host, pod = iproute(), iproute(fileno=pod_sock.detach())
            except _failures() as exc:
                raise NetdevError(f"cannot open netlink: {_reason(exc)}") from exc
            with host, pod:
                yield host, pod, host_fd, pod_fd
        finally:
            os.close(host_fd)
    finally:
        os.close(pod_fd)


def _link(ipr: IPRoute, name: str) -> Any | None:
    try:
        indices = ipr.link_lookup(ifname=name)
        return ipr.get_links(indices[0])[0] if indices else None
    except _failures() as exc:
        raise NetdevError(f"failed to look up device {name!r}: {_reason(exc)}") from exc


def _step(what: str, call: Callable[[], object]) -> None:
    try:
        call()
    except _failures() as exc:
        raise NetdevError(f"failed to {what}: {_reason(exc)}") from exc


def _quietly(call: Callable[[], object]) -> None:
    """Run an undo step; the original failure is what gets reported."""
    with contextlib.suppress(*_failures()):
        call()


def _configure(pod: IPRoute, index: int, ifname: str, config: DeviceConfig) -> None:
    if config.mtu:
        if not 0 < config.mtu <= 0xFFFFFFFF:
            raise NetdevError(f"invalid mtu {config.mtu} for {ifname!r}")
        _step(
            f"set the MTU of {ifname!r} to {config.mtu}",
            lambda: pod.link("set", index=index, mtu=config.mtu),
        )
    if config.address:
        ip = ipaddress.ip_address(config.address)
        prefix = config.prefix or ip.max_prefixlen
        if not 0 < prefix <= ip.max_prefixlen:
            raise NetdevError(f"invalid prefix {prefix} for address {ip} of {ifname!r}")
        extra: dict[str, Any] = {}
        if ip.version == 4 and prefix < 31:
            network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
            extra["broadcast"] = str(network.broadcast_address)
        _step(
            f"add address {ip}/{prefix} to {ifname!r}",
            lambda: pod.addr("add", index=index, address=str(ip), prefixlen=prefix, **extra),
        )


def inject(netns_path: str, name: str, new_name: str, config: DeviceConfig | None = None) -> int:
    """Move host device ``name`` into ``netns_path`` as ``new_name``, set it up; its new index.

    With ``config``, also set its MTU and address there. On failure the device is back on the
    host under its own name, up again if it was, and NetdevError says what failed.
    """
    _check_name(name, "device name")
    _check_name(new_name, "new_name")
    with _namespaces(netns_path) as (host, pod, host_fd, pod_fd):
        dev = _link(host, name)
        if dev is None:
            raise NetdevError(f"network device {name!r} not found in the host network namespace")
        index = dev["index"]
        was_up = bool(dev["flags"] & _IFF_UP)
        temp = f"temp_{index}"
        _step(f"set {name!r} down", lambda: host.link("set", index=index, state="down"))
        try:
            _step(
                f"rename {name!r} to {temp!r}",
                lambda: host.link("set", index=index, ifname=temp),
            )
            try:
                _step(
                    f"move {name!r} into network namespace {netns_path}",
                    lambda: host.link("set", index=index, net_ns_fd=pod_fd),
                )
            except NetdevError:
                _quietly(lambda: host.link("set", index=index, ifname=name))
                raise
            try:
                return _finish_inject(pod, temp, name, new_name, config)
            except NetdevError:
                _move_back(host, pod, temp, host_fd, name)
                raise
        except NetdevError:
            if was_up:
                _quietly(lambda: host.link("set", ifname=name, state="up"))
            raise


def _finish_inject(
    pod: IPRoute, temp: str, name: str, new_name: str, config: DeviceConfig | None
) -> int:
    dev = _link(pod, temp)
    if dev is None:
        raise NetdevError(f"device {temp!r} (host {name!r}) vanished after the move")
    index = dev["index"]
    _step(f"set alias of {temp!r}", lambda: pod.link("set", index=index, ifalias=name))
    _step(
        f"rename device {temp!r} to {new_name!r}",
        lambda: pod.link("set", index=index, ifname=new_name),
    )
    try:
        _step(f"set {new_name!r} up", lambda: pod.link("set", index=index, state="up"))
        if config is not None:
            _configure(pod, index, new_name, config)
    except NetdevError:
        _quietly(lambda: pod.link("set", index=index, state="down"))
        _quietly(lambda: pod.link("set", index=index, ifname=temp))
        raise
    return int(index)


def _move_back(host: IPRoute, pod: IPRoute, temp: str, host_fd: int, name: str) -> None:
    """Undo a half-done injection: ``temp`` from the pod back to the host, renamed ``name``."""
    indices = pod.link_lookup(ifname=temp)
    if indices:
        _quietly(lambda: pod.link("set", index=indices[0], net_ns_fd=host_fd))
    back = host.link_lookup(ifname=temp)
    if back:
        _quietly(lambda: host.link("set", index=back[0], ifname=name))


def release(netns_path: str, ifname: str) -> str:
    """Move device ``ifname`` out of ``netns_path`` to the host, down, under its saved name.

    Returns the name it has on the host (its alias, which :func:`inject` set; without an alias
    it keeps the temporary ``temp_<ifindex>`` name, as upstream's does).
    """
    _check_name(ifname, "new_name")
    with _namespaces(netns_path) as (host, pod, host_fd, pod_fd):
        dev = _link(pod, ifname)
        if dev is None:
            raise NetdevError(f"network device {ifname!r} not found in {netns_path}")
        index = dev["index"]
        was_up = bool(dev["flags"] & _IFF_UP)
        _step(f"set {ifname!r} down", lambda: pod.link("set", index=index, state="down"))
        temp = f"temp_{index}"
        try:
            _step(
                f"rename {ifname!r} to {temp!r}",
                lambda: pod.link("set", index=index, ifname=temp),
            )
            _step(
                f"move {temp!r} to the host network namespace",
                lambda: pod.link("set", index=index, net_ns_fd=host_fd),
            )
        except NetdevError:
            _quietly(lambda: pod.link("set", index=index, ifname=ifname))
            if was_up:
                _quietly(lambda: pod.link("set", index=index, state="up"))
            raise
        moved = _link(host, temp)
        if moved is None:
            raise NetdevError(f"device {temp!r} not found on the host after the move")
        alias = moved.get("IFLA_IFALIAS") or ""
        if not alias:
            return temp
        try:
            _step(
                f"restore {temp!r} to its original name {alias!r}",
                lambda: host.link("set", index=moved["index"], ifname=alias),
            )
        except NetdevError:
            # Back into the pod under its name, so that a later stop can retry.
            _quietly(lambda: host.link("set", index=moved["index"], net_ns_fd=pod_fd))
            back = pod.link_lookup(ifname=temp)
            if back:
                _quietly(lambda: pod.link("set", index=back[0], ifname=ifname))
                if was_up:
                    _quietly(lambda: pod.link("set", index=back[0], state="up"))
            raise
        return str(alias)
