"""docker-compose.yml's structure (Docker itself does not run here)."""

import os
import re

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
VAR_REF = re.compile(r"\$\{([A-Z_]+)(:\?[^}]*|:-[^}]*)?\}")


def test_the_services_of_the_design_card_are_there() -> None:
    assert {
        "redis",
        "minio",
        "minio-setup",
        "worker-gpu",
        "worker-cpu",
        "flower",
        "gateway",
        "prometheus",
    } <= set(SERVICES)


@pytest.mark.parametrize(
    "name", ["redis", "minio", "worker-gpu", "worker-cpu", "flower", "gateway", "prometheus"]
)
def test_long_running_services_have_health_checks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"] >= 3


def test_workers_wait_for_healthy_redis_and_minio() -> None:
    for name in ("worker-gpu", "worker-cpu"):
        deps = SERVICES[name]["depends_on"]
        assert deps["redis"]["condition"] == deps["minio"]["condition"] == "service_healthy"


def test_gpu_worker_reserves_one_nvidia_gpu_and_takes_gpu_work() -> None:
    worker = SERVICES["worker-gpu"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    assert worker["command"][worker["command"].index("--queues") + 1] == "gpu,gpu-batch"
    assert worker["environment"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_redis_keeps_everything_and_evicts_nothing() -> None:
    conf = (REPO / "deploy" / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    assert re.search(r"^maxmemory [1-9][0-9]*gb$", conf, re.M), (
        "a ceiling: writes refused, not a kill"
    )
    assert "--requirepass" in SERVICES["redis"]["command"]


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_no_credentials_in_the_file_only_required_references() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    pattern = r"^\s*(\w*(?:PASSWORD|SECRET|ACCESS_KEY|ROOT_USER)\w*): *(\S+)"
    for key in re.findall(pattern, text, re.M):
        assert key[1].startswith("${") and ":?" in key[1], key
    required = {m.group(1) for m in VAR_REF.finditer(text) if (m.group(2) or "").startswith(":?")}
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert required and required <= documented


def test_worker_environment_passes_production_settings_validation(monkeypatch) -> None:
    """The compose env, with the .env values filled in, is a valid production Settings."""
    from worker.runtime.settings import Settings

    values = {
        "REDIS_PASSWORD": "s3cret-redis",
        "MINIO_ROOT_USER": "backdrop-prod",
        "MINIO_ROOT_PASSWORD": "long-random-secret",
        "MINIO_PUBLIC_ENDPOINT": "cdn:9000",
        "WEBHOOK_SECRET": "a-long-random-webhook-secret",
    }
    env = SERVICES["worker-gpu"]["environment"]
    for name, value in env.items():
        filled = VAR_REF.sub(lambda m: values.get(m.group(1), ""), str(value))
        monkeypatch.setenv(name, filled)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.redis.url == "redis://:s3cret-redis@redis:6379/0"
    assert os.environ["BACKDROP_STORAGE__PUBLIC_ENDPOINT"] == "cdn:9000"


def test_prometheus_scrapes_the_gateway_and_every_worker_on_their_ports() -> None:
    from worker.runtime.settings import MetricsSettings

    prometheus = SERVICES["prometheus"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}  # fmt: skip
    gateway_port = SERVICES["gateway"]["command"][-1]
    port = MetricsSettings().port
    assert targets == {f"gateway:{gateway_port}", f"worker-gpu:{port}", f"worker-cpu:{port}"}


def test_the_grafana_dashboard_asks_only_for_metrics_the_code_exports() -> None:
    import json

    sources = (REPO / "worker/service/metrics.py").read_text()
    sources += (REPO / "gateway/metrics.py").read_text()
    exported = set(re.findall(r'"(backdrop_[a-z_]+)"', sources))
    dashboard = json.loads((REPO / "deploy/grafana/backdrop-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    asked = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs
             for m in re.findall(r"backdrop_[a-z_]+", e)}  # fmt: skip
    assert asked and asked <= exported, asked - exported
    assert exported <= asked, f"not on the dashboard: {exported - asked}"
