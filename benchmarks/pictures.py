"""The README's pictures of the dials, made by the real pipeline (`run_local`):

    .venv/bin/python -m benchmarks.pictures [--size 256] [--iterations 100]

docs/dual.jpg: photo | mask | two paintings in one photo; docs/stroke_size.jpg:
style_scale 0.5, 1, 2; docs/full_resolution.jpg: a crop of the working-size
result upscaled beside the same crop of the full-resolution result. The
strength strip, docs/strength.jpg, is benchmarks.strength_dial's grid (a row on
the fixed curve and a row calibrated, per painting; benchmarks/results/
strength_dial_128.grid.jpg), so it is not drawn here.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.common import REPO

DOCS = REPO / "docs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    from tests.conftest import MODELS, PHOTOS, SHARED, STYLES
    from worker.local_job import LocalJob, run_local
    from worker.pipeline.contact_sheet import contact_sheet
    from worker.runtime.settings import Settings

    settings = Settings(models_dir=MODELS, samples_dir=SHARED / "images", allow_download=False)
    settings.intake.max_side = args.size
    photo = (PHOTOS / "grace_hopper.png").read_bytes()
    starry, waves = ((STYLES / n).read_bytes() for n in ("starry.jpg", "waves.jpg"))
    base = settings.style.model_copy(update={"iterations": args.iterations})
    bar = tqdm(total=6, desc="pictures", unit="run")

    def run(**fields: object) -> np.ndarray:
        params = base.model_copy(update=fields.pop("params", {}))  # type: ignore[arg-type]
        job = LocalJob(photo, [(starry, 1.0)], params=params, **fields)  # type: ignore[arg-type]
        result = run_local(job, settings)
        bar.update()
        return result.result

    dual_job = LocalJob(photo, [(starry, 1.0)], "dual", params=base, subject_style=(waves, 1.0))
    dual = run_local(dual_job, settings)
    bar.update()
    _save("dual.jpg", contact_sheet([("photo", dual.photo), ("mask", dual.mask),
                                     ("subject: waves, rest: starry", dual.result)]))  # fmt: skip
    scales = [(f"style_scale {k}", run(mode="full", params={"style_scale": k}))
              for k in (0.5, 1.0, 2.0)]  # fmt: skip
    _save("stroke_size.jpg", contact_sheet(scales))
    small = run(mode="background")
    full = run(mode="background", keep_original_size=True)
    bar.close()
    _save("full_resolution.jpg", _crops(small, full))


def _crops(small: np.ndarray, full: np.ndarray) -> np.ndarray:
    from worker.pipeline.contact_sheet import contact_sheet

    h, w = full.shape[:2]
    box = (slice(h // 6, h // 6 + h // 3), slice(w // 4, w // 4 + w // 2))  # the face
    upscaled = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return contact_sheet([("working size, upscaled", upscaled[box]),
                          ("output: original", full[box])], height=360)  # fmt: skip


def _save(name: str, image: np.ndarray) -> None:
    path: Path = DOCS / name
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(path)


if __name__ == "__main__":
    main()
