"""docker-compose.yml's structure (Docker itself does not run here)."""

import json
import os
import re

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
VAR_REF = re.compile(r"\$\{([A-Z_]+)(:\?[^}]*|:-[^}]*)?\}")
# What an operator writes into .env.
FILLED = {
    "REDIS_PASSWORD": "s3cret-redis-password",
    "MINIO_ROOT_USER": "backdrop-prod",
    "MINIO_ROOT_PASSWORD": "long-random-secret",
    "MINIO_SERVICE_USER": "backdrop-worker",
    "MINIO_SERVICE_PASSWORD": "another-long-random-secret",
    "MINIO_PUBLIC_ENDPOINT": "cdn:9000",
    "WEBHOOK_SECRET": "a-long-random-webhook-secret",
    "METRICS_TOKEN": "a-long-random-metrics-token",
}


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
    pattern = r"^\s*(\w*(?:PASSWORD|SECRET|ACCESS_KEY|_USER|TOKEN)\w*): *(\S+)"
    for key in re.findall(pattern, text, re.M):
        assert key[1].startswith("${") and ":?" in key[1], key
    required = {m.group(1) for m in VAR_REF.finditer(text) if (m.group(2) or "").startswith(":?")}
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert required and required <= documented


def _fill(service: str, monkeypatch) -> None:
    """The service's compose environment, with .env's values filled in."""
    for name, value in SERVICES[service]["environment"].items():
        filled = VAR_REF.sub(lambda m: FILLED.get(m.group(1), ""), str(value))
        monkeypatch.setenv(name, filled)


def test_worker_environment_passes_production_settings_validation(monkeypatch) -> None:
    """The compose env, with the .env values filled in, is a valid production Settings."""
    from worker.runtime.settings import Settings

    _fill("worker-gpu", monkeypatch)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.redis.url == "redis://:s3cret-redis-password@redis:6379/0"
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


def _published(service: str) -> list[str]:
    return [str(p) for p in SERVICES[service].get("ports", [])]


def test_only_the_gateway_and_minios_api_face_the_network() -> None:
    """Consoles without a login (Flower, Prometheus) and MinIO's root console
    answer on the machine only; presigned URLs need MinIO's API public."""
    for name in SERVICES:
        for port in _published(name):
            if port not in ("8080:8080", "9000:9000"):
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} to every interface"
    assert _published("gateway") == ["8080:8080"]


def test_the_services_use_a_limited_minio_user_and_only_workers_sign_webhooks() -> None:
    """A presigned URL names its access key to every tenant: not the root
    user's. The gateway faces the internet and delivers no webhook."""
    setup = SERVICES["minio-setup"]
    policy = json.loads(setup["environment"]["SERVICE_POLICY"])
    (statement,) = policy["Statement"]
    assert all(r.startswith("arn:aws:s3:::backdrop-") for r in statement["Resource"])
    assert not any(a.startswith("admin:") or a == "s3:*" for a in statement["Action"])
    assert "mc admin user add" in setup["command"][0] and "policy attach" in setup["command"][0]
    for name in ("gateway", "worker-gpu", "worker-cpu"):
        env = SERVICES[name]["environment"]
        assert "MINIO_SERVICE_USER" in env["BACKDROP_STORAGE__ACCESS_KEY"], name
        assert "ROOT" not in env["BACKDROP_STORAGE__SECRET_KEY"], name
        assert SERVICES[name]["depends_on"]["minio-setup"]["condition"] == (
            "service_completed_successfully")  # fmt: skip
        assert ("BACKDROP_WEBHOOKS__SECRET" in env) == (name != "gateway"), name


def test_prometheus_scrapes_the_gateway_with_the_token_it_requires() -> None:
    gateway_token = SERVICES["gateway"]["environment"]["BACKDROP_GATEWAY__METRICS_TOKEN"]
    assert VAR_REF.fullmatch(gateway_token).group(1) == "METRICS_TOKEN"  # type: ignore[union-attr]
    assert "METRICS_TOKEN" in COMPOSE["configs"]["metrics-token"]["content"]
    (mounted,) = SERVICES["prometheus"]["configs"]
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "backdrop-gateway"]
    assert mounted["source"] == "metrics-token"
    assert job["authorization"]["credentials_file"] == mounted["target"]


@pytest.mark.parametrize("name", ["redis", "minio", "worker-gpu", "worker-cpu", "gateway",
                                  "flower", "prometheus"])  # fmt: skip
def test_every_long_running_service_has_a_memory_limit(name: str) -> None:
    """Without one a 50 MP composite can push the host into the OOM killer,
    which may pick Redis or MinIO rather than the worker."""
    assert re.fullmatch(r"[0-9]+[mg]", SERVICES[name]["mem_limit"])


def test_the_gateway_starts_in_production_without_the_webhook_secret(monkeypatch) -> None:
    """The gateway has no webhook secret (only the workers sign): its
    settings, and the operator's commands run in its container, must not
    ask for one."""
    from gateway.settings import GatewaySettings
    from worker.cli import main

    for name in [n for n in os.environ if n.startswith("BACKDROP_")]:
        monkeypatch.delenv(name)
    _fill("gateway", monkeypatch)
    settings = GatewaySettings()
    assert settings.environment == "production" and settings.gateway.metrics_token
    monkeypatch.setenv("BACKDROP_REDIS__URL", "redis://127.0.0.1:6379/8")
    assert main(["tenants", "list"]) == 0


def test_minio_setup_refuses_a_weak_or_shared_root_password() -> None:
    """MinIO's admin API answers on the public :9000 whatever the console's
    binding: the root password is checked before anything is made."""
    script = SERVICES["minio-setup"]["command"][0]
    guard = script[: script.index("mc alias set")]
    assert "${#MINIO_ROOT_PASSWORD} -lt 12" in guard.replace("$$", "$")
    assert '"$$MINIO_ROOT_USER" = "$$MINIO_SERVICE_USER"' in guard and "exit 1" in guard
