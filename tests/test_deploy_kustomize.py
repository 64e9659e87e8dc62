"""deploy/kustomize: every plugin's manifests render, validate against the Kubernetes OpenAPI
schemas offline, mount what the plugin needs, and the DaemonSet's command line works with the
plugin's real command (it registers with those flags and the ConfigMap's configuration)."""

from __future__ import annotations

import copy
import fnmatch
import functools
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from _packaging import ROOT, command_of, plugin_dirs

KUSTOMIZE = ROOT / "deploy/kustomize"
PLUGINS = [pytest.param(d, id=d.name) for d in plugin_dirs()]
VARIANTS = ["", "local"]
K8S_VERSION = kubernetes_validate.utils.latest_version()


@functools.cache
def _generator() -> Any:
    path = ROOT / "deploy/generate_kustomize.py"
    spec = importlib.util.spec_from_file_location("generate_kustomize", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# -- a small renderer for the kustomize features these manifests use ------------------------


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    for op in operations:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]
        ]
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert op["op"] in ("add", "replace"), op
        if op["op"] == "replace":
            assert last in node, f"replace of missing {op['path']}"
        node[last] = op["value"]


def _set_images(objects: list[dict[str, Any]], images: list[dict[str, str]]) -> None:
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            name, _, tag = container["image"].partition(":")
            for image in images:
                if fnmatch.fnmatchcase(name, image["name"]):
                    name = image.get("newName", name)
                    tag = image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name


def _apply(kustomization: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    known = {"apiVersion", "kind", "resources", "components", "namespace", "images", "patches"}
    assert set(kustomization) <= known, set(kustomization) - known
    if "namespace" in kustomization:
        for obj in objects:
            obj["metadata"]["namespace"] = kustomization["namespace"]
    _set_images(objects, kustomization.get("images", []))
    for patch in kustomization.get("patches", []):
        targets = [o for o in objects if o["kind"] == patch["target"]["kind"]]
        assert targets, patch
        for obj in targets:
            _json_patch(obj, yaml.safe_load(patch["patch"]))


def render(directory: Path) -> list[dict[str, Any]]:
    """What ``kustomize build directory`` gives for resources, components, namespace,
    images and JSON patches (anything else fails the test)."""
    kustomization = _load(directory / "kustomization.yaml")[0]
    assert kustomization["kind"] in ("Kustomization", "Component")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        assert path.is_relative_to(KUSTOMIZE), path
        objects += render(path) if path.is_dir() else copy.deepcopy(_load(path))
    for component in kustomization.get("components", []):
        _apply(_load(directory / component / "kustomization.yaml")[0], objects)
    _apply(kustomization, objects)
    return objects


def _rendered(plugin: Path, variant: str) -> dict[str, dict[str, Any]]:
    objects = render(KUSTOMIZE / plugin.name / variant)
    by_kind = {o["kind"]: o for o in objects}
    assert len(by_kind) == len(objects), "one object of each kind"
    return by_kind


# -- tests ----------------------------------------------------------------------------------


def test_manifests_are_generated_and_up_to_date() -> None:
    assert _generator().main(["--check"]) == 0, "run python deploy/generate_kustomize.py"
    assert sorted(p.name for p in KUSTOMIZE.iterdir() if p.name != "components") == sorted(
        d.name for d in plugin_dirs()
    )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("plugin", PLUGINS)
def test_objects_validate_against_kubernetes_schemas(plugin: Path, variant: str) -> None:
    objects = _rendered(plugin, variant)
    assert "DaemonSet" in objects
    for obj in objects.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == "kube-system"
    container = objects["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    version = _generator().version_of(plugin)
    assert container["image"] == f"localhost/nri-plugin-{plugin.name}:{version}"
    assert container["imagePullPolicy"] == ("Never" if variant == "local" else "IfNotPresent")


@pytest.mark.parametrize("plugin", PLUGINS)
def test_daemonset_runs_as_a_node_plugin_must(plugin: Path) -> None:
    objects = _rendered(plugin, "")
    pod = objects["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-node-critical"
    assert "securityContext" not in pod  # nothing like runAsNonRoot at pod level
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["runAsUser"] == 0 and "runAsNonRoot" not in security
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "--reconnect" in container["args"]
    resources = container["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    # the socket's directory, so that a restarted runtime's new socket is seen
    socket = volumes[mounts["/var/run/nri"]["name"]]
    assert socket["hostPath"] == {"path": "/var/run/nri", "type": "Directory"}
    assert not any(v.get("hostPath", {}).get("type") == "Socket" for v in volumes.values())
    sample = plugin / "sample-config.yaml"
    if sample.is_file():
        assert objects["ConfigMap"]["data"]["config.yaml"] == sample.read_text()
        config_mount = mounts["/etc/nri/plugin"]
        assert config_mount["readOnly"] is True
        assert (
            volumes[config_mount["name"]]["configMap"]["name"]
            == objects["ConfigMap"]["metadata"]["name"]
        )


@pytest.mark.parametrize(
    ("plugin", "host_paths"),
    [
        ("device-injector", {"/dev": "/dev", "/run/udev": "/run/udev"}),
        ("hook-injector", {"/usr/share/containers/oci/hooks.d": "/usr/share/containers/oci/hooks.d",
                           "/etc/containers/oci/hooks.d": "/etc/containers/oci/hooks.d"}),
        ("resource-tuner", {"/sys": "/sys"}),
    ],
)  # fmt: skip
def test_host_paths_the_plugin_reads(plugin: str, host_paths: dict[str, str]) -> None:
    pod = _rendered(ROOT / "plugins" / plugin, "")["DaemonSet"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = {
        volumes[m["name"]]["hostPath"]["path"]: m["mountPath"]
        for m in pod["containers"][0]["volumeMounts"]
        if "hostPath" in volumes[m["name"]] and m.get("readOnly")
    }
    assert host_paths.items() <= mounted.items()


def test_renderer_agrees_with_kubectl_kustomize() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    for plugin in plugin_dirs():
        for variant in VARIANTS:
            directory = KUSTOMIZE / plugin.name / variant
            done = subprocess.run(
                [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
            )
            theirs = sorted(_load_text(done.stdout), key=lambda o: o["kind"])
            ours = sorted(render(directory), key=lambda o: o["kind"])
            assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True), directory


def _load_text(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_daemonset_command_line_registers(plugin: Path, tmp_path: Path, nri_runtime) -> None:  # type: ignore[no-untyped-def]
    """The manifest's args, with its ConfigMap as the file, start the real plugin command."""
    objects = _rendered(plugin, "")
    args = list(objects["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["args"])
    if "--config" in args:
        config = tmp_path / "config.yaml"
        config.write_text(objects["ConfigMap"]["data"]["config.yaml"])
        args[args.index("--config") + 1] = str(config)
    process = subprocess.Popen(
        [command_of(plugin), *args, "--socket-path", nri_runtime.socket_path],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        try:
            nri_runtime.wait_for_plugins(1)
        except TimeoutError:
            process.terminate()
            raise AssertionError(process.communicate(timeout=10)[1]) from None
        assert all(p.full_name.endswith(f"-{plugin.name}") for p in nri_runtime.plugins)
    finally:
        process.terminate()
        process.wait(timeout=10)
