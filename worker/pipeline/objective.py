"""The style-transfer objective, compiled once per process and feature network.

The targets (content features, Gram matrices, blend weights) and the loss
weights are arguments of the compiled functions, not captured constants, and
the image's height and width are left open in the signature: so one trace
serves every job, photo size and painting in a worker's life, instead of a
fresh trace (seconds on a CPU) for every level of every job.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from worker.pipeline.features import FeatureNet
from worker.pipeline.style_params import LossWeights

ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
_CACHE: dict[tuple[int, str, tuple[str, ...], bool, bool], "Objective"] = {}
# float16 gradients of small losses underflow: scale the loss up before the
# gradient and the gradient down after (bfloat16 has float32's range: no need).
FLOAT16_LOSS_SCALE = 1024.0


@dataclass(frozen=True)
class Targets:
    """For a batch of B images of the same photo, each with its own paintings."""

    content: Any  # 1 x h x w x C features of the photo at this level
    grams: tuple[Any, ...]  # per style layer: B x N x C x C, one per painting
    weights: Any  # B x N blend weights, each row summing to 1 (0 for padding)
    loss: LossWeights  # the weight of each loss term, by name
    # M x h x w: the distinct places where paintings' statistics are taken
    # (two paintings in one photo), and N: painting n's place among them;
    # None: every painting over the whole image.
    regions: Any = None
    region_of: Any = None

    @cached_property
    def _loss_args(self) -> tuple[Any, Any, Any, Any]:
        import tensorflow as tf

        w, f32 = self.loss, tf.float32
        return (tf.constant(w.content, f32), tf.constant(w.style, f32), tf.constant(w.tv, f32),
                tf.constant(w.gains, f32))  # fmt: skip

    def args(self) -> tuple[Any, ...]:
        """The compiled functions' arguments after the image, in their order."""
        plain = (self.content, self.grams, self.weights, *self._loss_args)
        return plain if self.regions is None else (*plain, self.regions, self.region_of)


def objective_for(
    net: FeatureNet, content_layer: str, style_layers: tuple[str, ...], xla: bool = False,
    masked: bool = False,
) -> "Objective":  # fmt: skip
    key = (id(net.model), content_layer, style_layers, xla, masked)
    if key not in _CACHE:
        _CACHE[key] = Objective(net, content_layer, style_layers, xla, masked)
    return _CACHE[key]


class Objective:
    def __init__(
        self, net: FeatureNet, content_layer: str, style_layers: tuple[str, ...],
        xla: bool = False, masked: bool = False,
    ) -> None:  # fmt: skip
        import tensorflow as tf

        self.net, self.content_layer, self.style_layers = net, content_layer, style_layers
        # Other functions compiled around this objective (the device L-BFGS).
        self.compiled: dict[tuple[str, bool], Any] = {}
        self.loss_scale = FLOAT16_LOSS_SCALE if net.precision == "mixed_float16" else 1.0
        width = {n: int(net.model.get_layer(n).output.shape[-1]) for n in net.layers}
        image = tf.TensorSpec([None, None, None, 3], tf.float32)  # a batch of B images
        content = tf.TensorSpec([1, None, None, width[content_layer]], tf.float32)
        grams = tuple(
            tf.TensorSpec([None, None, width[n], width[n]], tf.float32) for n in style_layers
        )
        matrix, scalar = tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([], tf.float32)
        # The content, style and tv weights (three scalars, named in _losses)
        # and the B outputs' strength gains.
        gains = tf.TensorSpec([None], tf.float32)
        targets = [content, grams, matrix, scalar, scalar, scalar, gains]
        if masked:  # a separate trace: plain jobs keep the cheaper unmasked Grams
            targets += [tf.TensorSpec([None, None, None], tf.float32),
                        tf.TensorSpec([None], tf.int32)]  # fmt: skip
        # XLA fuses the step's many small ops (a GPU win; compiled per image size).
        self.value_and_grad = tf.function(
            self._value_and_grad, input_signature=[image, *targets], jit_compile=xla
        )
        self.adam_step = tf.function(
            self._adam_step,
            input_signature=[image, image, image, scalar, scalar, *targets],
            jit_compile=xla,
        )

    def content_features(self, image: np.ndarray) -> np.ndarray:
        """The photo's features on the content layer: 1 x h x w x C float32."""
        import tensorflow as tf

        feats = self.net(tf.constant(image[None], tf.float32))
        return np.asarray(feats[self.content_layer].numpy(), np.float32)

    def targets(
        self, content_features: np.ndarray, paintings: list[list[np.ndarray]],
        weights: list[list[float]], *, loss: LossWeights, regions: np.ndarray | None = None,
    ) -> Targets:  # fmt: skip
        """paintings[b] and weights[b]: the blend of output b. Outputs with fewer
        paintings are padded with zero Grams at weight 0."""
        import tensorflow as tf

        most = max(len(p) for p in paintings)
        padded = [w + [0.0] * (most - len(w)) for w in weights]

        def reduced(painting: np.ndarray) -> list[Any]:
            # Each painting's feature maps live only while its Grams are taken:
            # a 2048 px painting's maps are about 2.2 GB, its Grams a few MB,
            # and a blend of 16 held them all at once.
            feats = self.net(tf.constant(painting[None], tf.float32))
            return [gram(feats[name])[0] for name in self.style_layers]

        per_output = [[reduced(p) for p in ps] for ps in paintings]

        def stacked(layer: int) -> Any:
            rows = []
            for grams in per_output:
                g = [per_painting[layer] for per_painting in grams]
                g += [tf.zeros_like(g[0])] * (most - len(g))
                rows.append(tf.stack(g))
            return tf.stack(rows)

        distinct, region_of = (None, None) if regions is None else _distinct(regions)
        return Targets(
            tf.constant(content_features, tf.float32),
            tuple(stacked(k) for k in range(len(self.style_layers))),
            tf.constant(padded, tf.float32),
            loss,
            None if distinct is None else tf.constant(distinct, tf.float32),
            None if region_of is None else tf.constant(region_of, tf.int32),
        )

    def _losses(
        self, x: Any, content: Any, grams: Any, weights: Any, content_weight: Any,
        style_weight: Any, tv_weight: Any, gains: Any, regions: Any = None, region_of: Any = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Per image of the batch: B-vectors of each loss term (weighted)."""
        import tensorflow as tf

        feats = self.net(x)
        images = [1, 2, 3]
        c = content_weight * tf.reduce_mean(tf.square(feats[self.content_layer] - content), images)

        def mine(name: str) -> Any:  # B x 1 x C x C, or B x N x C x C with regions
            if regions is None:
                return gram(feats[name])[:, None]
            # Each distinct place's Gram once (a blend of 16 behind a subject
            # is 2 places, not 17: B x M x P x C floats, where every painting
            # weighing its own copy needed about 16 KiB a pixel), then one
            # per painting.
            return tf.gather(masked_gram(feats[name], regions), region_of, axis=1)

        per_layer = [
            # Mean squared Gram difference per painting, blended by weight.
            tf.reduce_sum(weights * tf.reduce_mean(tf.square(mine(name) - target), [2, 3]), axis=1)
            for name, target in zip(self.style_layers, grams, strict=True)
        ]
        s = style_weight * gains * tf.add_n(per_layer) / len(per_layer)
        tv = (
            tv_weight
            * gains
            * (
                tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1]), images)
                + tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]), images)
            )
        )
        return {"content": c, "style": s, "tv": tv, "total": c + s + tv}

    def _value_and_grad(self, x: Any, *targets: Any) -> tuple[dict[str, Any], Any]:
        import tensorflow as tf

        # Only the image is watched: no gradient is taken for VGG's weights.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            losses = self._losses(x, *targets)
            # The images of a batch are independent: the sum's gradient is each one's.
            scaled = tf.reduce_sum(losses["total"]) * self.loss_scale
        return losses, tape.gradient(scaled, x) / self.loss_scale

    def _adam_step(
        self, x: Any, m: Any, v: Any, t: Any, lr: Any, *targets: Any
    ) -> tuple[Any, Any, Any, dict[str, Any]]:
        """One Adam update (t counts from 1); the losses are those of x before it."""
        import tensorflow as tf

        losses, g = self._value_and_grad(x, *targets)
        m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * g
        v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * tf.square(g)
        m_hat = m / (1 - tf.pow(ADAM_BETA1, t))
        v_hat = v / (1 - tf.pow(ADAM_BETA2, t))
        x = tf.clip_by_value(x - lr * m_hat / (tf.sqrt(v_hat) + ADAM_EPSILON), 0.0, 255.0)
        return x, m, v, losses


def _distinct(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M x h x w distinct masks, N indices into them) of N x h x w masks."""
    distinct: list[np.ndarray] = []
    region_of = []
    for mask in np.asarray(regions, np.float32):
        same = [k for k, seen in enumerate(distinct) if np.array_equal(seen, mask)]
        if not same:
            distinct.append(mask)
        region_of.append(same[0] if same else len(distinct) - 1)
    return np.stack(distinct), np.asarray(region_of, np.int32)


def gram(features: Any) -> Any:
    """B x C x C Gram matrices, normalized by the feature map's size (as neural-style)."""
    import tensorflow as tf

    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], -1, shape[3]))
    size = tf.cast(shape[1] * shape[2] * shape[3], features.dtype)
    return tf.matmul(flat, flat, transpose_a=True) / size


def masked_gram(features: Any, regions: Any) -> Any:
    """B x N x C x C: the Gram matrix of each region (N x H x W, resized to the
    layer's grid), normalized by the region's area, so a region's statistics
    compare with a whole painting's as `gram` does (all-ones regions give
    exactly `gram`)."""
    import tensorflow as tf

    shape = tf.shape(features)
    masks = tf.image.resize(regions[..., None], shape[1:3], method="area")[..., 0]
    flat = tf.reshape(features, (shape[0], -1, shape[3]))  # B x P x C
    weights = tf.reshape(tf.cast(masks, features.dtype), (tf.shape(masks)[0], -1))  # N x P
    weighted = flat[:, None] * weights[None, :, :, None]  # B x N x P x C
    grams = tf.einsum("bnpc,bpd->bncd", weighted, flat)
    area = tf.maximum(tf.reduce_sum(weights, axis=1), 1.0) * tf.cast(shape[3], features.dtype)
    return grams / area[None, :, None, None]
