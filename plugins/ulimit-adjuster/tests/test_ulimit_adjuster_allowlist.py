"""The ``allow`` section through the real command: refused, ignored and allowed pods."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nri_ulimit_adjuster import Config

from nri.adaptation import PluginError
from nri.mock import MockRuntime
from nri.stub import load_config_with_allowlist
from nri.testing import allow_example

KEY = "ulimits.noderesource.dev/container.app"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
README = PLUGIN_DIR / "README.md"
SAMPLE = PLUGIN_DIR / "sample-config.yaml"
NOFILE = "[{type: nofile, soft: 1024, hard: 4096}]"
ALLOW = """
allow:
  namespaces: ["ml-*"]
  pod-selector:
    matchExpressions: [{key: tier, operator: NotIn, values: [web]}]
  on-denied: ON_DENIED
"""


def nofile(spec: dict[str, object]) -> list[object]:
    process = spec.get("process", {})
    assert isinstance(process, dict)
    return [r for r in process.get("rlimits", []) if r["type"] == "RLIMIT_NOFILE"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("on_denied", ["refuse", "ignore"])
async def test_only_allowed_pods_get_their_rlimits(tmp_path: Path, on_denied: str) -> None:
    config = tmp_path / "ulimits.yaml"
    config.write_text(ALLOW.replace("ON_DENIED", on_denied))
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, "-m", "nri_ulimit_adjuster", "--config", str(config)],
            name="ulimit-adjuster",
            idx="10",
        )
        allowed = await rt.run_pod("a", namespace="ml-train", annotations={KEY: NOFILE})
        ctr = await rt.create_container(allowed, "app")
        assert nofile(ctr.spec) == [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}]

        for namespace, labels in (("default", {}), ("ml-web", {"tier": "web"})):
            denied = await rt.run_pod(
                "d-" + namespace, namespace=namespace, labels=labels, annotations={KEY: NOFILE}
            )
            if on_denied == "refuse":
                with pytest.raises(PluginError, match="may not request injection"):
                    await rt.create_container(denied, "app")
            else:
                ctr = await rt.create_container(denied, "app")
                assert nofile(ctr.spec) == []

        # a pod outside the allowlist that asks for nothing is not refused
        plain = await rt.run_pod("plain", namespace="default")
        await rt.create_container(plain, "app")


def test_sample_config_example() -> None:
    example = allow_example(SAMPLE)
    allow = load_config_with_allowlist(example, Config, source=str(SAMPLE)).allow
    assert allow.namespaces == ("ml-*",)
    assert allow.on_denied == "refuse"


def test_readme_example() -> None:
    example = allow_example(README)
    allow = load_config_with_allowlist(example, Config, source="README.md").allow
    assert allow.on_denied == "ignore"
    assert allow.allows("ml-train", {})
    assert allow.allows("ml-train", {"tier": "batch"})
    assert not allow.allows("ml-web", {"tier": "web"})
    assert not allow.allows("default", {})
