"""deploy/k8s, checked offline: every standard resource against Kubernetes'
own schemas (kubernetes-validate, strict: an unknown field fails), every
ScaledObject against KEDA's CRD schema in ../shared/k8s, and what an operator
would check by hand: one GPU per worker pod, a grace period above the longest
step, real settings names, the scaling signal and its floors."""

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO, SHARED
from tests.deploy.kustomize_lite import build, containers, find, pod_spec, secret_values

K8S = REPO / "deploy" / "k8s"
BUILDS = {"base": build(K8S / "base"), "production": build(K8S / "overlays" / "production")}
KUBERNETES_VERSION = "1.33"
KEDA_CRD = SHARED / "k8s" / "keda.sh_scaledobjects.yaml"
STANDARD_KINDS = {
    "Namespace",
    "ConfigMap",
    "Secret",
    "Service",
    "StatefulSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "NetworkPolicy",
}
# Environment names in the pods that are not BACKDROP_* settings, and why.
OTHER_ENV = {
    "REDIS_PASSWORD": "the in-cluster Redis server's --requirepass",
    "REMAP_SIGTERM": "billiard/Celery: SIGTERM starts the cold (soft) shutdown",
}


def _resources(kinds: set[str]) -> list[Any]:
    return [
        pytest.param(r, id=f"{where}:{r['kind']}/{r['metadata']['name']}")
        for where, resources in BUILDS.items()
        for r in resources
        if r["kind"] in kinds
    ]


def strict_crd_schema(crd_path: Path, version: str) -> dict[str, Any]:
    """The CRD's openAPIV3Schema with unknown fields refused where it lists the
    known ones (as the API server's strict field validation does: a misspelt
    field is an error, not silently pruned)."""
    crd = yaml.safe_load(crd_path.read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


KEDA_SCHEMA = strict_crd_schema(KEDA_CRD, "v1alpha1")


def validate_scaled_object(resource: dict[str, Any]) -> None:
    assert resource["apiVersion"] == "keda.sh/v1alpha1"
    jsonschema.Draft7Validator(KEDA_SCHEMA).validate(resource)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", resource["metadata"]["name"])


def validate_standard(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


# --- every manifest validates --------------------------------------------------


def test_every_resource_is_of_a_kind_validated_here() -> None:
    for resources in BUILDS.values():
        kinds = {r["kind"] for r in resources}
        assert kinds <= STANDARD_KINDS | {"ScaledObject"}, kinds - STANDARD_KINDS
        assert {"Deployment", "ScaledObject", "NetworkPolicy", "Secret", "ConfigMap"} <= kinds


@pytest.mark.parametrize("resource", _resources(STANDARD_KINDS))
def test_every_standard_resource_validates_strictly(resource: dict[str, Any]) -> None:
    validate_standard(resource)


@pytest.mark.parametrize("resource", _resources({"ScaledObject"}))
def test_every_scaled_object_validates_against_kedas_crd(resource: dict[str, Any]) -> None:
    validate_scaled_object(resource)


def test_kedas_crd_is_the_one_sources_md_names() -> None:
    sources = (SHARED / "k8s" / "SOURCES.md").read_text()
    assert "kedacore/keda" in sources and "config/crd/bases" in sources
    crd = yaml.safe_load(KEDA_CRD.read_text())
    assert crd["spec"]["group"] == "keda.sh" and crd["spec"]["names"]["kind"] == "ScaledObject"


# --- a broken manifest fails -------------------------------------------------------


def _gpu_worker() -> dict[str, Any]:
    return copy.deepcopy(find(BUILDS["production"], "Deployment", "worker-gpu"))


def _gpu_scaled_object() -> dict[str, Any]:
    return copy.deepcopy(find(BUILDS["production"], "ScaledObject", "worker-gpu"))


def test_a_wrong_field_type_fails_kubernetes_validation() -> None:
    broken = _gpu_worker()
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "1920s"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_standard(broken)


def test_an_unknown_field_fails_only_in_strict_mode() -> None:
    broken = _gpu_worker()
    broken["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1  # not a container field
    kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=False)  # loose: passes
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_standard(broken)


def test_a_manifest_file_with_a_mistake_fails(tmp_path: Path) -> None:
    """The same check on a file: the GPU worker with the GPU limit misindented
    into the container (a typo an editor makes)."""
    text = (K8S / "base" / "worker-gpu.yaml").read_text()
    broken = text.replace("limits: {memory: 12Gi, nvidia.com/gpu: 1}", "limits: 12Gi")
    assert broken != text
    (tmp_path / "worker-gpu.yaml").write_text(broken)
    deployment = next(d for d in yaml.safe_load_all(broken) if d["kind"] == "Deployment")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_standard(deployment)


@pytest.mark.parametrize(
    "mistake",
    ["threshold as a number", "minReplicaCount as text", "misspelt field", "trigger without type"],
)
def test_a_broken_scaled_object_fails_the_crd_schema(mistake: str) -> None:
    broken = _gpu_scaled_object()
    spec = broken["spec"]
    if mistake == "threshold as a number":
        spec["triggers"][0]["metadata"]["threshold"] = 2  # metadata values are strings
    elif mistake == "minReplicaCount as text":
        spec["minReplicaCount"] = "one"
    elif mistake == "misspelt field":
        spec["minReplicas"] = spec.pop("minReplicaCount")  # the HPA's name, not KEDA's
    else:
        del spec["triggers"][0]["type"]
    with pytest.raises(jsonschema.ValidationError):
        validate_scaled_object(broken)


def test_an_overlay_patch_for_a_missing_resource_fails(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{K8S / 'base'}]\npatches:\n  - path: p.yaml\n"
    )
    (overlay / "p.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker-gpus}\nspec: {}\n"
    )
    with pytest.raises(LookupError):
        build(overlay)


# --- what an operator checks --------------------------------------------------------


def _deployments(where: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in BUILDS[where] if r["kind"] == "Deployment"}


def _worker_container(deployment: dict[str, Any]) -> dict[str, Any]:
    spec = pod_spec(deployment)
    assert spec is not None
    (container,) = [c for c in spec["containers"] if c["command"][:2] == ["backdrop", "worker"]]
    return container


def _workers(where: str) -> dict[str, dict[str, Any]]:
    return {
        name: d
        for name, d in _deployments(where).items()
        if any(c["command"][:2] == ["backdrop", "worker"] for c in pod_spec(d)["containers"])  # type: ignore[index]
    }


def _queues(container: dict[str, Any]) -> list[str]:
    command = container["command"]
    return command[command.index("--queues") + 1].split(",")


def _parse_backdrop(command: list[str]) -> Any:
    from worker.cli import _parser

    assert command[0] == "backdrop", command
    return _parser().parse_args(command[1:])


@pytest.mark.parametrize("where", BUILDS)
def test_every_backdrop_command_in_the_pods_is_a_real_one(where: str) -> None:
    """Commands and probes parse with the `backdrop` command's own parser."""
    for container in containers(BUILDS[where]):
        commands = [container.get("command", [])]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if "exec" in container.get(probe, {}):
                commands.append(container[probe]["exec"]["command"])
        for command in commands:
            if command[:1] == ["backdrop"]:
                _parse_backdrop(command)


@pytest.mark.parametrize("where", BUILDS)
def test_the_gpu_workers_hold_one_gpu_and_one_process_each(where: str) -> None:
    gpu = {n: d for n, d in _workers(where).items() if n.startswith("worker-gpu")}
    assert set(gpu) == {"worker-gpu", "worker-gpu-batch"}
    for name, deployment in gpu.items():
        container = _worker_container(deployment)
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1, name
        args = _parse_backdrop(container["command"])
        assert args.concurrency == 1 and not args.gpus, f"{name}: one process, its own GPU"
        spec = pod_spec(deployment)
        assert spec and spec["nodeSelector"], f"{name} lands on GPU nodes"
        assert any(
            t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
            for t in spec["tolerations"]
        ), f"{name} tolerates the GPU nodes' taint"
    for name, deployment in _workers(where).items():
        if name not in gpu:
            limits = _worker_container(deployment)["resources"].get("limits", {})
            assert "nvidia.com/gpu" not in limits, f"{name} must not hold a GPU"


# What an operator writes over the overlay's example values (its .env.example
# files, which production refuses as they stand).
FILLED_IN = {"BACKDROP_REDIS__URL": "redis://:filled-in-redis-password@redis:6379/0",
             "BACKDROP_STORAGE__ACCESS_KEY": "filled-in-access-key",
             "BACKDROP_STORAGE__SECRET_KEY": "filled-in-secret-key",
             "BACKDROP_WEBHOOKS__SECRET": "whsec_filled-in-webhook-secret"}  # fmt: skip


def _settings_env(where: str, deployment: str | None = None,
                  filled: bool = True) -> dict[str, str]:  # fmt: skip
    """The environment a pod gets: the ConfigMap, both Secrets (the overlay's
    from its .env.example files, filled in unless `filled` is False) and the
    container's own env."""
    resources = BUILDS[where]
    env = dict(find(resources, "ConfigMap", "backdrop-settings")["data"])
    for secret in ("backdrop-secrets", "backdrop-worker-secrets"):
        values = secret_values(find(resources, "Secret", secret))
        if where == "production" and filled:
            values.update({k: v for k, v in FILLED_IN.items() if k in values})
        env.update(values)
    if deployment:
        container = _worker_container(find(resources, "Deployment", deployment))
        env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    import os

    from worker.runtime.settings import Settings

    for name in list(os.environ):
        if name.startswith("BACKDROP_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize("where", BUILDS)
def test_every_worker_outlasts_its_longest_step_and_hands_back_on_sigterm(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, deployment in _workers(where).items():
        settings = _settings(_settings_env("production", name), monkeypatch)
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]  # type: ignore[index]
        assert grace > settings.queue.hard_time_limit, f"{name}: {grace} s"
        env = {e["name"]: e.get("value") for e in _worker_container(deployment)["env"]}
        assert env["REMAP_SIGTERM"] == "SIGQUIT", f"{name}: SIGTERM is the soft shutdown"


@pytest.mark.parametrize("where", BUILDS)
def test_the_workers_liveness_is_by_consumption(where: str) -> None:
    for name, deployment in _workers(where).items():
        container = _worker_container(deployment)
        for probe in ("livenessProbe", "startupProbe"):
            command = container[probe]["exec"]["command"]
            assert _parse_backdrop(command).check, f"{name} {probe}: {command}"
        assert container["livenessProbe"]["timeoutSeconds"] >= 10, "it asks Redis"


def _setting_exists(name: str) -> bool:
    """BACKDROP_A__B names field b of field a in the workers' or the gateway's
    settings (pydantic-settings' prefix and nesting)."""
    from pydantic import BaseModel

    from gateway.settings import GatewaySettings
    from worker.runtime.settings import Settings

    if not name.startswith("BACKDROP_"):
        return False
    for model in (Settings, GatewaySettings):
        current: Any = model
        for part in name.removeprefix("BACKDROP_").lower().split("__"):
            fields = current.model_fields if isinstance(current, type) else {}
            if part not in fields:
                break
            annotation = fields[part].annotation
            current = annotation if isinstance(annotation, type) and issubclass(
                annotation, BaseModel) else None  # fmt: skip
        else:
            return True
    return False


def test_the_settings_name_check_refuses_a_misspelt_name() -> None:
    assert _setting_exists("BACKDROP_QUEUE__HARD_TIME_LIMIT")
    assert _setting_exists("BACKDROP_GATEWAY__MAX_UPLOAD_BYTES")
    assert not _setting_exists("BACKDROP_QUEUE__HARD_TIME_LIMT")
    assert not _setting_exists("BACKDROP_QUEUE__HARD_TIME_LIMIT__X")
    assert not _setting_exists("QUEUE__HARD_TIME_LIMIT")


@pytest.mark.parametrize("where", BUILDS)
def test_every_environment_name_is_a_real_setting(where: str) -> None:
    names: set[str] = set()
    for resource in BUILDS[where]:
        if resource["kind"] == "ConfigMap" and resource["metadata"]["name"] == "backdrop-settings":
            names |= set(resource["data"])
        if resource["kind"] == "Secret":
            names |= set(secret_values(resource))
    for container in containers(BUILDS[where]):
        names |= {e["name"] for e in container.get("env", [])}
    unknown = sorted(n for n in names if n not in OTHER_ENV and not _setting_exists(n))
    assert not unknown, f"not settings: {unknown}"


def test_the_production_overlay_makes_valid_production_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.settings import GatewaySettings

    settings = _settings(_settings_env("production", "worker-gpu"), monkeypatch)
    assert settings.environment == "production"
    assert settings.segmentation.backend == "frozen_graph"
    assert settings.storage.secure and settings.metrics.port == 9808
    GatewaySettings()  # the same environment parses for the gateway


@pytest.mark.parametrize(("where", "filled"), [("base", True), ("production", False)])
def test_the_placeholder_and_example_secrets_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, where: str, filled: bool
) -> None:
    """The base's placeholders, and the overlay's .env.example values copied
    without their edit: neither the workers nor the gateway (which faces the
    internet with the same keys) start with them."""
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    env = _settings_env(where, "worker-gpu", filled=filled)
    with pytest.raises(ValidationError, match="production needs"):
        _settings(env, monkeypatch)
    with pytest.raises(ValidationError, match="production needs"):
        GatewaySettings()


def _trigger(scaled_object: dict[str, Any]) -> dict[str, str]:
    (trigger,) = scaled_object["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    return trigger["metadata"]


@pytest.mark.parametrize("where", BUILDS)
def test_the_gpu_pools_scale_on_the_real_backlog(where: str) -> None:
    """Held + in flight of the pool's priority, from metrics the gateway
    really exports; only the batch pool goes to zero."""
    exported = (REPO / "gateway" / "metrics.py").read_text()
    pools = {"worker-gpu": "interactive", "worker-gpu-batch": "batch"}
    for name, priority in pools.items():
        scaled = find(BUILDS[where], "ScaledObject", name)
        query = _trigger(scaled)["query"]
        for metric in ("backdrop_held_jobs", "backdrop_inflight_jobs"):
            assert f'max({metric}{{priority="{priority}"}})' in query, query
            assert f'"{metric}"' in exported, f"the gateway exports no {metric}"
        assert "backdrop_queue_depth" not in query, "Celery's list is capped by the window"
        assert scaled["spec"]["scaleTargetRef"]["name"] == name
    interactive = find(BUILDS[where], "ScaledObject", "worker-gpu")["spec"]
    batch = find(BUILDS[where], "ScaledObject", "worker-gpu-batch")["spec"]
    assert interactive["minReplicaCount"] >= 1
    assert batch["minReplicaCount"] == 0
    assert batch["cooldownPeriod"] >= 300 and "activationThreshold" in _trigger(
        find(BUILDS[where], "ScaledObject", "worker-gpu-batch"))  # fmt: skip
    for scaled in (interactive, batch):
        assert scaled["maxReplicaCount"] > scaled["minReplicaCount"]


@pytest.mark.parametrize("where", BUILDS)
def test_each_pool_consumes_the_queues_its_signal_counts(where: str) -> None:
    workers = _workers(where)
    assert _queues(_worker_container(workers["worker-gpu"])) == ["gpu", "gpu-batch"]
    assert _queues(_worker_container(workers["worker-gpu-batch"])) == ["gpu-batch"]
    assert _queues(_worker_container(workers["worker-cpu"])) == ["cpu"]


@pytest.mark.parametrize("where", BUILDS)
def test_autoscaled_deployments_leave_the_count_to_the_autoscaler(where: str) -> None:
    targets = {
        r["spec"]["scaleTargetRef"]["name"]
        for r in BUILDS[where]
        if r["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}
    }
    deployments = _deployments(where)
    assert targets <= set(deployments)
    for name in targets:
        assert "replicas" not in deployments[name]["spec"], f"{name}: applying would reset it"


@pytest.mark.parametrize("where", BUILDS)
def test_the_gateway_has_probes_an_autoscaler_and_a_disruption_budget(where: str) -> None:
    gateway = _deployments(where)["gateway"]
    (container,) = pod_spec(gateway)["containers"]  # type: ignore[index]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    # Liveness on the probe listener the gateway opens (outside max_connections),
    # readiness on the public port (a pod held at its cap leaves the Service).
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert container["livenessProbe"]["httpGet"]["port"] == "probe"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert env["BACKDROP_GATEWAY__PROBE_PORT"] == str(ports["probe"]) != str(ports["http"])
    service = find(BUILDS[where], "Service", "gateway")["spec"]
    assert {p.get("targetPort") for p in service["ports"]} <= {"http", 8080}, "probe stays inside"
    assert find(BUILDS[where], "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] >= 2
    budget = find(BUILDS[where], "PodDisruptionBudget", "gateway")["spec"]
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def _pods_selected(resources: list[dict[str, Any]], selector: dict[str, str]) -> list[str]:
    return [
        r["metadata"]["name"]
        for r in resources
        if pod_spec(r) is not None
        and selector.items() <= r["spec"]["template"]["metadata"]["labels"].items()
    ]


@pytest.mark.parametrize("where", BUILDS)
def test_redis_and_metrics_stay_inside(where: str) -> None:
    resources = BUILDS[where]
    policies = {r["metadata"]["name"]: r["spec"] for r in resources if r["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    redis = policies["redis"]
    assert _pods_selected(resources, redis["podSelector"]["matchLabels"]) == ["redis"]
    (rule,) = redis["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}, "no namespaceSelector or ipBlock: this namespace only"
    clients = _pods_selected(resources, source["podSelector"]["matchLabels"])
    assert set(clients) == {d for d in _deployments(where)}, clients
    metrics = policies["worker-metrics"]
    assert set(_pods_selected(resources, metrics["podSelector"]["matchLabels"])) == set(
        _workers(where)
    )
    (rule,) = metrics["ingress"]
    assert [p["port"] for p in rule["ports"]] == [9808]
    assert all(set(s) == {"namespaceSelector"} for s in rule["from"])
    ingress = find(resources, "Ingress", "gateway")
    for host in ingress["spec"]["rules"]:
        for path in host["http"]["paths"]:
            routed = (
                path["path"] == "/metrics"
                if path["pathType"] == "Exact"
                else "/metrics".startswith(path["path"].rstrip("/") + "/")
            )
            assert not routed, f"the Ingress routes /metrics through {path}"


def test_the_redis_config_is_the_compose_one() -> None:
    def directives(text: str) -> set[str]:
        return {line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")}

    config = find(BUILDS["base"], "ConfigMap", "redis-config")["data"]["redis.conf"]
    assert directives(config) == directives((REPO / "deploy" / "redis.conf").read_text())
    assert {"appendonly yes", "maxmemory-policy noeviction"} <= directives(config)
    # noeviction without maxmemory grows until the pod is killed for memory
    # (then reloads the same file): a ceiling at half the limit (a rewrite forks).
    (ceiling,) = [d.split()[1] for d in directives(config) if d.startswith("maxmemory ")]
    redis = find(BUILDS["base"], "StatefulSet", "redis")["spec"]["template"]["spec"]
    limit = redis["containers"][0]["resources"]["limits"]["memory"]
    units = {"gb": 2**30, "mb": 2**20, "Gi": 2**30, "Mi": 2**20}
    size = {v: int(v[:-2]) * units[v[-2:]] for v in (ceiling, limit)}
    assert 0 < 2 * size[ceiling] <= size[limit], (ceiling, limit)


def test_the_overlay_changes_what_production_needs() -> None:
    base, production = BUILDS["base"], BUILDS["production"]
    for resources in (base, production):
        assert all(r["metadata"].get("namespace") == "backdrop" for r in resources
                   if r["kind"] != "Namespace")  # fmt: skip
    images = {c["image"] for c in containers(production) if not c["image"].startswith("redis:")}
    assert all(i.startswith("registry.example.com/") for i in images), images
    assert find(production, "Ingress", "gateway")["spec"]["tls"]
    gpu = find(production, "ScaledObject", "worker-gpu")["spec"]
    assert gpu["minReplicaCount"] == 2 and gpu["triggers"] == find(
        base, "ScaledObject", "worker-gpu")["spec"]["triggers"]  # fmt: skip
    ignored = (REPO / ".gitignore").read_text()
    assert "deploy/k8s/overlays/*/secrets.env" in ignored
