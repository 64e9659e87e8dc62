"""The ``allow`` section through the real command: only allowed pods get their devices."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nri_device_injector import Config

from nri.adaptation import PluginError
from nri.mock import MockRuntime
from nri.stub import load_config_with_allowlist
from nri.testing import allow_example

DEVICES = "devices.noderesource.dev/container.app"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
README = PLUGIN_DIR / "README.md"
SAMPLE = PLUGIN_DIR / "sample-config.yaml"
MOUNTS = "mounts.noderesource.dev/pod"
DEVICE = "- {path: /dev/nri-null, type: c, major: 1, minor: 3}"
MOUNT = "- {source: /tmp, destination: /scratch, type: bind, options: [rbind]}"


def device_paths(spec: dict[str, object]) -> list[str]:
    linux = spec.get("linux", {})
    assert isinstance(linux, dict)
    return [d["path"] for d in linux.get("devices", [])]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("on_denied", ["refuse", "ignore"])
async def test_only_allowed_namespaces_and_labels_get_injections(
    tmp_path: Path, on_denied: str
) -> None:
    config = tmp_path / "device-injector.yaml"
    config.write_text(
        "allow:\n"
        "  namespaces: [gpu-jobs]\n"
        "  pod-selector: {matchLabels: {team: ml}}\n"
        f"  on-denied: {on_denied}\n"
    )
    async with MockRuntime(socket_path=tmp_path / "nri.sock") as rt:
        await rt.launch_plugin(
            [sys.executable, "-m", "nri_device_injector", "--config", str(config)],
            name="device-injector",
            idx="10",
        )
        annotations = {DEVICES: DEVICE}
        allowed = await rt.run_pod(
            "a", namespace="gpu-jobs", labels={"team": "ml"}, annotations=annotations
        )
        ctr = await rt.create_container(allowed, "app")
        assert "/dev/nri-null" in device_paths(ctr.spec)

        # the right namespace without the label, and a pod-level mount annotation elsewhere
        for name, namespace, labels, asked in (
            ("b", "gpu-jobs", {"team": "web"}, annotations),
            ("c", "default", {"team": "ml"}, {MOUNTS: MOUNT}),
        ):
            denied = await rt.run_pod(name, namespace=namespace, labels=labels, annotations=asked)
            if on_denied == "refuse":
                with pytest.raises(PluginError, match=f"pod '{name}' in namespace"):
                    await rt.create_container(denied, "app")
            else:
                ctr = await rt.create_container(denied, "app")
                assert "/dev/nri-null" not in device_paths(ctr.spec)
                assert all(m["destination"] != "/scratch" for m in ctr.spec.get("mounts", []))


def test_sample_config_example() -> None:
    example = allow_example(SAMPLE)
    allow = load_config_with_allowlist(example, Config, source=str(SAMPLE)).allow
    assert allow.namespaces == ("gpu-jobs", "ml-*")
    assert allow.on_denied == "refuse"


def test_readme_example() -> None:
    example = allow_example(README)
    allow = load_config_with_allowlist(example, Config, source="README.md").allow
    assert allow.on_denied == "refuse"
    assert allow.allows("ml-train", {"team": "ml", "tier": "train"})
    assert not allow.allows("ml-train", {"team": "ml"})
    assert not allow.allows("default", {"team": "ml", "tier": "batch"})
