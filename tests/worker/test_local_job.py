"""The in-process job (`backdrop run`'s embedded default) keeps the
contract's promises the queue keeps."""

import numpy as np
import pytest

from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
from worker.local_job import LocalJob, run_local
from worker.pipeline.style_params import StyleParams
from worker.runtime.settings import Settings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("original", [False, True])
def test_strength_zero_gives_the_photo_back_bit_for_bit(original: bool) -> None:
    """The subject's matted edge was laid over the photo (background mode),
    and at the original size the working photo upsampled."""
    settings = Settings(models_dir=MODELS, allow_download=False)
    settings.intake.max_side = 64
    job = LocalJob(photo=(PHOTOS / "grace_hopper.png").read_bytes(),
                   styles=[((STYLES / "starry.jpg").read_bytes(), 1.0)],
                   params=StyleParams(strength=0.0, iterations=2),
                   keep_original_size=original)  # fmt: skip
    done = run_local(job, settings)
    expected = read_rgb(PHOTOS / "grace_hopper.png") if original else done.photo
    assert done.result.shape == expected.shape and np.array_equal(done.result, expected)
