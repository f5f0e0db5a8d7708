"""Gatys et al. style transfer as a generator that yields progress.

The loss follows anishathalye/neural-style: content = mean squared feature
difference on one deep layer; style = mean squared Gram difference averaged
over the style layers and blended over the paintings; total variation = mean
squared neighbour difference. The image is optimized in 0..255 RGB, coarse to
fine over `levels` scales.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from api_contracts.errors import BackdropError, ErrorCode
from worker.pipeline.features import FeatureNet
from worker.pipeline.objective import Objective, Targets, objective_for
from worker.pipeline.palette import palette_start
from worker.pipeline.style_params import (
    ADAM_AFTER,
    POLISH_RATE,
    STOP_WINDOW,
    LossWeights,
    StyleParams,
    loss_weights,
    split_iterations,
)

MIN_LEVEL_SIDE = 32  # below this VGG's deep layers are a few pixels wide


@dataclass
class StyleProgress:
    iteration: int  # 1-based, counted across all levels
    total: int
    level: int
    losses: dict[str, float]
    image: np.ndarray | None = field(default=None, repr=False)  # uint8 RGB when present


@dataclass
class BatchProgress:
    """Progress of several outputs optimized together, one entry per output."""

    iteration: int
    total: int
    level: int
    losses: list[dict[str, float]]
    images: list[np.ndarray] | None = field(default=None, repr=False)
    # On the last: the iterations each output ran (its own stopping rule may
    # have ended it before the batch); None elsewhere.
    runs: list[int] | None = None


Styles = Sequence[tuple[np.ndarray, float]]  # (painting, blend weight) pairs


def stylize(
    content: np.ndarray,
    styles: Styles,
    params: StyleParams,
    net: FeatureNet,
    *,
    checkpoint_every: int = 0,
    init_image: np.ndarray | None = None,
    xla: bool = False,
    features: Mapping[tuple[int, int], np.ndarray] | None = None,
    regions: Sequence[np.ndarray] | None = None,
    lbfgs_every: int = 0,
    gain: float | None = None,
) -> Iterator[StyleProgress]:
    """One output: stylize_many with a batch of one (the same options, by name;
    `init_image` and `gain` are that output's entries of `init_images` and `gains`)."""
    batch = stylize_many(
        content, [styles], params, net, checkpoint_every=checkpoint_every,
        init_images=None if init_image is None else [init_image], xla=xla, features=features,
        regions=regions, lbfgs_every=lbfgs_every, gains=None if gain is None else [gain],
    )  # fmt: skip
    for p in batch:
        image = None if p.images is None else p.images[0]
        yield StyleProgress(p.iteration, p.total, p.level, p.losses[0], image)


def stylize_many(
    content: np.ndarray,
    outputs: Sequence[Styles],
    params: StyleParams,
    net: FeatureNet,
    *,
    checkpoint_every: int = 0,
    init_images: Sequence[np.ndarray] | None = None,
    xla: bool = False,
    features: Mapping[tuple[int, int], np.ndarray] | None = None,
    regions: Sequence[np.ndarray] | None = None,
    lbfgs_every: int = 0,
    gains: Sequence[float] | None = None,
) -> Iterator[BatchProgress]:
    """Several outputs of one photo optimized as one batch (one VGG pass per step
    for all of them): each output is its own blend of paintings.

    Yields a BatchProgress per iteration (every `lbfgs_every` iterations with
    the device L-BFGS), images every `checkpoint_every`; the last one carries
    the results at the content's size, and its `total` is the iterations run
    (fewer than params.iterations when the stopping rule, params.stop_below,
    ended a level early).

    `init_images`: where each output starts (any size; e.g. its feed-forward
    preview, which params.init "preview" requires); None: params.init.
    `features`: the photo's content features per level, when already computed
    elsewhere. `gains`: each output's strength gain, from its paintings' dial
    (worker.pipeline.strength_dial); None: params.strength on the plain curve.

    `lbfgs_every` > 0: L-BFGS runs on the device, and the host sees the images
    every that many iterations (0: L-BFGS on the host, every iteration).

    With `regions` (0..1 masks at the content's size, one per painting of every
    output), painting n's Gram matrices are compared with the image's own
    statistics inside region n only, and the weights are used as given: two
    paintings in one photo, in one optimization."""
    if regions is None:
        weights = [blend_weights(styles) for styles in outputs]
    else:
        weights = [[float(w) for _, w in styles] for styles in outputs]
        if any(len(styles) != len(regions) for styles in outputs):
            raise BackdropError(ErrorCode.INVALID_REQUEST, "one region per painting is needed")
    _check_layers(params, net)
    if params.strength == 0:  # the photo itself, not an optimization toward it
        zero = [{"content": 0.0, "style": 0.0, "tv": 0.0, "total": 0.0} for _ in outputs]
        n = params.iterations
        yield BatchProgress(n, n, params.levels - 1, zero, [content.copy() for _ in outputs])
        return
    # Fewer iterations than levels: the coarsest levels go, every level gets one.
    sizes = level_sizes(content.shape[:2], params.levels)[-params.iterations :]
    budgets = split_iterations(params.iterations, len(sizes))
    images: list[np.ndarray] | np.ndarray = _initial_images(
        content, sizes[0], params, init_images, outputs, regions
    )
    loss = loss_weights(params, gains, len(outputs))
    masked = regions is not None
    objective = objective_for(net, params.content_layer, params.style_layers, xla, masked)
    if features is None or not set(sizes) <= set(features):
        features = photo_features(content, params, net)
    done = 0
    for level, (size, budget) in enumerate(zip(sizes, budgets, strict=True)):
        images = np.stack([cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
                           for im in images])  # fmt: skip
        targets = _level_targets(features[size], size, outputs, weights, params, objective,
                                 loss, regions)  # fmt: skip
        final = level == len(sizes) - 1
        # lbfgs_adam: the stopping rule watches Adam's part only (an L-BFGS
        # plateau is what the hand-over is for, and Adam's first steps may rise).
        watch = _Watch(images, done + (ADAM_AFTER if params.optimizer == "lbfgs_adam"
                                       else 0), params.stop_below)  # fmt: skip
        run = _optimize(images, objective, targets, params, budget, lbfgs_every, xla)
        for count, losses, measured, updated in run:
            done += count
            per = [{k: float(v[i]) for k, v in losses.items()} for i in range(len(outputs))]
            # The losses were measured on `measured` (None: the images before this update).
            watch.saw(done, per, images if measured is None else measured, updated)
            images = watch.images(updated)
            show = _crossed(done, count, checkpoint_every)
            if done < params.iterations and not (final and watch.all_stopped):
                shown = [_u8(im) for im in images] if show else None
                yield BatchProgress(done, params.iterations, level, watch.losses(per), shown)
            if watch.all_stopped:
                break
        if final:
            results = [_finish(content, im, params) for im in watch.best_images()]
            yield BatchProgress(done, done, level, watch.best_losses(per), results,
                                watch.runs(done))  # fmt: skip


class _Watch:
    """Per output of a batch: the lowest-loss image seen, and the stopping rule
    on its own loss. An output whose rule fired is done (its image and losses
    frozen there) while the others run on: as if each were optimized alone."""

    def __init__(self, images: Any, watch_from: int, below: float) -> None:
        self.watch_from, self.below = watch_from, below
        n = len(images)
        # The lowest-loss image with the losses measured on it: the result and
        # what is reported of it (the last iterate's losses described another).
        self.best: list[tuple[float, Any, dict[str, float] | None]] = [
            (np.inf, im, None) for im in images]  # fmt: skip
        self.totals: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        self.frozen: list[tuple[Any, dict[str, float]] | None] = [None] * n
        self.stopped_at: list[int | None] = [None] * n

    @property
    def all_stopped(self) -> bool:
        return all(f is not None for f in self.frozen)

    def saw(self, done: int, per: list[dict[str, float]], measured: Any, updated: Any) -> None:
        for i, p in enumerate(per):
            if self.frozen[i] is not None:
                continue
            if not np.isfinite(p["total"]):  # diverged: NaN never beats the best, and the
                # start (the photo, noise) was kept and stored as the finished picture
                raise BackdropError(ErrorCode.INTERNAL, f"the optimization diverged at "
                                    f"iteration {done} (loss {p['total']})")  # fmt: skip
            if p["total"] < self.best[i][0]:
                self.best[i] = (p["total"], measured[i], p)
            if done > self.watch_from:
                self.totals[i].append((done, p["total"]))
            if self.totals[i] and _converged(self.totals[i], self.below):
                self.frozen[i], self.stopped_at[i] = (updated[i], p), done

    def images(self, updated: Any) -> Any:
        """The batch as the next level (or the checkpoints) sees it."""
        return np.stack([im if f is None else f[0] for im, f in zip(updated, self.frozen,
                                                                    strict=True)])  # fmt: skip

    def losses(self, per: list[dict[str, float]]) -> list[dict[str, float]]:
        return [p if f is None else f[1] for p, f in zip(per, self.frozen, strict=True)]

    def runs(self, done: int) -> list[int]:
        return [done if s is None else s for s in self.stopped_at]

    def best_images(self) -> list[Any]:
        return [b[1] for b in self.best]

    def best_losses(self, per: list[dict[str, float]]) -> list[dict[str, float]]:
        """The losses of best_images (the last ones where none was measured)."""
        return [p if b[2] is None else b[2] for b, p in zip(self.best, per, strict=True)]


def _converged(totals: list[tuple[int, float]], below: float) -> bool:
    """The stopping rule: the loss fell by less than the fraction `below` since
    the last measurement at least STOP_WINDOW iterations back (0: never)."""
    if below <= 0:
        return False
    done, now = totals[-1]
    earlier = [loss for d, loss in totals if d <= done - STOP_WINDOW]
    return bool(earlier) and earlier[-1] > 0 and (earlier[-1] - now) / earlier[-1] < below


def _crossed(done: int, count: int, every: int) -> bool:
    """A multiple of `every` was passed by the last `count` iterations."""
    return every > 0 and done // every > (done - count) // every


def _finish(content: np.ndarray, image: np.ndarray, params: StyleParams) -> np.ndarray:
    result = _u8(image)
    return preserve_colors(content, result) if params.preserve_colors else result


def photo_features(
    content: np.ndarray, params: StyleParams, net: FeatureNet
) -> dict[tuple[int, int], np.ndarray]:
    """The photo's content-layer features at every level's size: computed once
    per job and shared by all its styles."""
    objective = objective_for(net, params.content_layer, params.style_layers)
    features = {}
    for size in level_sizes(content.shape[:2], params.levels):
        image = cv2.resize(content, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        features[size] = objective.content_features(image)
    return features


def preserve_colors(photo: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Stylized luminance with the photo's chroma (YCrCb)."""
    ycc_style = cv2.cvtColor(stylized, cv2.COLOR_RGB2YCrCb)
    ycc_photo = cv2.cvtColor(photo, cv2.COLOR_RGB2YCrCb)
    ycc_photo[:, :, 0] = ycc_style[:, :, 0]
    return cv2.cvtColor(ycc_photo, cv2.COLOR_YCrCb2RGB)


def level_sizes(shape: tuple[int, ...], levels: int) -> list[tuple[int, int]]:
    """(h, w) per level, coarse to fine, each half the next; tiny levels dropped."""
    h, w = shape[:2]
    sizes = []
    for k in range(levels - 1, -1, -1):
        scale = 0.5**k
        size = (round(h * scale), round(w * scale))
        if min(size) >= MIN_LEVEL_SIDE or k == 0:
            sizes.append(size)
    return sizes


def blend_weights(styles: Sequence[tuple[Any, float]]) -> list[float]:
    """Normalized blend weights; refuses negative, NaN and all-zero ones."""
    if not styles:
        raise BackdropError(ErrorCode.INVALID_REQUEST, "at least one style image is needed")
    raw = [float(w) for _, w in styles]
    if any(not np.isfinite(w) or w < 0 for w in raw) or sum(raw) <= 0:
        raise BackdropError(
            ErrorCode.INVALID_REQUEST, f"style weights must be finite, >= 0, not all 0: {raw}"
        )
    return [w / sum(raw) for w in raw]


def _check_layers(params: StyleParams, net: FeatureNet) -> None:
    wanted = {params.content_layer, *params.style_layers}
    if not wanted <= set(net.layers):
        raise BackdropError(
            ErrorCode.INVALID_REQUEST,
            f"{net.name} was loaded without layer(s) {sorted(wanted - set(net.layers))}",
        )


def _initial_images(
    content: np.ndarray, size: tuple[int, int], params: StyleParams,
    given: Sequence[np.ndarray] | None, outputs: Sequence[Styles],
    regions: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:  # fmt: skip
    """One starting image per output (each resized to the first level later)."""
    count = len(outputs)
    if given is not None:
        if len(given) != count:
            raise BackdropError(ErrorCode.INTERNAL, f"{len(given)} initial images for {count}")
        return [image.astype(np.float32) for image in given]
    if params.init == "preview":
        raise BackdropError(
            ErrorCode.INVALID_REQUEST, "init 'preview' starts from the preview: none was given"
        )
    if params.init == "noise":
        rng = np.random.default_rng(params.seed)
        noise = rng.normal(127.5, 32.0, size=(*size, 3))
        return [np.clip(noise, 0, 255).astype(np.float32)] * count
    if params.init == "palette":  # the photo in each output's paintings' colours
        if regions is not None:  # each region in its own painting's colours
            return [_regional_palette(content, styles, regions) for styles in outputs]
        return [palette_start(content, styles) for styles in outputs]
    return [content.astype(np.float32)] * count


def _regional_palette(
    content: np.ndarray, styles: Styles, regions: Sequence[np.ndarray]
) -> np.ndarray:
    """Two paintings in one photo: painting n's palette where region n is."""
    starts = [palette_start(content, [(painting, 1.0)]) for painting, _ in styles]
    weights = np.stack([r.astype(np.float32) for r in regions])[..., None]
    total = weights.sum(axis=0)
    blended = (weights * np.stack(starts)).sum(axis=0) / np.maximum(total, 1e-6)
    uncovered = total <= 1e-6
    if uncovered.any():  # masks that leave pixels out (dual's alpha and 1 - alpha never do)
        blended = np.where(uncovered, palette_start(content, styles), blended)
    return blended.astype(np.float32)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _level_targets(
    features: np.ndarray,
    size: tuple[int, int],
    outputs: Sequence[Styles],
    weights: list[list[float]],
    params: StyleParams,
    objective: Objective,
    loss: LossWeights | None = None,
    regions: Sequence[np.ndarray] | None = None,
) -> Targets:
    paintings = [[_painting_at(p, size, params.style_scale) for p, _ in styles]
                 for styles in outputs]  # fmt: skip
    at_level = None
    if regions is not None:
        shape = (size[1], size[0])
        resized = [cv2.resize(r.astype(np.float32), shape, interpolation=cv2.INTER_AREA)
                   for r in regions]  # fmt: skip
        at_level = np.stack(resized)
    loss = loss or loss_weights(params, count=len(outputs))
    return objective.targets(features, paintings, weights, loss=loss, regions=at_level)


def _painting_at(painting: np.ndarray, size: tuple[int, ...], style_scale: float) -> np.ndarray:
    """The painting scaled so its longest side is style_scale x the level's."""
    scale = style_scale * max(size) / max(painting.shape[:2])
    h, w = painting.shape[:2]
    target = (max(16, round(w * scale)), max(16, round(h * scale)))
    return cv2.resize(painting, target, interpolation=cv2.INTER_AREA)


Step = tuple[int, dict[str, np.ndarray], np.ndarray | None, np.ndarray]


def _optimize(
    images: np.ndarray, objective: Objective, targets: Targets, params: StyleParams, steps: int,
    lbfgs_every: int = 0, xla: bool = False,
) -> Iterator[Step]:  # fmt: skip
    """Yield (iterations run, per-image losses, the images they were measured on
    (None: those before this update), the updated B x h x w x 3 images)."""
    if params.optimizer == "adam":
        yield from _adam(images, objective, targets, params.learning_rate, steps)
        return
    first = steps if params.optimizer == "lbfgs" else min(steps, ADAM_AFTER)
    x = images
    for step in _lbfgs(images, objective, targets, params.learning_rate, first, lbfgs_every, xla):
        x = step[3]
        yield step
    if steps > first:  # lbfgs_adam: Adam takes over from where L-BFGS got
        yield from _adam(x, objective, targets, POLISH_RATE, steps - first)


def _lbfgs(
    images: np.ndarray, objective: Objective, targets: Targets, first_step: float, steps: int,
    lbfgs_every: int, xla: bool,
) -> Iterator[Step]:  # fmt: skip
    if lbfgs_every > 0:
        from worker.pipeline.lbfgs_device import device_lbfgs_steps

        for count, losses, x in device_lbfgs_steps(images, objective, targets, first_step, steps,
                                                   lbfgs_every, xla):  # fmt: skip
            yield count, losses, x, x
    else:
        from worker.pipeline.lbfgs import lbfgs_steps

        for losses, x in lbfgs_steps(images, objective, targets, first_step, steps):
            yield 1, losses, None, x


def _adam(
    images: np.ndarray, objective: Objective, targets: Targets, rate: float, steps: int
) -> Iterator[Step]:
    for losses, x in _adam_steps(images, objective, targets, rate, steps):
        yield 1, losses, None, x


def _adam_steps(
    images: np.ndarray, objective: Objective, targets: Targets, lr: float, steps: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    import tensorflow as tf

    x = tf.constant(images, tf.float32)
    m = v = tf.zeros_like(x)
    rate = tf.constant(lr, tf.float32)
    for t in range(1, steps + 1):
        x, m, v, losses = objective.adam_step(x, m, v, tf.constant(float(t)), rate, *targets.args())
        yield {k: val.numpy() for k, val in losses.items()}, x.numpy()
