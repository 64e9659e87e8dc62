"""``nri-differ``: one process, one stub per index, all served concurrently."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import nri.stub
from nri.net import PLUGIN_SOCKET_ENV
from nri.stub import ConfigError, RuntimeGoneError, Stub, StubError
from nri_differ._config import DifferConfig, parse_config, parse_indices
from nri_differ._plugin import DifferPlugin, Tracker

DESCRIPTION = (
    "NRI plugin registering at several indices to show what the plugins between them "
    "change in pods and containers."
)

log = logging.getLogger("nri.differ.main")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The shared NRI plugin flags plus upstream's differ flags."""
    parser = nri.stub.argument_parser(prog, DESCRIPTION)
    group = parser.add_argument_group("differ options")
    group.add_argument(
        "--indices",
        help="comma-separated indices to register at, at least two (default: 0,99)",
    )
    group.add_argument("--log-file", help="log to this file (appending) instead of stderr")
    group.add_argument(
        "--verbose-level",
        type=int,
        choices=range(4),
        help="0: changes only; 1: also the original data; 2: also data before and after "
        "each diff; 3: also Synchronize data",
    )
    group.add_argument(
        "--yaml", action="store_true", default=None, help="print a unified YAML diff"
    )
    return parser


def build(args: argparse.Namespace) -> tuple[Tracker, list[Stub]]:
    """The shared tracker and one stub per index; ConfigError/StubError on bad input."""
    if args.idx is not None:
        raise ConfigError("--idx does not apply: nri-differ registers at every --indices index")
    if os.environ.get(PLUGIN_SOCKET_ENV):
        raise ConfigError(
            "nri-differ registers several indices and cannot run as a pre-installed plugin "
            "on one runtime-provided socket; start it as an external plugin"
        )
    config, text = DifferConfig(), None
    if args.config is not None:
        path: Path = args.config
        text = nri.stub.read_config_file(path)
        config, _ = parse_config(text, source=str(path))
    if args.indices is not None:
        config.indices = args.indices
        indices = parse_indices(args.indices, "--indices")
    else:
        indices = config.index_list(f"{args.config}: indices" if text is not None else "config")
    for flag in ("log_file", "verbose_level", "yaml"):
        value = getattr(args, flag)
        if value is not None:
            setattr(config, flag, value)
    tracker = Tracker(indices, config)
    try:
        stubs = [
            Stub(
                DifferPlugin(tracker, idx, text),
                name=args.name,
                idx=idx,
                socket_path=args.socket_path,
                config=text,
                reconnect=args.reconnect,
            )
            for idx in indices
        ]
    except StubError:
        tracker.close()
        raise
    return tracker, stubs


async def serve(stubs: Sequence[Stub]) -> int:
    """Run every stub until a signal, a Shutdown or a failure; then stop them all.

    Returns 0 after a signal or clean stop, 1 when any stub failed (runtime gone,
    registration refused).
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    runner: asyncio.Future[list[None]] = asyncio.gather(*(stub.run() for stub in stubs))
    stopper: asyncio.Future[bool] = asyncio.create_task(stopping.wait())
    waiting: set[asyncio.Future[object]] = {runner, stopper}  # type: ignore[arg-type]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if runner.done() and runner.exception() is not None:
        exc = runner.exception()
        log.error("%s", exc)
        code = 1
    elif stopper.done():
        log.info("stopping on signal")
    stopper.cancel()
    for stub in stubs:
        await stub.stop()
    results = await asyncio.gather(runner, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, asyncio.CancelledError | RuntimeGoneError | StubError
        ):
            log.error("differ stopped with an error: %s", result)
            code = 1
    return code


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and config, register at every index, serve; exits 2 on bad input."""
    parser = build_parser("nri-differ")
    args = parser.parse_args(argv)
    nri.stub.default_plugin_name(args, "differ")
    try:
        tracker, stubs = build(args)
    except (ConfigError, StubError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    nri.stub.setup_logging(args.log_level, stubs[0].name)
    try:
        code = asyncio.run(serve(stubs))
    except KeyboardInterrupt:
        code = 0
    finally:
        tracker.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
