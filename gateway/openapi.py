"""The committed OpenAPI document: `python -m gateway.openapi` writes it; a test
fails when the code and the file drift apart."""

import json
from pathlib import Path

OPENAPI_FILE = Path(__file__).with_name("openapi.json")


def render() -> str:
    from gateway.app import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OPENAPI_FILE.write_text(render())
    print(f"wrote {OPENAPI_FILE}")
