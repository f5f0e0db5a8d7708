"""The layout shows the architecture: layers import only downward, no module
imports itself back through another, and service modules fit on a few screens."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# Each layer, and what it must never import (its upper layers and heavy libraries).
FORBIDDEN = {
    "api_contracts": ("worker", "gateway", "jobstore", "tensorflow", "cv2", "redis", "celery",
                      "minio"),
    "jobstore": ("worker", "gateway", "tensorflow", "cv2", "celery.signals"),
    "gateway": ("worker", "tensorflow", "cv2", "celery.signals"),
    "worker.pipeline": ("worker.service", "worker.runtime", "worker.cli", "worker.storage",
                        "worker.local_job", "celery", "redis", "minio"),
    "worker.storage": ("worker.service", "worker.runtime", "worker.cli", "worker.pipeline"),
    "worker.runtime": ("worker.service", "worker.cli", "worker.local_job", "celery"),
    "worker.service": ("worker.cli", "worker.local_job"),
}  # fmt: skip
MAX_SERVICE_LINES = 250


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("api_contracts", "jobstore", "gateway", "worker"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in the file (lazy imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


MODULES = _modules()
GRAPH = {name: {i for i in _imports(path) if i in MODULES} for name, path in MODULES.items()}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downward(layer: str) -> None:
    bad = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name == layer or name.startswith(layer + ".")
        for imported in _imports(path)
        if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN[layer])
    ]
    assert not bad, bad


def test_no_import_loops() -> None:
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in GRAPH[start] - seen:
            seen.add(nxt)
            if nxt == goal or reaches(nxt, goal, seen):
                return True
        return False

    loops = [name for name in GRAPH if reaches(name, name, set())]
    assert not loops, loops


def test_service_modules_fit_on_a_few_screens() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if name.startswith("worker.service")
        and (n := len(path.read_text().splitlines())) > MAX_SERVICE_LINES
    }
    assert not long, long


# The job store's core is redis + pydantic; only the in-house client (and its
# bounded S3 connection) add the Celery producer and the S3 client.
JOBSTORE_EDGE = {"jobstore.trusted_client", "jobstore.storage_http"}
JOBSTORE_MAY_IMPORT = ("api_contracts", "jobstore", "redis", "pydantic")


def test_the_job_store_core_needs_only_redis_and_pydantic() -> None:
    import sys

    third_party = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.startswith("jobstore") and name not in JOBSTORE_EDGE
        for imported in _imports(path)
        if imported.split(".")[0] not in sys.stdlib_module_names
        and not imported.startswith(JOBSTORE_MAY_IMPORT)
    ]
    assert not third_party, third_party


MODEL_LOADERS = {"get_segmenter", "get_feature_net", "get_judge_net", "load_feature_net"}


def test_service_steps_load_models_only_through_the_plan() -> None:
    """A job's models are the ones its plan names (worker.service.plan_models):
    a step that called a loader itself would take its own worker's choice and
    store another model's picture under the plan's key."""
    takers = set()
    for name, path in MODULES.items():
        if not name.startswith("worker.service"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and MODEL_LOADERS & {a.name for a in node.names}:
                takers.add(name)
    assert takers == {"worker.service.plan_models"}
