"""The rules plugin: apply the matching rules at CreateContainer and UpdateContainer.

The rules come from the ``--config`` file (or the configuration the runtime sends). The file
is watched: it is checked before every event and every ``poll_interval`` seconds, and a
changed file is loaded again. A file that no longer loads leaves the rules in force and is
reported on one line, once per change.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from nri.api import Adjustment, Update, pb
from nri.stub import ConfigError, Plugin, RequestError, read_config_file
from nri_rules._apply import (
    DeviceResolver,
    RuleApplyError,
    RuleConflictError,
    evaluate_create,
    evaluate_update,
    host_resolver,
    parse_rules,
)
from nri_rules._match import container_facts
from nri_rules._rules import RulesError, RuleSet

__all__ = ["DEFAULT_POLL_INTERVAL", "RulesPlugin", "load_rules_file"]

log = logging.getLogger("nri.rules")

DEFAULT_POLL_INTERVAL = 2.0
"""Seconds between background checks of the rules file."""

_StatKey = tuple[int, int, int, int]


def _stat_key(path: Path) -> _StatKey | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_rules_file(path: str | os.PathLike[str]) -> RuleSet:
    """Read and parse a rules file; RulesError or ConfigError (one line) if unusable."""
    return parse_rules(read_config_file(path), str(path))


class RulesPlugin(Plugin):
    """Apply the rules of a rules file to containers; see the package README."""

    def __init__(
        self,
        rules: RuleSet | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        resolve: DeviceResolver | None = None,
        initial_text: str | None = None,
    ) -> None:
        """Serve ``rules`` (read from ``path``, which is then watched for changes).

        ``initial_text`` is the text ``rules`` came from; the stub hands it to
        :meth:`configure` again when the runtime sends no configuration of its own.
        """
        self.rules = rules or RuleSet()
        self.path = Path(path) if path is not None else None
        self.poll_interval = poll_interval
        self.resolve = resolve or host_resolver()
        self._seen = _stat_key(self.path) if self.path is not None else None
        self._initial_text = initial_text
        self._text = self._read_text()
        self._poller: asyncio.Task[None] | None = None
        for warning in self.rules.warnings:
            log.warning("%s: %s", self.rules.source, warning)

    def _read_text(self) -> str | None:
        if self.path is None:
            return None
        try:
            return read_config_file(self.path)
        except ConfigError:
            return None

    # -- loading ----------------------------------------------------------------------------

    def reload(self) -> bool:
        """Load the file again if it changed; True if new rules are now in force.

        A file that is missing or invalid keeps the rules in force; that is logged on one
        line, once per change of the file.
        """
        if self.path is None:
            return False
        key = _stat_key(self.path)
        if key == self._seen:
            return False
        self._seen = key
        before = len(self.rules.rules)
        try:
            text = read_config_file(self.path)
            rules = parse_rules(text, str(self.path))
        except (RulesError, ConfigError) as exc:
            log.error("not reloading rules, keeping the %d rules loaded before: %s", before, exc)
            return False
        self._text = text
        self.rules = rules
        log.info("reloaded %s: %d rules", self.path, len(rules.rules))
        for warning in rules.warnings:
            log.warning("%s: %s", rules.source, warning)
        return True

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload()
            except Exception:  # keep watching whatever one check hit
                log.exception("checking %s failed", self.path)

    def stop_polling(self) -> None:
        """Stop the background checks (they restart on the next Configure)."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Take the runtime's configuration if it is not the file's text, then watch."""
        if config.strip() and config not in (self._text, self._initial_text):
            # The runtime's copy wins over --config; there is no file to watch then.
            try:
                self.rules = parse_rules(config, "rules configuration")
            except RulesError as exc:
                raise ConfigError(str(exc)) from None
            self.path = None
            for warning in self.rules.warnings:
                log.warning("%s: %s", self.rules.source, warning)
        log.info(
            "serving %d rules%s", len(self.rules.rules), f" from {self.path}" if self.path else ""
        )
        self.stop_polling()
        if self.path is not None and self.poll_interval > 0:
            self._poller = asyncio.create_task(self._poll(self.poll_interval))

    def on_close(self) -> None:
        """Stop watching while disconnected."""
        self.stop_polling()

    # -- events -----------------------------------------------------------------------------

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment | None:
        """The merged adjustment of the matching rules; a conflict fails the creation."""
        self.reload()
        facts = container_facts(pod, container)
        try:
            outcome = evaluate_create(self.rules.rules, facts, container, self.resolve)
        except (RuleApplyError, RuleConflictError) as exc:
            raise RequestError(
                f"pod {pod.namespace}/{pod.name}, container {container.name}: {exc}"
            ) from exc
        if outcome.matched:
            log.info(
                "%s/%s: applying %s",
                pod.name,
                container.name,
                ", ".join(r.label for r in outcome.matched),
            )
        return outcome.adjustment

    def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> Update | None:
        """The merged ``update`` resources of the matching rules, if any."""
        self.reload()
        facts = container_facts(pod, container)
        try:
            outcome = evaluate_update(self.rules.rules, facts, container, resources)
        except RuleConflictError as exc:
            raise RequestError(
                f"pod {pod.namespace}/{pod.name}, container {container.name}: {exc}"
            ) from exc
        if outcome.update is not None:
            log.info(
                "%s/%s: updating by %s",
                pod.name,
                container.name,
                ", ".join(r.label for r in outcome.matched if r.update is not None),
            )
        return outcome.update
