"""What one job may ask of this deployment, below the contract's ceilings:
one model, read from BACKDROP_QUEUE__MAX_STYLES / __MAX_ITERATIONS by the
workers' settings and the gateway's alike, so a request the workers would
fail is refused at submit (422, nothing queued, no quota spent)."""

from pydantic import BaseModel, Field

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import MAX_ITERATIONS, MAX_STYLES, JobRequest


class JobLimits(BaseModel):
    max_styles: int = Field(16, ge=1, le=MAX_STYLES)
    max_iterations: int = Field(2000, ge=1, le=MAX_ITERATIONS)

    def check(self, request: JobRequest) -> None:
        """INVALID_REQUEST for a request past these limits."""
        if len(request.styles) > self.max_styles:
            raise BackdropError(
                ErrorCode.INVALID_REQUEST,
                f"{len(request.styles)} styles; the limit is {self.max_styles}",
            )
        iterations = request.options.iterations
        if iterations is not None and iterations > self.max_iterations:
            raise BackdropError(
                ErrorCode.INVALID_REQUEST,
                f"{iterations} iterations; the limit is {self.max_iterations}",
            )
