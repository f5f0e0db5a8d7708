"""The one Settings object: environment variables BACKDROP_*, nested with __.

Example: BACKDROP_MODELS_DIR=../shared/models, BACKDROP_INTAKE__MAX_SIDE=384.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.pipeline.style_params import StyleParams


class IntakeSettings(BaseModel):
    max_bytes: int = Field(25 * 1024 * 1024, ge=1)
    # Checked from the header, before any pixel is decoded (decompression bombs).
    max_pixels: int = Field(50_000_000, ge=1)
    min_side: int = Field(32, ge=1)
    # Longest side of the working resolution: style optimization cost grows
    # with the pixel count, so this caps a job's cost.
    max_side: int = Field(512, ge=32, le=4096)


class SegmentationSettings(BaseModel):
    # tflite: the quantized DeepLab (CPU workers, tests); frozen_graph: the
    # model-zoo float graph (GPU workers).
    backend: Literal["tflite", "frozen_graph"] = "tflite"
    tflite_model: str = "deeplab-mnv2-tflite"
    frozen_graph_model: str = "deeplab-mnv2-frozen"
    # Below this share of the photo the subject counts as absent.
    min_subject_fraction: float = Field(0.002, ge=0, le=1)
    threads: int = Field(0, ge=0)  # 0: let TensorFlow choose


class CompositeSettings(BaseModel):
    # Radii are in pixels of a 512 px photo and scale with the photo's size.
    # Guided filter: eps in the units of the uint8 guide (0..255**2): larger
    # eps smooths more, smaller follows the photo's edges more closely.
    guided_radius: int = Field(6, ge=1, le=64)
    guided_eps: float = Field(0.001 * 255**2, gt=0)
    # Disk radius of the portrait blur.
    blur_radius: int = Field(14, ge=1, le=100)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKDROP_", env_nested_delimiter="__", extra="ignore"
    )

    models_dir: Path = Path.home() / ".cache" / "backdrop" / "models"
    # Samples for the demo; when absent they are fetched from upstream.
    samples_dir: Path = Path.home() / ".cache" / "backdrop" / "samples"
    allow_download: bool = True
    intake: IntakeSettings = IntakeSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    style: StyleParams = StyleParams()
    composite: CompositeSettings = CompositeSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests build their own Settings instead."""
    return Settings()
