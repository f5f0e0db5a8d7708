"""The JSON Schemas of the contract's models, committed beside this file.

Regenerate after changing a model: `python -m api_contracts.schema`; a test
fails while the files and the code disagree.
"""

import json
from pathlib import Path

from pydantic import BaseModel

from api_contracts.models import JobAccepted, JobRequest, JobStatus

SCHEMA_DIR = Path(__file__).parent
MODELS: dict[str, type[BaseModel]] = {
    "job_request": JobRequest,
    "job_accepted": JobAccepted,
    "job_status": JobStatus,
}


def render(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_all() -> list[Path]:
    paths = []
    for name, model in MODELS.items():
        path = SCHEMA_DIR / f"{name}.v1.json"
        path.write_text(render(model))
        paths.append(path)
    return paths
