"""One benchmark job: data -> model -> (train) -> predict -> score -> run directory.

The run directory receives ``config.yaml`` (resolved), ``checkpoints/last.pt``,
``train_log.csv`` (+ TensorBoard events when installed), ``predictions/*.png``,
``per_image.csv``, ``metrics.json`` and ``grid.png``.  Data problems are reported before any
model is built.
"""

from __future__ import annotations

import os
import platform
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import masks as maskslib
import zoo
from zoo._registry import accepts

from .data import (
    EMBEDDED_TEST,
    TrainSampler,
    embedded_sources,
    folder_sources,
    make_test_set,
    split_sources,
)
from .evaluate import predict, save_grid, save_pngs, score, summarize, write_json
from .metrics import LPIPSScorer
from .train import TrainOptions, train

__all__ = ["run", "resolve_device", "environment", "build_model"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name} requested but CUDA is not available")
    return device


def environment(device: torch.device) -> dict[str, Any]:
    """Where the numbers came from: device, library versions, threads."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        name = f"CPU: {name} ({os.cpu_count()} cores)"
    return {
        "device": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def _sources(cfg: DictConfig):
    data = cfg.data
    if data.name == "embedded":
        return split_sources(embedded_sources(), EMBEDDED_TEST, 0.0)
    if data.root is None:
        raise ValueError("data=folder needs data.root=<folder or .flist>")
    sources = folder_sources(data.root)
    if data.test_root is not None:
        return sources, folder_sources(data.test_root)
    return split_sources(sources, None, float(data.test_fraction))


def build_model(cfg: DictConfig) -> zoo.InpaintModel:
    """The configured model, initialised from ``cfg.seed``."""
    kwargs = OmegaConf.to_container(cfg.model.kwargs, resolve=True) or {}
    if accepts(cfg.model.name, "vgg"):
        kwargs["vgg"] = cfg.loss.vgg
    torch.manual_seed(cfg.seed)
    return zoo.create_model(cfg.model.name, **kwargs)


def _mask_batch(spec: dict, rng: np.random.Generator, n: int, size: int) -> torch.Tensor:
    arrays = [
        maskslib.make_mask(spec["family"], size, size, rng, **spec["params"]) for _ in range(n)
    ]
    return maskslib.to_tensor(arrays)


def run(cfg: DictConfig, run_dir: str | os.PathLike) -> dict[str, Any]:
    """Run the job described by ``cfg`` into ``run_dir``; return the metrics record."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    # Flush denormal floats to zero on the CPU (as TensorFlow's CPU kernels do): GAN training
    # on real images produces them, and they made a DeepFill v2 step ~10x slower here.
    torch.set_flush_denormal(True)
    seed, res = int(cfg.seed), int(cfg.data.resolution)
    mask_spec = {
        "family": cfg.mask.family,
        "params": OmegaConf.to_container(cfg.mask.params, resolve=True) or {},
    }

    # Data first: every data error surfaces before a model is built.
    train_src, test_src = _sources(cfg)
    images, names = make_test_set(
        test_src, res, seed, cfg.data.test_policy, int(cfg.data.test_crops), cfg.data.skip_bad
    )
    test_masks = maskslib.to_tensor(
        [
            maskslib.mask_for_index(mask_spec["family"], seed, i, res, res, **mask_spec["params"])
            for i in range(len(images))
        ]
    )
    lpips = LPIPSScorer(cfg.eval.lpips, device)

    model = build_model(cfg)
    record: dict[str, Any] = {
        "status": "running",
        "model": cfg.model.name,
        "mask": cfg.mask.name,
        "data": cfg.data.name,
        "resolution": res,
        "seed": seed,
        "params": model.num_params(),
        "loss_vgg": cfg.loss.vgg if accepts(cfg.model.name, "vgg") else None,
        "environment": environment(device),
    }
    if model.trainable and cfg.train.steps > 0:
        sampler = TrainSampler(train_src, res, seed, cfg.data.skip_bad)
        bs = int(cfg.train.batch_size)

        def batches(step: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
            rng = np.random.default_rng([seed, 3, step, k])
            return sampler.batch(step, bs, k), _mask_batch(mask_spec, rng, bs, res)

        options = TrainOptions(**OmegaConf.to_container(cfg.train, resolve=True))
        extra = {"model_name": cfg.model.name, "config": OmegaConf.to_container(cfg)}
        record["train"] = train(model, batches, options, run_dir, device, extra)
    else:
        record["train"] = None

    t_pred = time.perf_counter()
    pred = predict(model, images, test_masks, int(cfg.eval.batch_size), device)
    record["predict_seconds"] = time.perf_counter() - t_pred
    frame = score(pred["composite"], images, test_masks, names, lpips)
    frame.to_csv(run_dir / "per_image.csv", index=False)
    if cfg.eval.save_predictions:
        save_pngs(run_dir / "predictions", pred["composite"], names)
    save_grid(
        run_dir / "grid.png",
        images,
        test_masks,
        pred["output"],
        pred["composite"],
        int(cfg.eval.grid_rows),
    )
    record.update(summarize(frame))
    record["lpips"] = {"available": lpips.available, "reason": lpips.reason}
    record["status"] = "ok"
    record["seconds"] = time.perf_counter() - t_start
    write_json(run_dir / "metrics.json", record)
    return record


def record_failure(run_dir: str | os.PathLike, cfg: DictConfig, exc: BaseException) -> None:
    """Leave a ``metrics.json`` with ``status: failed`` and the error (for sweeps)."""
    write_json(
        Path(run_dir) / "metrics.json",
        {
            "status": "failed",
            "model": cfg.model.name,
            "mask": cfg.mask.name,
            "data": cfg.data.name,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        },
    )
