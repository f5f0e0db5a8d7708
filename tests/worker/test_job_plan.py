"""A request resolved against the deployment's settings: quality levels and limits."""

import pytest

from api_contracts.errors import BackdropError
from api_contracts.models import JobRequest, StyleRef
from worker.runtime.settings import Settings
from worker.service.plan import JobPlan


def _plan(**options) -> JobPlan:
    request = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="s")], options=options)
    return JobPlan.resolve(request, Settings(), photo_sha="0" * 64)


def test_quality_high_doubles_the_iterations_of_the_default_recipe() -> None:
    standard, high = _plan(), _plan(quality="high")
    assert high.params.iterations == 2 * standard.params.iterations
    assert high.params.levels == standard.params.levels
    assert high.params_key() != standard.params_key(), "a different output key"
    assert _plan(quality="preview").params_key() == {"quality": "preview"}


def test_explicit_options_win_over_the_quality_and_limits_hold() -> None:
    assert _plan(quality="high", iterations=7).params.iterations == 7
    with pytest.raises(BackdropError, match="limit"):
        _plan(iterations=Settings().queue.max_iterations + 1)


def test_strength_and_stroke_size_are_options_that_change_the_output_key() -> None:
    base, weak, big = _plan(), _plan(strength=0.3), _plan(style_scale=2.0)
    assert weak.params.strength == 0.3 and big.params.style_scale == 2.0
    assert len({str(p.params_key()) for p in (base, weak, big)}) == 3
    with pytest.raises(Exception, match="strength"):
        _plan(strength=1.5)
