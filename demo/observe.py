"""Run one plugin of the demo behind a tracer, and show the run's metrics at its end.

``tox -e demo`` starts it as an external plugin of the mock runtime::

    python demo/observe.py --runtime RUNTIME_SOCK --listen TRACE_SOCK -- nri-network-logger --idx 70

It does what ``nri-trace --listen TRACE_SOCK --runtime RUNTIME_SOCK`` does (with the same
:class:`nri.trace.TraceProxy`) and writes nri-trace's one-line summary of every message
between the plugin and the runtime to stderr, which the mock runtime shows under the step
it belongs to. Then it starts the plugin command, connected to TRACE_SOCK and with a
``--metrics-address`` of its own. When the runtime stops it after the last step (SIGTERM),
it prints a few lines of the runtime's metrics (the mock runtime's ``--metrics-address``,
found as the listening TCP socket of this process's parent) and of the plugin's on stdout,
before the runtime's verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import urllib.request
from collections.abc import Sequence

from nri.trace import Record, TraceProxy, render_record

#: Histograms are summed up by their ``_count`` (requests, handler calls); their buckets,
#: ``_sum`` and the ``_created`` timestamps of every family are left out.
SKIPPED_SUFFIXES = ("_bucket", "_sum", "_created")


def say(text: str) -> None:
    """Write whole lines to stderr at once: the plugin's lines and the trace's never mix."""
    os.write(2, (text.rstrip("\n") + "\n").encode())


async def relay(stream: asyncio.StreamReader) -> None:
    """Pass the plugin's stderr on, line by line."""
    while line := await stream.readline():
        say(line.decode(errors="replace"))


def listening_ports(pid: int) -> list[int]:
    """The local IPv4 TCP ports process ``pid`` listens on (Linux: /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports = []
    with open("/proc/net/tcp") as table:
        for row in table.read().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rpartition(":")[2], 16))
    return sorted(ports)


def scrape(pid: int, keep: Sequence[str]) -> list[str]:
    """The samples of the metrics endpoint of ``pid`` whose name starts with one of ``keep``,
    as exposition lines; zero-valued and histogram detail samples are left out."""
    from prometheus_client.parser import text_string_to_metric_families

    ports = listening_ports(pid)
    if not ports:
        return [f"(process {pid} serves no metrics)"]
    url = f"http://127.0.0.1:{ports[0]}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    lines = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(SKIPPED_SUFFIXES) or sample.value == 0:
                continue
            if not sample.name.startswith(tuple(keep)):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            lines.append(f"{sample.name}{{{labels}}} {sample.value:g}".replace("{}", ""))
    return lines


def print_metrics(plugin_pid: int) -> None:
    """Print what the runtime and the plugin measured during the run."""
    try:
        # One plugin's request counts are enough to show the request histogram.
        runtime = [
            line
            for line in scrape(os.getppid(), ["nri_adaptation_"])
            if "_duration_" not in line or 'plugin="10-ulimit-adjuster"' in line
        ]
        plugin = scrape(plugin_pid, ["nri_plugin_"])
    except (OSError, ValueError) as exc:
        print(f"observe.py: cannot read the metrics: {exc}", flush=True)
        return
    print("metrics of the mock runtime (--metrics-address), non-zero samples:")
    print("\n".join(f"  {line}" for line in runtime))
    print("metrics of the traced plugin (its --metrics-address):")
    print("\n".join(f"  {line}" for line in plugin), flush=True)


async def observe(args: argparse.Namespace) -> int:
    def show(record: Record) -> None:
        say("\n".join(render_record(record)))

    proxy = TraceProxy(args.listen, args.runtime, show)
    try:
        await proxy.start()
    except OSError as exc:
        raise OSError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    command = [*args.command, "--socket-path", args.listen, "--metrics-address", "127.0.0.1:0"]
    try:
        plugin = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        await proxy.close()
        raise OSError(f"cannot start {command[0]}: {exc.strerror or exc}") from None
    assert plugin.stderr is not None
    relaying = asyncio.ensure_future(relay(plugin.stderr))
    stopped = asyncio.ensure_future(stop.wait())
    exited = asyncio.ensure_future(plugin.wait())
    try:
        await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and plugin.returncode is None:
            print_metrics(plugin.pid)
    finally:
        stopped.cancel()
        if plugin.returncode is None:
            plugin.terminate()
        try:
            await asyncio.wait_for(exited, 1.0)
        except TimeoutError:
            plugin.kill()
            await plugin.wait()
        await relaying
        await proxy.close()
    return 0 if stop.is_set() else plugin.returncode or 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--runtime", required=True, help="the runtime's NRI socket")
    parser.add_argument("--listen", required=True, help="socket the plugin connects to")
    parser.add_argument("command", nargs="+", help="plugin command (after --)")
    args = parser.parse_args()
    try:
        return asyncio.run(observe(args))
    except OSError as exc:
        say(f"observe.py: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
