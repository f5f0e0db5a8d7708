"""A request resolved against the deployment's settings: quality levels and limits."""

import pytest

from api_contracts.errors import BackdropError
from api_contracts.models import JobOptions, JobRequest, StyleRef
from tests.conftest import MODELS
from worker.pipeline.matting import MATTE_VERSION
from worker.pipeline.paint_full import PAINT_VERSION
from worker.runtime.settings import SEGMENTER_DEFAULTS, Settings
from worker.service.plan import JobPlan


def _plan(**options) -> JobPlan:
    """Resolved with the shared models (no VGG19), whatever the developer's
    own models directory holds."""
    request = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="s")], options=options)
    return JobPlan.resolve(request, Settings(models_dir=MODELS), photo_sha="0" * 64)


def test_quality_high_doubles_the_iterations_of_the_default_recipe() -> None:
    standard, high = _plan(), _plan(quality="high")
    assert high.params.iterations == 2 * standard.params.iterations
    assert high.params.levels == standard.params.levels
    assert high.params_key() != standard.params_key(), "a different output key"


KEYS = ("stylized_key", "preview_key", "latest_key", "result_key")


def _keys(plan: JobPlan) -> dict[str, str]:
    return {name: getattr(plan, name)("f" * 64) for name in KEYS}


@pytest.mark.parametrize("quality", ["preview", "standard"])
def test_every_picture_of_two_strengths_has_its_own_key(quality: str) -> None:
    weak, strong = _keys(_plan(quality=quality, strength=0.3)), _keys(_plan(quality=quality))
    assert all(weak[k] != strong[k] for k in KEYS), (weak, strong)


def test_strength_zeros_result_is_keyed_apart_from_the_composites_before_it() -> None:
    """Strength 0 became the photo itself: its results made before (the matted
    or upsampled composite, kept up to ~22 days) must not be served for it."""
    from worker.service import keys

    plan = _plan(strength=0.0)
    before = {**plan._scene(), "output": plan.output, "params": plan.params_key()}
    assert plan.result_key("f") != keys.result_key(plan.photo_sha, "f", before)
    other = _plan(strength=0.3)
    former = {**other._scene(), "output": other.output, "params": other.params_key()}
    assert other.result_key("f") == keys.result_key(other.photo_sha, "f", former), "unchanged"


def test_previews_are_shared_only_where_their_strength_mix_is_the_same() -> None:
    # The preview cannot paint harder than its painting: from the default up
    # the mix is 1, so a standard job at 0.8 and one at 1.0 show one preview.
    assert _plan(strength=0.8).preview_key("f") == _plan(strength=1.0).preview_key("f")
    assert _plan(strength=0.5).preview_key("f") != _plan(strength=0.6).preview_key("f")


def test_the_mask_and_compositing_shape_every_composited_key() -> None:
    base = _plan()
    other_segmenter = base.model_copy(update={"segmenter": "another"})
    softer = base.model_copy(update={"composite": base.composite.model_copy(
        update={"guided_radius": base.composite.guided_radius + 1})})  # fmt: skip
    for changed in (other_segmenter, softer):
        for name in ("preview_key", "latest_key", "result_key"):
            assert getattr(changed, name)("f") != getattr(base, name)("f"), name
    assert other_segmenter.stylized_key("f") == base.stylized_key("f"), "one painting: shared"


def test_explicit_options_win_over_the_quality_and_limits_hold() -> None:
    assert _plan(quality="high", iterations=7).params.iterations == 7
    with pytest.raises(BackdropError, match="limit"):
        _plan(iterations=Settings().queue.max_iterations + 1)


def test_strength_and_stroke_size_are_options_that_change_the_output_key() -> None:
    base, weak, big = _plan(), _plan(strength=0.3), _plan(style_scale=2.0)
    assert weak.params.strength == 0.3 and big.params.style_scale == 2.0
    assert len({str(p.params_key()) for p in (base, weak, big)}) == 3
    with pytest.raises(Exception, match="strength"):
        _plan(strength=1.5)


def test_the_warm_start_and_stopping_rule_are_options_that_change_the_output_key() -> None:
    base, warm, stopping = _plan(), _plan(init="preview"), _plan(stop_below=0.01)
    assert warm.params.init == "preview" and stopping.params.stop_below == 0.01
    keys = [p.result_key("f") for p in (base, warm, stopping)]
    assert len(set(keys)) == 3
    assert len({p.stylized_key("f") for p in (base, warm, stopping)}) == 3


def test_only_quality_high_with_output_original_paints_at_full_resolution() -> None:
    painted = _plan(quality="high", output="original")
    assert painted.paint == Settings().paint_full
    others = [_plan(), _plan(output="original"), _plan(quality="high"),
              _plan(quality="preview", output="original")]  # fmt: skip
    assert all(p.paint is None and "paint" not in p.params_key() for p in others), "keys as before"
    # The painted image is never the working-size one: its keys differ.
    unpainted = painted.model_copy(update={"paint": None})
    assert painted.stylized_key("f") != unpainted.stylized_key("f")
    assert painted.result_key("f") != unpainted.result_key("f")
    # Pictures painted by an older rule (the painting not enlarged) are not served.
    assert painted.params_key()["paint"]["version"] == PAINT_VERSION >= 2


PAINT_CHANGES = [("max_side", 1024), ("iterations", 30), ("tile_pixels", 1024 * 1024),
                 ("tile_overlap", 32)]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), PAINT_CHANGES)
def test_every_paint_setting_shapes_the_painted_keys(field: str, value: int) -> None:
    base = _plan(quality="high", output="original")
    assert base.paint is not None
    changed = base.model_copy(update={"paint": base.paint.model_copy(update={field: value})})
    for name in ("stylized_key", "result_key"):
        assert getattr(changed, name)("f") != getattr(base, name)("f"), name


def test_edges_and_pictures_made_by_an_older_matte_are_not_served(monkeypatch) -> None:
    """The matting's regularization changed (MATTE_VERSION 2): the same mask and
    compositing settings must name another edge and other pictures."""
    import worker.service.plan as plan_module

    plan = _plan()
    now = (plan.edge_key(), plan.result_key("f"), plan.preview_key("f"))
    assert plan.composite_key()["matte"] == MATTE_VERSION >= 2
    monkeypatch.setattr(plan_module, "MATTE_VERSION", MATTE_VERSION - 1)
    before = (plan.edge_key(), plan.result_key("f"), plan.preview_key("f"))
    assert all(a != b for a, b in zip(now, before, strict=True))


def test_the_polish_roads_constants_name_its_pictures(monkeypatch) -> None:
    """optimizer lbfgs_adam: its hand-over and Adam's rate are constants, so
    they are in its pictures' keys (a change makes them anew); lbfgs_adam
    that never hands over is lbfgs, with lbfgs's keys; the dial's short
    runs never hand over, so one dial serves both."""
    import worker.service.plan as plan_module

    polished, plain = _plan(optimizer="lbfgs_adam", iterations=600), _plan(iterations=600)
    assert polished.params.optimizer == "lbfgs_adam"
    assert "polish" in polished.params_key() and "polish" not in plain.params_key()
    assert polished.dial_key("f") == _plan(optimizer="lbfgs", iterations=600).dial_key("f")
    # The dial runs at most DIAL_ITERATIONS at one level: recipes that differ
    # only past that share one calibration.
    assert _plan(quality="high").dial_key("f") == _plan().dial_key("f")
    assert _plan(iterations=60).dial_key("f") != _plan().dial_key("f")
    assert _keys(_plan(optimizer="lbfgs_adam")) == _keys(_plan())  # 100 iterations: lbfgs
    now = _keys(polished)
    monkeypatch.setattr(plan_module, "POLISH_RATE", 2.0)
    assert all(now[k] != v for k, v in _keys(polished).items() if k != "preview_key")


def test_the_lbfgs_version_names_what_it_optimized_and_adams_keep_theirs(monkeypatch) -> None:
    """A change of the L-BFGS's method (LBFGS_VERSION) makes its pictures and
    dials anew; Adam's pictures do not depend on it."""
    import worker.service.plan as plan_module

    lbfgs, adam = _plan(), _plan(optimizer="adam")
    before = (_keys(lbfgs), lbfgs.dial_key("f"), _keys(adam))
    monkeypatch.setattr(plan_module, "LBFGS_VERSION", 3)
    assert all(before[0][k] != v for k, v in _keys(lbfgs).items() if k != "preview_key")
    assert lbfgs.dial_key("f") != before[1]
    assert _keys(adam) == before[2]


def test_a_warm_started_picture_names_the_preview_network_it_started_from(monkeypatch) -> None:
    """init "preview" optimizes from the feed-forward picture: a renamed
    (retrained) preview network must make those pictures anew; the default
    start's keys do not name it."""
    import worker.service.plan as plan_module

    warm, plain = _plan(init="preview"), _plan()
    now, plain_now = _keys(warm), _keys(plain)
    monkeypatch.setattr(plan_module, "PREVIEWER_NAME", "magenta-arbitrary-v2")
    assert all(now[k] != v for k, v in _keys(warm).items()), "stylized, latest, result, preview"
    assert _keys(plain) == {**plain_now, "preview_key": _keys(plain)["preview_key"]}


def test_the_instant_preview_takes_the_quick_edge_unless_the_matte_is_made_first() -> None:
    base = _plan()
    assert base.composite.edge == "matting" and base.quick_preview_edge
    guided = base.model_copy(update={"composite": base.composite.model_copy(
        update={"edge": "guided"})})  # fmt: skip
    assert not guided.quick_preview_edge, "the job's own edge is the quick one already"
    request = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="s")], mode="dual",
                         subject_style=StyleRef(key="t"))  # fmt: skip
    dual = JobPlan.resolve(request, Settings(), photo_sha="0" * 64)
    assert not dual.quick_preview_edge, "its regions are made from the matte before the preview"


def test_the_precision_names_every_optimized_picture_float32_too() -> None:
    """A fleet with float32 and bfloat16 workers: a picture made in one
    precision is never served for a request the other one resolved; float32
    is named too (keys.KEY_SCHEME 3), and a plan stored before the field is float32's."""
    request = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="s")])
    settings = Settings()
    settings.compute.precision = "mixed_bfloat16"
    half, full = JobPlan.resolve(request, settings, "0" * 64), _plan()
    assert (half.precision, full.precision) == ("mixed_bfloat16", "float32")
    assert full.params_key()["precision"] == "float32"
    for name in ("stylized_key", "latest_key", "result_key", "dial_key"):
        assert getattr(half, name)("f") != getattr(full, name)("f"), name
    assert half.preview_key("f") == full.preview_key("f"), "the feed-forward preview: no VGG"
    stored = full.model_dump(mode="json")
    del stored["precision"]  # a plan stored before the field: made in float32
    assert JobPlan.model_validate(stored).result_key("f") == full.result_key("f")


def test_the_models_name_their_pictures_the_default_ones_too(tmp_path) -> None:
    """A fleet where some workers have VGG19 or run the lighter DeepLab: their
    pictures and masks are never served for a job another worker resolved,
    and the default models are named too (DEFAULT_KEYS below)."""
    from worker.pipeline.weights import VGG19_FILENAME

    request = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="s")])
    (tmp_path / VGG19_FILENAME).write_bytes(b"")
    vgg19 = JobPlan.resolve(request, Settings(models_dir=tmp_path), "0" * 64)
    settings = Settings(models_dir=MODELS)
    settings.segmentation.tflite_model = "deeplab-mnv2-dm05-tflite"
    lighter, base = JobPlan.resolve(request, settings, "0" * 64), _plan()
    assert (base.feature_net, base.segmenter_model) == ("vgg16-hed-bsds500", None)
    # Only a plan that uses a model names it: an older worker refuses a field it
    # does not know, so a preview or a portrait blur keeps the plan it had.
    blur = JobRequest(photo_key="uploads/p", styles=[], mode="portrait")
    quick = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="s")],
                       options=JobOptions(quality="preview"))  # fmt: skip
    portrait, preview = (JobPlan.resolve(r, Settings(models_dir=tmp_path), "0" * 64)
                         for r in (blur, quick))  # fmt: skip
    assert portrait.feature_net == preview.feature_net == "vgg16-hed-bsds500"
    assert (vgg19.feature_net, lighter.segmenter_model) == (
        "vgg19-imagenet",
        "deeplab-mnv2-dm05-tflite",
    )
    for name in ("stylized_key", "latest_key", "result_key", "dial_key"):
        assert getattr(vgg19, name)("f") != getattr(base, name)("f"), name
    assert vgg19.mask_key() == base.mask_key() and vgg19.preview_key("f") == base.preview_key("f")
    assert lighter.mask_key() != base.mask_key()
    for name in ("preview_key", "latest_key", "result_key"):
        assert getattr(lighter, name)("f") != getattr(base, name)("f"), name
    assert lighter.stylized_key("f") == base.stylized_key("f"), "one painting: no mask in it"
    stored = base.model_dump(mode="json")
    del stored["feature_net"], stored["segmenter_model"]  # a plan stored before the fields
    assert JobPlan.model_validate(stored) == base


# The default request's keys. A deliberate change of what a key hashes (a
# version bump) updates them. Last updated by keys.KEY_SCHEME 3 (every model
# and the precision named at their defaults too).
DEFAULT_KEYS = {
    "result_key": "results/a5a6243115592bf122508e9fc289f03ad10ed3a3.png",
    "stylized_key": "stylized/80a090ef8109cb693ce4072c0e79d85fbc25862c.png",
    "dial_key": "dials/f676f7a3847cd287aabe2626355cd5eb4f4e66ef.json",
    "latest_key": "latest/ad3c7763edad2448af8d6ae99ed33981efeb0951.png",
    "mask_key": "masks/116f6e90c10becefb8cddfa6f245d229acc55c37.png",
    "edge_key": "edges/bf48390a27bfc43881ff4644f48e89d77e3e5f4a.npz",
    "preview_key": "previews/4a92f2608132f339a8b83ebf9f978dba5073637a.png",
}

# The same request's keys under scheme 2, which left the default models and
# float32 out of them: an object stored under one of these was made by
# whichever DeepLab and VGG its worker had before the plan named them (the
# default's key was the key of every model, then), so none may be read now.
SCHEME_2_KEYS = {
    "result_key": "results/10ff84955cf2fd7218f2690bbfe1ff988d39a24a.png",
    "stylized_key": "stylized/0f1a115bfa93bcd4c02ae55409ea6bbbdfcf34a3.png",
    "dial_key": "dials/7b7949dae2bb35431889a36a9b60e2f698096f60.json",
    "latest_key": "latest/71dde475d341c868ae3f96c5fddb37b3a09495ea.png",
    "mask_key": "masks/5d6fdc9e4ee00210308d743c5ae984d6e260c8e7.png",
    "edge_key": "edges/edcd240e5a026c7be9d7c377ae32cbbbc9031f76.npz",
    "preview_key": "previews/813f1551c59c91540ee76cad199420dbb0c24ea3.png",
}


def _default_keys(plan: JobPlan) -> dict[str, str]:
    made = {name: getattr(plan, name)("f" * 64) for name in
            ("result_key", "stylized_key", "dial_key", "latest_key", "preview_key")}  # fmt: skip
    return {**made, "mask_key": str(plan.mask_key()), "edge_key": str(plan.edge_key())}


def test_the_default_requests_keys_are_pinned_and_none_is_a_scheme_2_key() -> None:
    plan = _plan()
    assert _default_keys(plan) == DEFAULT_KEYS
    assert not set(DEFAULT_KEYS.values()) & set(SCHEME_2_KEYS.values())
    named = plan.model_copy(update={"segmenter_model": SEGMENTER_DEFAULTS[plan.segmenter]})
    assert _default_keys(named) == DEFAULT_KEYS, "the default model named or not: one model"
