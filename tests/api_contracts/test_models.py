"""The contract: what it accepts, what it refuses, and that its schema files match the code."""

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api_contracts.models import MAX_STYLES, JobRequest, StyleRef, check_object_key
from api_contracts.schema import MODELS, SCHEMA_DIR, render
from tests.conftest import REPO


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_schema_matches_the_code(name: str) -> None:
    committed = (SCHEMA_DIR / f"{name}.v1.json").read_text()
    assert committed == render(MODELS[name]), "run `python -m api_contracts.schema` and commit"


def test_outputs_one_per_style_or_per_blend_group() -> None:
    request = JobRequest(
        photo_key="uploads/p",
        styles=[
            StyleRef(key="a"),
            StyleRef(key="b", blend_group=1),
            StyleRef(key="c"),
            StyleRef(key="d", blend_group=1, weight=3),
        ],
    )
    assert request.outputs() == [[0], [1, 3], [2]]
    assert JobRequest(photo_key="uploads/p", mode="portrait").outputs() == [[]]


def test_a_style_is_a_key_or_a_name_not_both() -> None:
    with pytest.raises(ValidationError):
        StyleRef(key="a", name="b")
    with pytest.raises(ValidationError):
        StyleRef()
    with pytest.raises(ValidationError):
        StyleRef(name="Has Spaces")


def test_portrait_takes_no_styles_and_other_modes_need_one() -> None:
    with pytest.raises(ValidationError):
        JobRequest(photo_key="p", mode="portrait", styles=[StyleRef(key="a")])
    with pytest.raises(ValidationError):
        JobRequest(photo_key="p", mode="full")


def test_request_round_trips_through_json() -> None:
    request = JobRequest(photo_key="uploads/p", styles=[StyleRef(name="starry", weight=2)],
                         subjects=["Dog", "cat"], options={"size": 256, "seed": 4})  # fmt: skip
    again = JobRequest.model_validate_json(request.model_dump_json())
    assert again == request and again.subjects == ["dog", "cat"]


def test_unknown_fields_and_versions_are_refused() -> None:
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"photo_key": "p", "styles": [{"key": "a"}], "colour": "red"})
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"version": 2, "photo_key": "p", "styles": [{"key": "a"}]})


@pytest.mark.parametrize("init", ["Palette", "palette ", "../palette", "x" * 10_000, 1])
def test_the_start_is_one_of_a_closed_set(init: object) -> None:
    """init names code paths: anything but the four names is refused."""
    styles = [{"key": "a"}]
    ok = JobRequest.model_validate({"photo_key": "p", "styles": styles,
                                    "options": {"init": "palette"}})  # fmt: skip
    assert ok.options.init == "palette"
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"photo_key": "p", "styles": styles, "options": {"init": init}})


@given(st.text(max_size=80))
def test_object_keys_never_escape(key: str) -> None:
    try:
        checked = check_object_key(key)
    except ValueError:
        return
    parts = checked.split("/")
    assert not checked.startswith("/") and ".." not in parts and "" not in parts
    assert ":" not in checked and "\\" not in checked
    assert checked.isprintable() and " " not in checked  # no newline at the end either


def test_a_trailing_newline_is_refused_in_keys_names_and_job_ids() -> None:
    """`$` matches before a final newline: every check must hold to the end."""
    from jobstore.records import valid_job_id

    with pytest.raises(ValueError):
        check_object_key("uploads/abc\n")
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"photo_key": "p", "styles": [{"name": "starry\n"}]})
    assert not valid_job_id("abc\n") and valid_job_id("abc")


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=MAX_STYLES + 3)
)
def test_weights_and_counts_are_checked(weights: list[float]) -> None:
    try:
        request = JobRequest(photo_key="p", styles=[{"key": "a", "weight": w} for w in weights])
    except ValidationError:
        return
    assert 1 <= len(request.styles) <= MAX_STYLES
    assert all(0 < s.weight <= 1000 for s in request.styles)


def test_api_contracts_imports_no_tensorflow_or_opencv() -> None:
    code = (
        "import sys, jobstore.trusted_client, api_contracts.models, jobstore.records;"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'cv2', 'worker') if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True,
                          text=True, cwd=REPO, check=True)  # fmt: skip
    assert json.loads(done.stdout) == []


def test_an_optimizer_outside_the_list_is_refused() -> None:
    """The new road is one more named value, nothing free-form: an unknown,
    differently cased or padded name is a validation error."""
    import pydantic

    from api_contracts.models import JobOptions

    assert JobOptions(optimizer="lbfgs_adam").optimizer == "lbfgs_adam"
    for bad in ("LBFGS_ADAM", "lbfgs_adam\n", "lbfgs+adam", "sgd", "x" * 10_000):
        with pytest.raises(pydantic.ValidationError):
            JobOptions(optimizer=bad)
