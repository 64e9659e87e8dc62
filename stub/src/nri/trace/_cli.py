"""The ``nri-trace`` command: trace live traffic, or replay a recording against a plugin.

Exit status: 0 done (replay: every response matched), 1 replay found differences,
2 bad usage, bad recording file or a socket that cannot be used, 3 the plugin under replay
could not be started or did not connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import stat
import sys
from collections.abc import Sequence
from typing import TextIO

import nri
from nri.api import DEFAULT_SOCKET_PATH
from nri.trace._capture import CaptureError, Recorder, load_capture
from nri.trace._proxy import TraceProxy, check_runtime_socket
from nri.trace._render import EventFilter, record_data, render_record
from nri.trace._replay import ReplayError, replay
from nri.trace._tap import Record

__all__ = ["EXIT_DIFFERENT", "EXIT_OK", "EXIT_PLUGIN", "EXIT_USAGE", "PROG", "main"]

PROG = "nri-trace"
EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_USAGE = 2
EXIT_PLUGIN = 3


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _trace_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sit between an NRI runtime and its external plugins: plugins connect to "
        "--listen, each is connected on to the runtime's --runtime socket, every byte is passed "
        "on unchanged and every message is printed as it passes. "
        f"'{PROG} replay FILE --plugin CMD' replays a recording against a plugin.",
        epilog=f"see '{PROG} replay --help' for replaying recordings",
    )
    parser.add_argument(
        "--listen", required=True, metavar="PATH", help="socket the plugins connect to"
    )
    parser.add_argument(
        "--runtime",
        default=DEFAULT_SOCKET_PATH,
        metavar="PATH",
        help=f"the runtime's NRI socket (default: {DEFAULT_SOCKET_PATH})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print each payload in full (YAML)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per message (protojson payload)"
    )
    parser.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="NAMES",
        help="show only these methods/events (comma-separated, e.g. "
        "RegisterPlugin,CreateContainer or create_container); repeatable",
    )
    parser.add_argument(
        "--record", metavar="FILE", help="also write a replayable recording of the raw traffic"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="log nothing but errors on stderr (no connect/close)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {nri.__version__}")
    return parser


def _replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} replay",
        description="Play the runtime side of a recording (nri-trace --record, or a capture "
        "in the same format) against a plugin and report every response that differs from "
        "the recorded one. Exit status 0: no differences, 1: differences, 2: bad usage or "
        "recording, 3: the plugin could not be started or did not connect.",
    )
    parser.add_argument("recording", metavar="FILE", help="recording to replay")
    parser.add_argument(
        "--plugin",
        required=True,
        metavar='"CMD ARGS"',
        help="plugin command to replay against; it is started pre-connected (fd 3, like a "
        "pre-installed plugin) unless --socket is given; {socket} in it is replaced by the "
        "--socket path",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="listen here and let the plugin command connect by itself (pass it the path, "
        "e.g. --socket-path {socket})",
    )
    parser.add_argument(
        "--session",
        type=int,
        action="append",
        metavar="N",
        help="replay only this plugin connection of the recording (default: all); repeatable",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for each message from the plugin (default: 5)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="FIELD",
        help="do not compare this field (protojson path, e.g. NRIVersion, "
        "RegisterPlugin.NRIVersion or CreateContainer.adjust.env); repeatable",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per difference and a summary"
    )
    return parser


class _Printer:
    """Print records as text lines or JSON objects, filtered by ``--events``."""

    def __init__(self, events: EventFilter, *, verbose: bool, as_json: bool, out: TextIO) -> None:
        self._events, self._verbose, self._json, self._out = events, verbose, as_json, out

    def __call__(self, rec: Record) -> None:
        if not self._events(rec):
            return
        if self._json:
            text = json.dumps(record_data(rec), ensure_ascii=False, separators=(",", ":"))
        else:
            text = "\n".join(render_record(rec, verbose=self._verbose))
        try:
            print(text, file=self._out, flush=True)
        except BrokenPipeError:  # e.g. piped into head: keep forwarding, stop printing
            self._out = open(os.devnull, "w")  # noqa: SIM115


def _check_listen(path: str) -> str | None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            return f"cannot listen on {path}: directory {parent} does not exist"
        return None
    except OSError as exc:
        return f"cannot listen on {path}: {exc.strerror or exc}"
    if not stat.S_ISSOCK(mode):
        return f"cannot listen on {path}: it exists and is not a socket"
    return None


async def _trace(args: argparse.Namespace, events: EventFilter) -> int:
    recorder = None
    if args.record:
        try:
            recorder = Recorder(
                args.record,
                description=f"nri-trace between plugins on {args.listen} and "
                f"the runtime on {args.runtime}",
            )
        except OSError as exc:
            _say(f"error: cannot write recording {args.record}: {exc.strerror or exc}")
            return EXIT_USAGE
    printer = _Printer(events, verbose=args.verbose, as_json=args.json, out=sys.stdout)
    proxy = TraceProxy(args.listen, args.runtime, printer, recorder=recorder)
    try:
        try:
            await proxy.start()
        except OSError as exc:
            _say(f"error: cannot listen on {args.listen}: {exc.strerror or exc}")
            return EXIT_USAGE
        _say(f"listening on {args.listen}, forwarding to {args.runtime}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return EXIT_OK
    finally:
        await proxy.close()
        if recorder is not None:
            recorder.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nri-trace``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["replay"]:
        return _replay_main(args_list[1:])
    args = _trace_parser().parse_args(args_list)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format=f"{PROG}: %(message)s",
        stream=sys.stderr,
    )
    try:
        events = EventFilter(args.events)
    except ValueError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    problem = _check_listen(args.listen) or check_runtime_socket(args.runtime)
    if problem:
        _say(f"error: {problem}")
        return EXIT_USAGE
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_trace(args, events))
    return EXIT_OK


def _replay_main(argv: list[str]) -> int:
    args = _replay_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s", stream=sys.stderr)
    if not args.timeout > 0:
        _say("error: --timeout must be a positive number of seconds")
        return EXIT_USAGE
    try:
        command = shlex.split(args.plugin)
    except ValueError as exc:
        _say(f"error: --plugin {args.plugin!r}: {exc}")
        return EXIT_USAGE
    if not command:
        _say("error: --plugin needs a command")
        return EXIT_USAGE
    if args.socket:
        problem = _check_listen(args.socket)
        if problem:
            _say(f"error: {problem}")
            return EXIT_USAGE
    try:
        chunks = load_capture(args.recording)
    except CaptureError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    try:
        report = asyncio.run(
            replay(
                chunks,
                command,
                socket_path=args.socket,
                sessions=args.session,
                timeout=args.timeout,
                ignore=args.ignore,
            )
        )
    except ReplayError as exc:
        _say(f"error: {exc}")
        return exc.status
    except KeyboardInterrupt:
        return 130
    for line in report.lines(as_json=args.json):
        print(line, flush=True)
    return EXIT_DIFFERENT if report.differences else EXIT_OK
