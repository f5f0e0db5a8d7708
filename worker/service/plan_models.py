"""The models a job's plan names, loaded as it names them. A step never falls
back on its own worker's settings: a worker configured otherwise would store
another model's picture under the plan's key."""

from worker.pipeline.features import FeatureNet
from worker.pipeline.segmentation import Segmenter
from worker.runtime.model_cache import get_feature_net, get_judge_net, get_segmenter
from worker.runtime.settings import SEGMENTER_DEFAULTS, Settings
from worker.service.plan import JobPlan


def plan_segmenter(plan: JobPlan, settings: Settings) -> Segmenter:
    model = plan.segmenter_model or SEGMENTER_DEFAULTS[plan.segmenter]
    return get_segmenter(settings, plan.segmenter, model)


def plan_feature_net(plan: JobPlan, settings: Settings) -> FeatureNet:
    """The optimization's VGG: the plan's layers, network and precision."""
    return get_feature_net(plan.params, settings, plan.precision, plan.feature_net)


def plan_judge_net(plan: JobPlan, settings: Settings) -> FeatureNet:
    return get_judge_net(settings, plan.feature_net)
