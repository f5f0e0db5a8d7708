"""The page starts where the API does: a person who never touches a dial gets
the picture an app that sends no options gets."""

import re
from pathlib import Path

from worker.runtime.settings import Settings

PAGE = Path(__file__).resolve().parents[2] / "gateway" / "page" / "index.html"


def test_the_pages_default_strength_is_the_apis() -> None:
    html = PAGE.read_text()
    slider = re.search(r'<input id="strength"[^>]*\bvalue="([0-9.]+)"', html)
    shown = re.search(r'<output id="strength-out"[^>]*>([0-9.]+)</output>', html)
    assert slider and shown, "the page has a strength slider and its read-out"
    api = Settings().style.strength  # what a job without a strength option gets
    assert float(slider.group(1)) == api and float(shown.group(1)) == api
