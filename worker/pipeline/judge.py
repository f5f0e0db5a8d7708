"""The judge: how a picture stands against its photo and painting, by VGG
statistics the optimization never sees (Gram matrices at the second conv of
each block, where the loss uses the first; content at block3_conv2, where the
loss uses block4_conv2). A number the optimization cannot game by construction,
for the strength dial's calibration and the benchmarks."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worker.pipeline.features import FeatureNet
from worker.pipeline.measures import content_distance, style_distance

JUDGE_STYLE = ("block1_conv2", "block2_conv2", "block3_conv2", "block4_conv3", "block5_conv2")
JUDGE_CONTENT = "block3_conv2"
JUDGE_LAYERS = (*JUDGE_STYLE, JUDGE_CONTENT)


@dataclass(frozen=True)
class Judgement:
    style: float  # Gram distance to the painting(s): lower is more painted
    content: float  # feature distance from the photo: 0 is the photo itself


def judge(
    net: FeatureNet, photo: np.ndarray, styles: Sequence[tuple[np.ndarray, float]],
    image: np.ndarray, regions: Sequence[np.ndarray] | None = None,
) -> Judgement:  # fmt: skip
    """`styles`: (painting, weight) pairs; with `regions`, painting n is judged
    inside region n only (two paintings in one photo), else blended by weight."""
    total = sum(w for _, w in styles) or 1.0
    masks: Sequence[np.ndarray | None] = [None] * len(styles) if regions is None else regions
    style = sum(
        w / total * style_distance(net, image, p, JUDGE_STYLE, mask)
        for (p, w), mask in zip(styles, masks, strict=True)
    )
    return Judgement(style, content_distance(net, image, photo, JUDGE_CONTENT))
