"""The strength dial's mapping, without TensorFlow: from a calibrated curve
(where each gain's picture sits) back to the gain of a strength."""

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from worker.pipeline.strength_dial import (
    LADDER,
    MAX_GAIN,
    DialCurve,
    decode_curve,
    encode_curve,
    evenness,
    gain_for,
    positions,
)
from worker.pipeline.style_params import strength_gain

# Of the shape measured on Grace Hopper with starry.jpg (benchmarks.strength_dial).
CURVE = DialCurve(gains=(0.0, *LADDER),
                  positions=(0.0, 0.03, 0.06, 0.09, 0.2, 0.4, 0.66, 0.74, 0.8, 1.0))  # fmt: skip


def test_the_dial_maps_each_measured_position_back_to_its_gain() -> None:
    assert CURVE.gain_at(0.0) == 0.0 and CURVE.gain_at(1.0) == pytest.approx(MAX_GAIN)
    for gain, place in zip(CURVE.gains[1:], CURVE.positions[1:], strict=True):
        assert CURVE.gain_at(place) == pytest.approx(gain)


def test_the_gain_rises_with_strength_and_interpolates_in_log_gain() -> None:
    gains = [CURVE.gain_at(s) for s in np.linspace(0, 1, 101)]
    assert all(b > a for a, b in itertools.pairwise(gains))
    middle = CURVE.gain_at((0.4 + 0.66) / 2)  # halfway between two ladder points
    assert middle == pytest.approx(np.sqrt(LADDER[4] * LADDER[5]))
    assert CURVE.gain_at(0.015) == pytest.approx(LADDER[0] / 2), "linear below the first"


def test_a_flat_or_backward_stretch_still_gives_a_rising_gain() -> None:
    noisy = DialCurve(gains=(0.0, 0.1, 1.0, 4.0), positions=(0.0, 0.7, 0.65, 1.0))
    gains = [noisy.gain_at(s) for s in np.linspace(0, 1, 41)]
    assert all(b >= a for a, b in itertools.pairwise(gains)) and gains[-1] == pytest.approx(4.0)


def test_a_curve_is_refused_when_its_gains_do_not_ascend_from_zero() -> None:
    with pytest.raises(ValidationError):
        DialCurve(gains=(0.1, 1.0), positions=(0.0, 1.0))
    with pytest.raises(ValidationError):
        DialCurve(gains=(0.0, 1.0, 1.0), positions=(0.0, 0.5, 1.0))
    assert decode_curve(encode_curve(CURVE)) == CURVE


def test_positions_are_the_mean_of_log_style_and_linear_content_progress() -> None:
    style = [100.0, 10.0, 1.0]  # two decades: half each in log
    content = [0.0, 30.0, 40.0]
    assert positions(style, content) == pytest.approx([0.0, 0.5 * (0.5 + 0.75), 1.0])


def test_evenness_is_the_smallest_step_over_the_largest() -> None:
    assert evenness([0, 0.25, 0.5, 0.75, 1]) == pytest.approx(1.0)
    assert evenness([0, 0.6, 0.7, 0.85, 1]) == pytest.approx(0.1 / 0.6)
    assert evenness([0, 0.6, 0.5, 0.8, 1]) == 0.0, "a step backwards is no evenness"


def test_strength_zero_needs_no_calibration_and_one_is_the_furthest_picture() -> None:
    def never() -> DialCurve:
        raise AssertionError("calibrated for the photo itself")

    assert gain_for(0.0, never) == 0.0
    assert gain_for(1.0, None) == MAX_GAIN and gain_for(0.5, None) == strength_gain(0.5)
    assert gain_for(0.5, lambda: CURVE) == CURVE.gain_at(0.5)
    # A strong painting whose middle gains went further than the top one.
    early = DialCurve(
        gains=(0.0, *LADDER), positions=(0, 0.4, 0.76, 1, 1, 0.7, 0.97, 0.99, 0.99, 1)
    )
    assert gain_for(1.0, lambda: early) == pytest.approx(LADDER[2])


def test_positions_run_to_the_furthest_picture_not_the_last() -> None:
    style = [100.0, 1.0, 10.0]  # the middle picture is nearest the painting
    content = [0.0, 40.0, 20.0]  # and furthest from the photo
    assert positions(style, content) == pytest.approx([0.0, 1.0, 0.5 * (0.5 + 0.5)])
