"""The strength dial in the service: calibrated once per photo, paintings and
recipe, stored, and read by every strength of them."""

import numpy as np
import pytest

from tests.worker.service.conftest import new_job
from worker.pipeline.png import decode_png, read_metadata
from worker.pipeline.strength_dial import DialCurve, decode_curve, encode_curve
from worker.pipeline.style_params import strength_gain
from worker.service import steps
from worker.service.plan import load_plan

pytestmark = pytest.mark.integration


def _stylized(svc, job_id: str, strength: float) -> tuple[np.ndarray, dict, str]:
    record = new_job(svc, job_id, options={"iterations": 3, "strength": strength})
    [index] = steps.segment_step(svc, job_id)
    steps.stylize_step(svc, job_id, index)
    plan = load_plan(record)
    style_sha = _style_sha(record, index)
    png = svc.store.get(svc.settings.storage.work_bucket, plan.stylized_key(style_sha))
    return decode_png(png), read_metadata(png), plan.dial_key(style_sha)


def _style_sha(record, index: int) -> str:
    sha = record.field("style_sha", output=index)
    assert sha, "the stylize step records each output's paintings hash"
    return sha


def test_a_job_uses_the_stored_dial_and_every_strength_shares_it(svc) -> None:
    svc.settings.compute.dial = "calibrated"
    _, meta, dial_key = _stylized(svc, "dial-a", 0.5)
    work = svc.settings.storage.work_bucket
    stored = decode_curve(svc.store.get(work, dial_key))
    assert meta["gain"] == pytest.approx(stored.gain_at(0.5))
    assert 0 < meta["gain"] < 4 and meta["gain"] != strength_gain(0.5), "not the fixed curve"
    # Another strength of the same photo and painting reads that dial: swap it
    # for one whose every strength below 1 is a gain of almost nothing.
    nothing = DialCurve(gains=(0.0, 1e-9, 4.0), positions=(0.0, 0.99, 1.0))
    svc.store.put(work, dial_key, encode_curve(nothing), "application/json")
    _, meta, again = _stylized(svc, "dial-b", 0.7)
    assert again == dial_key, "the strength is not part of the dial's key"
    assert meta["gain"] == pytest.approx(nothing.gain_at(0.7)) and meta["gain"] < 1e-8


def test_a_dial_is_calibrated_in_the_precision_its_plan_names(svc) -> None:
    """A bfloat16 worker resolved the job, a float32 worker stylizes it: the
    dial's ladder runs in bfloat16 and is stored under a key that says so;
    the same request resolved in float32 calibrates its own dial."""
    from tests.worker.service.conftest import small_settings
    from worker.service.context import Services

    svc.settings.compute.dial = "calibrated"
    half_settings = small_settings()
    half_settings.compute.dial = "calibrated"
    half_settings.compute.precision = "mixed_bfloat16"
    half = Services(half_settings, svc.store, svc.redis)
    curves = {}
    for job_id, first in (("dial-half", half), ("dial-full", svc)):
        record = new_job(svc, job_id, options={"iterations": 3, "strength": 0.5})
        [index] = steps.segment_step(first, job_id)
        steps.stylize_step(svc, job_id, index)
        plan = load_plan(record)
        key = plan.dial_key(_style_sha(record, index))
        curves[plan.precision] = (key, decode_curve(svc.store.get(svc.settings.storage.work_bucket,
                                                                  key)))  # fmt: skip
    (half_key, half_curve), (full_key, full_curve) = curves["mixed_bfloat16"], curves["float32"]
    assert half_key != full_key
    # One ladder in each precision: the judge places their pictures apart.
    assert half_curve.positions != full_curve.positions
