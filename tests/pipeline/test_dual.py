"""Two paintings in one photo, in one optimization: each region's statistics
end closer to its own painting than to the other."""

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
from worker.pipeline.features import load_feature_net
from worker.pipeline.intake import to_working_size
from worker.pipeline.measures import style_distance
from worker.pipeline.style import stylize
from worker.pipeline.style_params import StyleParams

pytestmark = pytest.mark.slow
PARAMS = StyleParams(iterations=40)


@pytest.fixture(scope="module")
def net():
    return load_feature_net((PARAMS.content_layer, *PARAMS.style_layers), MODELS)


def test_all_ones_regions_give_the_plain_gram(net) -> None:
    import tensorflow as tf

    from worker.pipeline.objective import gram, masked_gram

    photo = to_working_size(read_rgb(PHOTOS / "dog_segmentation.png"), 64)
    feats = net(tf.constant(photo[None].astype(np.float32)))["block2_conv1"]
    ones = tf.ones((2, 64, 64))
    np.testing.assert_allclose(masked_gram(feats, ones)[0, 1], gram(feats)[0], rtol=1e-4)


def test_each_region_takes_its_own_painting(net) -> None:
    photo = read_rgb(PHOTOS / "dog_segmentation.png")  # 128 px, with its true mask
    trimap = np.asarray(Image.open(PHOTOS / "dog_segmentation_mask.png"))  # 0: dog
    mask = (trimap == 0).astype(np.float32)
    a, b = (to_working_size(read_rgb(STYLES / n), 128) for n in ("starry.jpg", "sketch.jpg"))
    layers = PARAMS.style_layers
    dual = list(stylize(photo, [(a, 1.0), (b, 1.0)], PARAMS, net, regions=[mask, 1 - mask]))
    image = dual[-1].image
    assert image is not None
    subject = [style_distance(net, image, p, layers, mask) for p in (a, b)]
    background = [style_distance(net, image, p, layers, 1 - mask) for p in (a, b)]
    assert subject[0] < subject[1], f"the dog is painted in starry: {subject}"
    assert background[1] < background[0], f"the rest is painted in sketch: {background}"
    # The control: one painting everywhere puts the background nearer that painting.
    plain = list(stylize(photo, [(a, 1.0)], PARAMS, net))[-1].image
    assert plain is not None
    assert style_distance(net, plain, b, layers, 1 - mask) > style_distance(
        net, plain, a, layers, 1 - mask
    )
