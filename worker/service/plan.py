"""The plan: a request resolved once, by the job's first step, against that
worker's settings, and stored with the job. Every later step, on any pool,
reads it and never its own settings, so a result's key names what made it."""

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobRequest, StyleRef
from jobstore.records import CorruptRecord, JobRecord, RecordGone
from worker.pipeline.features import BUNDLED_NETWORK, NetworkName, preferred_network
from worker.pipeline.intake import IntakeLimits
from worker.pipeline.judge import JUDGE_LAYERS
from worker.pipeline.lbfgs import LBFGS_VERSION
from worker.pipeline.matting import MATTE_VERSION
from worker.pipeline.paint_full import PAINT_VERSION, PaintParams
from worker.pipeline.preview import PREVIEWER_NAME
from worker.pipeline.stages import CompositeParams, Mode, mode_of
from worker.pipeline.strength_dial import DIAL_ITERATIONS, DIAL_SIDE, DIAL_VERSION, ladder_recipe
from worker.pipeline.style_params import ADAM_AFTER, POLISH_RATE, StyleParams, preview_mix
from worker.runtime.settings import SEGMENTER_DEFAULTS, Precision, Settings
from worker.service import keys
from worker.service.plan_options import check_limits, style_params_for

ADDED_FIELDS = ("precision", "segmenter_model", "feature_net")  # after plan readers shipped


class JobPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1  # bump with any change of a field's meaning
    photo_key: str
    photo_sha: str
    mode: str
    subjects: list[str]
    styles: list[StyleRef]
    subject_style: StyleRef | None = None  # two-painting modes: the subject's painting
    outputs: list[list[int]]  # which styles make each output
    size: int  # longest side of the working resolution
    quality: str
    output: Literal["working", "original"] = "working"
    params: StyleParams
    # quality high with output original: the stylized image is painted on at
    # up to paint.max_side px (worker.pipeline.paint_full); None: everywhere else.
    paint: PaintParams | None = None
    composite: CompositeParams
    segmenter: str
    min_subject_fraction: float
    limits: IntakeLimits
    # The strength dial (ComputeSettings.dial): calibrated per output, or fixed.
    dial: Literal["calibrated", "fixed"] = "calibrated"
    # The VGG's precision as the first step's worker had it: every step uses it,
    # whatever its own setting, so one key never names pictures made in two
    # (bfloat16's ended 0.1-1.5% above float32's loss: benchmarks.cpu_precision).
    precision: Precision = "float32"
    # The models, as that worker had them, for the same reason: every step loads
    # these. The segmenter's model is None for its backend's default (stored
    # plans stay readable by older workers); keys name it all the same.
    segmenter_model: str | None = Field(None, max_length=64)  # a registry name
    feature_net: NetworkName = BUNDLED_NETWORK

    @classmethod
    def resolve(cls, request: JobRequest, settings: Settings, photo_sha: str) -> "JobPlan":
        mode = mode_of(request.mode)  # an unknown mode is refused here, before any work
        check_limits(request, settings)
        opts = request.options
        size = min(opts.size or settings.intake.max_side, settings.intake.max_side)
        paints = mode.stylizes and (opts.quality, opts.output) == ("high", "original")
        optimizes = mode.stylizes and opts.quality != "preview"  # with the VGG
        return cls(
            photo_key=request.photo_key, photo_sha=photo_sha, mode=request.mode,
            subjects=request.subjects, styles=request.styles, outputs=request.outputs(),
            subject_style=request.subject_style, size=size, quality=opts.quality,
            params=style_params_for(opts, settings), paint=settings.paint_full if paints else None,
            composite=settings.composite, segmenter=settings.segmentation.backend,
            min_subject_fraction=settings.segmentation.min_subject_fraction, output=opts.output,
            limits=settings.intake_limits(size), dial=settings.compute.dial,
            precision=settings.compute.precision,
            # Named only where used: an older worker refuses the field (store_plan).
            segmenter_model=settings.segmentation.keyed_model() if mode.segments else None,
            feature_net=preferred_network(settings.models_dir) if optimizes else BUNDLED_NETWORK,
        )  # fmt: skip

    @property
    def stage(self) -> Mode:
        return mode_of(self.mode)

    @property
    def output_count(self) -> int:
        return len(self.outputs)

    def check_output(self, index: Any) -> int:
        """A message's output index, checked against the plan (never trusted)."""
        if not isinstance(index, int) or isinstance(index, bool):
            raise BackdropError(ErrorCode.INTERNAL, "a task message has no valid output index")
        if not 0 <= index < self.output_count:
            raise BackdropError(ErrorCode.INTERNAL, f"output {index} is not in the job's plan")
        return index

    def params_key(self) -> dict[str, Any]:
        """What shaped the stylized image: the optimization's parameters, or for
        preview quality the feed-forward network and its strength mix."""
        if self.quality == "preview":
            return {"quality": "preview", **self.preview_params()}
        key = {"quality": self.quality, **self.params.model_dump(mode="json"),
               "dial": self.dial_recipe()}  # fmt: skip
        if self.paint is not None:  # absent otherwise: every other job keeps its keys
            key["paint"] = {**self.paint.model_dump(mode="json"), "version": PAINT_VERSION}
        if self.params.optimizer == "lbfgs_adam":  # the hand-over's constants shape it
            key["polish"] = {"adam_after": ADAM_AFTER, "rate": POLISH_RATE}
        if self.params.init == "preview":  # it starts from the feed-forward network's picture
            key["preview"] = self.preview_params()
        return {**key, **self._network_key()}

    def _network_key(self) -> dict[str, Any]:
        """The VGG's precision and network (named at their defaults too: keys.KEY_SCHEME 3);
        the L-BFGS's version."""
        key: dict[str, Any] = {"precision": self.precision, "feature_net": self.feature_net}
        if self.params.optimizer != "adam":
            key["lbfgs"] = LBFGS_VERSION
        return key

    @property
    def segmenter_id(self) -> str:
        """The segmenter as the mask's key names it: its backend and its model,
        the backend's default named too (keys.KEY_SCHEME 3)."""
        model = self.segmenter_model or SEGMENTER_DEFAULTS.get(self.segmenter)
        return f"{self.segmenter}:{model}"

    def dial_recipe(self) -> dict[str, Any]:
        """What shaped an output's strength gain besides its photo and paintings."""
        if self.dial == "fixed":
            return {"dial": "fixed"}
        return {"dial": "calibrated", "version": DIAL_VERSION, "side": DIAL_SIDE,
                "iterations": DIAL_ITERATIONS, "judge": list(JUDGE_LAYERS)}  # fmt: skip

    def dial_key(self, style_sha: str) -> str:
        """One output's calibrated dial: shared by every strength of the same
        photo, paintings and the ladder's own recipe (the strength only reads
        it; recipes that differ only past the ladder's iterations share it),
        except where the warm start's preview depends on the strength."""
        recipe = ladder_recipe(self.params).model_dump(mode="json", exclude={"strength"})
        if self.params.init == "preview":
            recipe["preview"] = self.preview_params()
        shaping = {"size": self.size, "limits": asdict(self.limits), "params": recipe,
                   "dial": self.dial_recipe(), **self._network_key()}  # fmt: skip
        if self.stage.two_paintings:
            shaping["scene"] = self._scene()
        return keys.dial_key(self.photo_sha, style_sha, shaping)

    def preview_params(self) -> dict[str, Any]:
        return {"previewer": PREVIEWER_NAME, "mix": preview_mix(self.params.strength)}

    def _scene(self) -> dict[str, Any]:
        """What shapes every picture of an output besides its paintings and its
        stylization: the working size and decode limits, the mask (subjects,
        segmenter) and how the subject is put back (mode, compositing)."""
        return {
            "size": self.size, "limits": asdict(self.limits), "mode": self.mode,
            "subjects": sorted(self.subjects), "segmenter": self.segmenter_id,
            "composite": self.composite_key(),
        }  # fmt: skip

    def composite_key(self) -> dict[str, Any]:
        """The compositing parameters and the matte's version: one setting
        makes another edge when the matting itself changes."""
        return {**self.composite.model_dump(mode="json"), "matte": MATTE_VERSION}

    # Deterministic keys: a hash of the input bytes and of the plan really used.
    def working_photo_key(self) -> str:
        return keys.working_photo_key(self.photo_sha, self.size)

    def paint_photo_key(self) -> str:
        """The photo at the paint size: to_working_size at paint.max_side."""
        assert self.paint is not None
        return keys.working_photo_key(self.photo_sha, self.paint.max_side)

    def mask_key(self) -> str | None:
        key = keys.mask_key(self.photo_sha, self.subjects, self.size, self.segmenter_id)
        return key if self.stage.segments else None

    def edge_key(self) -> str | None:
        mask = self.mask_key()
        return None if mask is None else keys.edge_key(mask, self.composite_key())

    def stylized_key(self, style_sha: str) -> str:
        # One painting's stylized image is shared by the modes (background,
        # subject, full); two paintings are laid out by the mask, so the scene
        # shapes it too.
        shaping = {"size": self.size, "limits": asdict(self.limits),
                   "params": self.params_key()}  # fmt: skip
        if self.stage.two_paintings:
            shaping["scene"] = self._scene()
        return keys.stylized_key(self.photo_sha, style_sha, shaping)

    def preview_key(self, style_sha: str) -> str:
        shaping = {**self._scene(), "preview": self.preview_params()}
        if self.quick_preview_edge:  # absent otherwise: those previews keep their keys
            shaping["preview_edge"] = "guided"
        return keys.preview_key(self.photo_sha, style_sha, shaping)

    @property
    def quick_preview_edge(self) -> bool:
        """The instant preview goes in with the guided filter's edge, not the
        matte: the preview is the time until a person sees something, and the
        matte took 0.9 of its 1.05 s at 512 px (benchmarks.preview_latency).
        The next picture that needs the matte makes it. Two-painting modes
        have it already (their regions are made from it) and keep it."""
        stage = self.stage
        return self.composite.edge == "matting" and stage.segments and not stage.two_paintings

    def latest_key(self, style_sha: str) -> str:
        """One object per output, overwritten as the optimization goes on."""
        return keys.latest_key(self.photo_sha, style_sha,
                               {**self._scene(), "params": self.params_key()})  # fmt: skip

    def result_key(self, style_sha: str | None) -> str:
        stylizes = self.stage.stylizes
        # Strength 0 is the photo itself since 2026-12-05: apart from the composites before.
        back = {"photo_back": 1} if stylizes and self.params.strength == 0 else {}
        shaping = {**self._scene(), "output": self.output, **back,
                   "params": self.params_key() if stylizes else {}}  # fmt: skip
        return keys.result_key(self.photo_sha, style_sha if stylizes else None, shaping)


def store_plan(record: JobRecord, plan: JobPlan) -> JobPlan:
    """The first step to get here stores its plan; a redelivered or restarted
    step keeps that one, so all outputs of a job follow one plan."""
    # Fields added since at their defaults are stored as before them, so an older
    # worker (extra="forbid") still reads the plan mid-update; another value it
    # refuses: the safe outcome.
    skip = {f for f in ADDED_FIELDS if getattr(plan, f) == JobPlan.model_fields[f].default}
    if record.set_once("plan", plan.model_dump_json(exclude=skip)) is None:
        raise RecordGone(f"no job {record.job_id}")
    return load_plan(record)


def load_plan(record: JobRecord) -> JobPlan:
    raw = record.field("plan")
    if raw is None:
        if not record.exists():
            raise RecordGone(f"no job {record.job_id}")
        raise CorruptRecord("the job has no stored plan")
    try:
        return JobPlan.model_validate_json(raw)
    except ValidationError:
        raise CorruptRecord("the job record's field 'plan' is invalid") from None
