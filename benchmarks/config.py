"""Typed schema of the benchmark configuration (Hydra structured config).

``conf/bench.yaml`` starts its defaults list with ``bench_schema``, so every value composed
from the YAML groups and the command line is checked against these types: ``train.steps=abc``
or ``data.skip_bad=maybe`` is an error before anything runs, as is any key not declared here.
Model keyword arguments (``model.kwargs``) and mask parameters (``mask.params``) are free-form
here; the model entrypoint and the mask family check them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

__all__ = ["BenchConfig", "register_configs"]


@dataclass
class ModelConfig:
    name: str = "???"
    kwargs: dict[str, Any] = field(default_factory=dict)
    # true: models whose discriminators are built for one image side (an ``image_size``
    # argument: GLCIC, DeepFill v1, GMCNN) are built for data.resolution instead
    fit_resolution: bool = False


@dataclass
class DataConfig:
    name: str = "???"
    root: Optional[str] = None  # noqa: UP045 - OmegaConf needs typing.Optional
    test_root: Optional[str] = None  # noqa: UP045
    resolution: int = 128
    test_policy: str = "crops"
    test_crops: int = 8
    test_fraction: float = 0.0
    skip_bad: bool = False


@dataclass
class MaskConfig:
    name: str = "???"
    family: str = "???"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    steps: int = 300
    batch_size: int = 4
    checkpoint_every: int = 100
    log_every: int = 10
    resume: bool = False
    # none | bf16 | fp16 (CUDA): autocast (benchmarks/accel.py); true/false = bf16/none
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False  # torch.compile the generator forward
    compile_mode: str = "default"
    nan_policy: str = "stop"
    max_skipped: int = 10
    progress: bool = True
    ddp: bool = False  # data-parallel under torchrun (benchmarks/distributed.py)
    lr_schedule: str = "constant"  # constant | cosine (benchmarks.train.lr_factor)


@dataclass
class EvalConfig:
    batch_size: int = 8
    lpips: str = "auto"
    save_predictions: bool = True
    grid_rows: int = 8
    convention: str = "inpaintbench"  # inpaintbench | mmagic | edgeconnect (benchmarks/metrics.py)
    masks: Optional[str] = None  # noqa: UP045 - a frozen mask set (python -m masks.freeze)
    predictions: Optional[str] = None  # noqa: UP045 - score these PNGs instead of a model
    # classical baselines scored on the same test images and masks (metrics.json "baselines")
    baselines: list[str] = field(default_factory=lambda: ["mean_fill"])
    # speed options of prediction (benchmarks/accel.py); baselines always run plain
    amp: str = "none"  # none | bf16 | fp16 (CUDA)
    channels_last: bool = False
    compile: bool = False  # torch.compile the generator forward
    compile_mode: str = "default"


@dataclass
class LossConfig:
    vgg: str = "imagenet"


@dataclass
class BenchConfig:
    seed: int = 0
    device: str = "auto"
    loss: LossConfig = field(default_factory=LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    experiment: Optional[Any] = None  # noqa: UP045


def register_configs() -> None:
    """Make ``bench_schema`` known to Hydra (idempotent)."""
    ConfigStore.instance().store(name="bench_schema", node=BenchConfig)
