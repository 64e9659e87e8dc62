"""The hook-injector NRI plugin: inject matching OCI hooks into every created container."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nri.api import Adjustment
from nri.api import api_pb2 as pb
from nri.stub import Allowlist, ConfigError, Plugin, load_config_with_allowlist
from nri_hook_injector._hooks import DEFAULT_HOOK_DIRS, HookConfig, HookManager, HookMatchError

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "MAX_INJECTED_BYTES",
    "HookInjector",
    "HookInjectorConfig",
    "HookSizeError",
    "parse_config",
]

log = logging.getLogger("nri.hook_injector")

#: Seconds between background rescans of the hook directories.
DEFAULT_POLL_INTERVAL = 5.0
#: Largest encoded ``Hooks`` injected into one container (well below ttRPC's 4 MiB).
MAX_INJECTED_BYTES = 1 << 20


class HookSizeError(ValueError):
    """The hooks matching a container add up to more than :data:`MAX_INJECTED_BYTES`."""


@dataclass
class HookInjectorConfig:
    """The plugin's YAML configuration (``--config`` file or the runtime's Configure)."""

    hookDirs: list[str] | None = None
    """Hook directories, in increasing precedence; None keeps the defaults."""
    pollInterval: float | None = None
    """Seconds between background rescans; 0 disables them (files are still rechecked on
    every CreateContainer); None keeps the default."""
    allow: Allowlist = field(default_factory=Allowlist)
    """Which namespaces and pods may get hooks through their annotations (default: all);
    hooks matching on other conditions are not restricted."""


def parse_config(text: str, source: str) -> HookInjectorConfig:
    """Parse and check a YAML configuration; raises ConfigError naming ``source`` and the key."""
    config = load_config_with_allowlist(text, HookInjectorConfig, source=source)
    if config.hookDirs is not None:
        for i, directory in enumerate(config.hookDirs):
            if not directory.strip():
                raise ConfigError(f"{source}: hookDirs[{i}]: empty directory name")
    if config.pollInterval is not None and config.pollInterval < 0:
        raise ConfigError(f"{source}: pollInterval: must be >= 0, got {config.pollInterval!r}")
    return config


class HookInjector(Plugin):
    """Inject OCI hooks from hook-configuration directories (oci-hooks(5)) into containers.

    ``hook_dirs`` (from ``--hook-dirs``) wins over ``hookDirs`` of the configuration, which
    wins over :data:`DEFAULT_HOOK_DIRS`. Files are rescanned before every CreateContainer
    (only changed files are reread) and every ``poll_interval`` seconds in the background, so
    that broken files are reported promptly.
    """

    def __init__(
        self,
        hook_dirs: Sequence[str] | None = None,
        poll_interval: float | None = None,
        *,
        check_path: bool = True,
    ) -> None:
        self.fixed_dirs = tuple(hook_dirs) if hook_dirs else None
        self.fixed_interval = poll_interval
        self.check_path = check_path
        self.poll_interval = DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval
        self.manager = HookManager(self.fixed_dirs or DEFAULT_HOOK_DIRS, check_path=check_path)
        self.allow = Allowlist()
        self._poller: asyncio.Task[None] | None = None

    def apply_config(self, config: HookInjectorConfig) -> None:
        """Take the allowlist of ``config``, and its directories and poll interval unless
        flags fixed them."""
        self.allow = config.allow
        dirs = self.fixed_dirs or tuple(config.hookDirs or DEFAULT_HOOK_DIRS)
        if tuple(str(d) for d in self.manager.directories) != tuple(dirs):
            self.manager = HookManager(dirs, check_path=self.check_path)
        if self.fixed_interval is None and config.pollInterval is not None:
            self.poll_interval = config.pollInterval

    async def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Apply the configuration, load the hook files and start the background rescans."""
        self.apply_config(parse_config(config, "hook-injector configuration"))
        self.manager.refresh()
        log.info(
            "watching hook directories %s (%d hooks loaded, %d broken files)",
            ", ".join(map(str, self.manager.directories)),
            len(self.manager.hooks),
            len(self.manager.errors),
        )
        self.stop_polling()
        if self.poll_interval > 0:
            self._poller = asyncio.create_task(self._poll(self.poll_interval))

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.manager.refresh()
            except Exception:  # keep polling whatever a scan hit
                log.exception("rescanning hook directories failed")

    def stop_polling(self) -> None:
        """Stop the background rescans (they restart on the next Configure)."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    def on_close(self) -> None:
        """Stop polling while disconnected."""
        self.stop_polling()

    def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment | None:
        """Return the hooks of every matching hook file, or None when none matches."""
        name = f"{pod.name}/{container.name}" if pod.name else container.name
        self.manager.refresh()
        # Pod annotations win over the container's, as in upstream's plugin.
        annotations = {**container.annotations, **pod.annotations}
        args, has_bind_mounts = list(container.args), len(container.mounts) > 0
        matched = self.manager.matching(annotations, args, has_bind_mounts=has_bind_mounts)
        if matched and not self.allow.allows(pod.namespace, pod.labels):
            matched = self._without_denied(pod, container, matched, has_bind_mounts)
        if not matched:
            log.debug("%s: no hooks to inject", name)
            return None
        hooks = pb.Hooks()
        for hook in matched:
            hook.add_to(hooks)
        files = ", ".join(h.name for h in matched)
        size = hooks.ByteSize()
        if size > MAX_INJECTED_BYTES:
            raise HookSizeError(
                f"{name}: hooks from {files} add up to {size} bytes "
                f"(limit {MAX_INJECTED_BYTES}); not injecting them"
            )
        log.info("%s: injecting hooks from %s", name, files)
        return Adjustment().add_hooks(hooks)

    def _without_denied(
        self,
        pod: pb.PodSandbox,
        container: pb.Container,
        matched: list[HookConfig],
        has_bind_mounts: bool,
    ) -> list[HookConfig]:
        """``matched`` less the hooks that ``pod``, outside the allowlist, requested by its
        annotations; refuses the request instead with ``on-denied: refuse``.

        A hook is requested by the pod when it would not match without the pod's annotations
        (hooks matching on ``always``, ``commands`` or ``hasBindMounts`` are the operator's).
        """
        requested: dict[str, str] = {}
        for hook in matched:
            if not hook.when.annotations:
                continue
            try:
                own = hook.when.matches(container.annotations, container.args, has_bind_mounts)
            except HookMatchError:  # matched through the annotation before needing args
                own = False
            key = None if own else hook.when.annotation_in(pod.annotations)
            if key is not None:
                requested[hook.name] = key
        if not requested:
            return matched
        keys = list(dict.fromkeys(requested.values()))
        noun = "annotation" if len(keys) == 1 else "annotations"
        what = f"{noun} {', '.join(map(repr, keys))} for hook {', '.join(requested)}"
        self.allow.check(pod, what, log)  # raises unless on-denied is ignore
        return [hook for hook in matched if hook.name not in requested]
