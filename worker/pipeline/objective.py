"""The style-transfer objective, compiled once per process and feature network.

The targets (content features, Gram matrices, blend weights) and the loss
weights are arguments of the compiled functions, not captured constants, and
the image's height and width are left open in the signature: so one trace
serves every job, photo size and painting in a worker's life, instead of a
fresh trace (seconds on a CPU) for every level of every job.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.pipeline.features import FeatureNet

ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
_CACHE: dict[tuple[int, str, tuple[str, ...], bool], "Objective"] = {}
# float16 gradients of small losses underflow: scale the loss up before the
# gradient and the gradient down after (bfloat16 has float32's range: no need).
FLOAT16_LOSS_SCALE = 1024.0


@dataclass(frozen=True)
class Targets:
    """For a batch of B images of the same photo, each with its own paintings."""

    content: Any  # 1 x h x w x C features of the photo at this level
    grams: tuple[Any, ...]  # per style layer: B x N x C x C, one per painting
    weights: Any  # B x N blend weights, each row summing to 1 (0 for padding)
    coeffs: Any  # (content, style, tv) loss weights

    def args(self) -> tuple[Any, ...]:
        return (self.content, self.grams, self.weights, self.coeffs)


def objective_for(
    net: FeatureNet, content_layer: str, style_layers: tuple[str, ...], xla: bool = False
) -> "Objective":
    key = (id(net.model), content_layer, style_layers, xla)
    if key not in _CACHE:
        _CACHE[key] = Objective(net, content_layer, style_layers, xla)
    return _CACHE[key]


class Objective:
    def __init__(
        self, net: FeatureNet, content_layer: str, style_layers: tuple[str, ...], xla: bool = False
    ) -> None:
        import tensorflow as tf

        self.net, self.content_layer, self.style_layers = net, content_layer, style_layers
        self.loss_scale = FLOAT16_LOSS_SCALE if net.precision == "mixed_float16" else 1.0
        width = {n: int(net.model.get_layer(n).output.shape[-1]) for n in net.layers}
        image = tf.TensorSpec([None, None, None, 3], tf.float32)  # a batch of B images
        content = tf.TensorSpec([1, None, None, width[content_layer]], tf.float32)
        grams = tuple(
            tf.TensorSpec([None, None, width[n], width[n]], tf.float32) for n in style_layers
        )
        matrix, scalar = tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([], tf.float32)
        coeffs = tf.TensorSpec([3], tf.float32)
        targets = [content, grams, matrix, coeffs]
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
        weights: list[list[float]], coeffs: tuple[float, float, float],
    ) -> Targets:  # fmt: skip
        """paintings[b] and weights[b]: the blend of output b. Outputs with fewer
        paintings are padded with zero Grams at weight 0."""
        import tensorflow as tf

        most = max(len(p) for p in paintings)
        padded = [w + [0.0] * (most - len(w)) for w in weights]
        per_output = [[self.net(tf.constant(p[None], tf.float32)) for p in ps] for ps in paintings]

        def stacked(name: str) -> Any:
            rows = []
            for feats in per_output:
                g = [gram(f[name])[0] for f in feats]
                g += [tf.zeros_like(g[0])] * (most - len(g))
                rows.append(tf.stack(g))
            return tf.stack(rows)

        return Targets(
            tf.constant(content_features, tf.float32),
            tuple(stacked(name) for name in self.style_layers),
            tf.constant(padded, tf.float32),
            tf.constant(coeffs, tf.float32),
        )

    def _losses(
        self, x: Any, content: Any, grams: Any, weights: Any, coeffs: Any
    ) -> dict[str, Any]:
        """Per image of the batch: B-vectors of each loss term."""
        import tensorflow as tf

        feats = self.net(x)
        images = [1, 2, 3]
        c = coeffs[0] * tf.reduce_mean(tf.square(feats[self.content_layer] - content), images)
        per_layer = [
            # Mean squared Gram difference per painting, blended by weight.
            tf.reduce_sum(
                weights * tf.reduce_mean(tf.square(gram(feats[name])[:, None] - target), [2, 3]),
                axis=1,
            )
            for name, target in zip(self.style_layers, grams, strict=True)
        ]
        s = coeffs[1] * tf.add_n(per_layer) / len(per_layer)
        tv = coeffs[2] * (
            tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1]), images)
            + tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]), images)
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


def gram(features: Any) -> Any:
    """B x C x C Gram matrices, normalized by the feature map's size (as neural-style)."""
    import tensorflow as tf

    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], -1, shape[3]))
    size = tf.cast(shape[1] * shape[2] * shape[3], features.dtype)
    return tf.matmul(flat, flat, transpose_a=True) / size
