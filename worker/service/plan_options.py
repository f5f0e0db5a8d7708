"""A request's options checked against this deployment's limits and laid over
its defaults: the plan's optimization parameters (also `backdrop run`'s)."""

from pydantic import ValidationError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobOptions, JobRequest
from worker.pipeline.style_params import StyleParams
from worker.runtime.settings import Settings


def check_limits(request: JobRequest, settings: Settings) -> None:
    q, opts = settings.queue, request.options
    if len(request.styles) > q.max_styles:
        raise BackdropError(
            ErrorCode.INVALID_REQUEST,
            f"{len(request.styles)} styles; the limit is {q.max_styles}",
        )
    if opts.iterations is not None and opts.iterations > q.max_iterations:
        raise BackdropError(
            ErrorCode.INVALID_REQUEST, f"iterations above this service's limit {q.max_iterations}"
        )


def style_params_for(opts: JobOptions, settings: Settings) -> StyleParams:
    """The options given, over this deployment's defaults (also `backdrop run`'s)."""
    overrides = opts.model_dump(exclude_none=True, exclude={"size", "quality", "output"})
    base = settings.style.model_dump()
    if opts.quality == "high":
        # Twice the iterations at the same scales: an extra coarse scale was
        # measured to buy nothing at full size (256 px, 200 L-BFGS iterations:
        # one scale 1075, two scales 1091, the standard 100 iterations 1091).
        base.update(iterations=2 * base["iterations"])
    try:
        return StyleParams.model_validate({**base, **overrides})
    except ValidationError as exc:
        raise BackdropError(ErrorCode.INVALID_REQUEST, str(exc.errors()[0]["msg"])) from None
