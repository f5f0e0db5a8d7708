"""Enough of kustomize to assemble deploy/k8s offline (no kustomize binary):
resources (files and directories), namespace, images, secret and config map
generators (create, replace, merge) and strategic-merge patches (maps merge,
lists of named items merge by name, other lists are replaced, as kustomize
does for the fields these manifests patch). A kustomization field it does not
know is an error, so a new feature cannot be skipped silently."""

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "images",
    "patches",
    "secretGenerator",
    "configMapGenerator",
}
CLUSTER_SCOPED = {"Namespace"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(directory: Path, env_examples: bool = True) -> list[dict[str, Any]]:
    """The resources `kubectl apply -k directory` would apply. An env file of a
    generator that is not there (secrets are kept out of git) is read from its
    `.example` twin when env_examples is set."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{directory}: kustomization fields not handled here: {sorted(unknown)}")
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        resources += build(path, env_examples) if path.is_dir() else load_documents(path)
    for kind, generators in (("Secret", "secretGenerator"), ("ConfigMap", "configMapGenerator")):
        for generator in kustomization.get(generators, []):
            _generate(resources, kind, generator, directory, env_examples)
    for patch in kustomization.get("patches", []):
        for document in load_documents(directory / patch["path"]):
            target = find(resources, document["kind"], document["metadata"]["name"])
            merged = merge(copy.deepcopy(target), document)
            target.clear()
            target.update(merged)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        for container in containers(resources):
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    return resources


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(found) != 1:
        raise LookupError(f"{len(found)} resources {kind}/{name}")
    return found[0]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as far as these manifests need it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = merge(base[key], value) if key in base else value
        return merged
    if _named_list(base) and _named_list(patch):
        merged_list = [dict(item) for item in base]
        for item in patch:
            same = [i for i, old in enumerate(merged_list) if old["name"] == item["name"]]
            if same:
                merged_list[same[0]] = merge(merged_list[same[0]], item)
            else:
                merged_list.append(item)
        return merged_list
    return patch


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _generate(
    resources: list[dict[str, Any]],
    kind: str,
    generator: dict[str, Any],
    directory: Path,
    env_examples: bool,
) -> None:
    values: dict[str, str] = {}
    for name in generator.get("envs", []):
        path = directory / name
        if not path.exists() and env_examples:
            path = directory / f"{name}.example"
        values.update(read_env_file(path))
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        values[key] = value
    if kind == "Secret":
        body = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}
    else:
        body = {"data": values}
    made = {"apiVersion": "v1", "kind": kind, "metadata": {"name": generator["name"]}, **body}
    behavior = generator.get("behavior", "create")
    if behavior == "create":
        resources.append(made)
        return
    existing = find(resources, kind, generator["name"])
    if behavior == "replace":  # the base's name and namespace stay
        made["metadata"] = existing["metadata"]
        existing.clear()
        existing.update(made)
    elif behavior == "merge":
        existing.setdefault("data", {}).update(made["data"])
    else:
        raise ValueError(f"generator behavior {behavior}")


def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path}: not KEY=VALUE: {line!r}")
            pairs[key.strip()] = value
    return pairs


def containers(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every container and init container of every pod template."""
    found = []
    for resource in resources:
        pod = pod_spec(resource)
        if pod:
            found += pod.get("initContainers", []) + pod.get("containers", [])
    return found


def pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    template = resource.get("spec", {}).get("template") if isinstance(resource, dict) else None
    return template.get("spec") if isinstance(template, dict) else None


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    values = dict(secret.get("stringData", {}))
    for key, value in secret.get("data", {}).items():
        values[key] = base64.b64decode(value).decode()
    return values
