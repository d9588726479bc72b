"""One benchmark job: data -> test masks -> model -> (train) -> predict -> score -> run directory.

The run directory receives ``config.yaml`` (resolved), ``checkpoints/last.pt``,
``train_log.csv`` (+ TensorBoard events when installed), ``predictions/*.png``,
``ground_truth/*.png`` and ``test_masks/*.png`` (255 = hole; with ``eval.save_predictions``),
``per_image.csv``, ``metrics.json`` and ``grid.png``.  Data and mask problems are reported
before any model is built.

Test masks: mask ``i`` of test image ``i`` is ``masks.mask_for_index(family, seed, i, ...)``
of the configured mask family, or, with ``eval.masks=<dir>``, mask ``i`` of a frozen set
written by ``python -m masks.freeze`` (verified by ``masks.load_frozen``; its resolution must
be ``data.resolution`` and its count the number of test images).  The mask family then only
draws the training masks.

``eval.predictions=<dir>`` scores the PNGs in that folder (``<test image name>.png``) instead
of building, training and running a model: the same ground truth, masks and metrics, and
``metrics.json`` says that external predictions were scored.

``metrics.json`` carries everything the reports need: the protocol (data, resolution, test
and training masks, test images, training budget, metric convention and its definitions),
the environment (device, library versions), timings, and the overall and per-bucket means.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
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

from . import accel
from .data import (
    EMBEDDED_TEST,
    DataError,
    TrainSampler,
    embedded_sources,
    folder_sources,
    make_test_set,
    split_sources,
)
from .distributed import is_main_process
from .evaluate import (
    load_predictions,
    predict,
    save_grid,
    save_masks,
    save_pngs,
    score,
    summarize,
    write_json,
)
from .metrics import LPIPSScorer, check_convention
from .train import TrainOptions, train

__all__ = [
    "run",
    "record_failure",
    "resolve_device",
    "environment",
    "build_model",
    "model_kwargs",
    "protocol",
    "load_test_masks",
]

#: distributions whose versions every metrics.json records
VERSIONED = (
    "torch",
    "torchvision",
    "torchmetrics",
    "lpips",
    "numpy",
    "scikit-image",
    "opencv-python-headless",
    "pillow",
    "hydra-core",
)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name} requested but CUDA is not available")
    return device


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


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
        "versions": {d: v for d in VERSIONED if (v := _version(d)) is not None},
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


def model_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """The constructor arguments of the configured model (``None`` = code default)."""
    kwargs = OmegaConf.to_container(cfg.model.kwargs, resolve=True) or {}
    if accepts(cfg.model.name, "vgg"):
        kwargs["vgg"] = cfg.loss.vgg
    if cfg.model.fit_resolution and accepts(cfg.model.name, "image_size"):
        kwargs["image_size"] = int(cfg.data.resolution)
    return kwargs


def build_model(cfg: DictConfig) -> zoo.InpaintModel:
    """The configured model, initialised from ``cfg.seed``."""
    kwargs = model_kwargs(cfg)
    torch.manual_seed(cfg.seed)
    return zoo.create_model(cfg.model.name, **kwargs)


def _mask_batch(spec: dict, rng: np.random.Generator, n: int, size: int) -> torch.Tensor:
    arrays = [
        maskslib.make_mask(spec["family"], size, size, rng, **spec["params"]) for _ in range(n)
    ]
    return maskslib.to_tensor(arrays)


def _mask_spec(cfg: DictConfig) -> dict[str, Any]:
    return {
        "name": cfg.mask.name,
        "family": cfg.mask.family,
        "params": OmegaConf.to_container(cfg.mask.params, resolve=True) or {},
    }


def _test_mask_info(cfg: DictConfig) -> dict[str, Any]:
    """Where the test masks come from, as far as the config says (``load_test_masks`` adds
    the frozen set's manifest)."""
    if cfg.eval.masks is None:
        return {
            "source": "generated",
            **_mask_spec(cfg),
            "seed": int(cfg.seed),
            "rule": "masks.mask_for_index(family, seed, i, H, W, **params) for test image i",
        }
    folder = Path(cfg.eval.masks).expanduser()
    return {
        "source": "frozen",
        "name": f"frozen:{folder.name}",
        "path": str(folder.resolve()),
        "rule": "mask i of the frozen set (masks.load_frozen) for test image i",
    }


def load_test_masks(cfg: DictConfig, count: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """The ``count`` test masks (N x 1 x R x R) and a description of where they came from.

    ``eval.masks`` names a frozen set (verified on load); otherwise mask ``i`` is
    ``masks.mask_for_index(family, seed, i, R, R, **params)`` of the configured family.
    """
    res, seed = int(cfg.data.resolution), int(cfg.seed)
    if cfg.eval.masks is None:
        info = _test_mask_info(cfg)
        arrays = [
            maskslib.mask_for_index(info["family"], seed, i, res, res, **info["params"])
            for i in range(count)
        ]
        return maskslib.to_tensor(arrays), info
    folder = Path(cfg.eval.masks).expanduser()
    manifest = maskslib.read_manifest(folder)
    height, width = manifest["resolution"]
    if (height, width) != (res, res):
        raise DataError(
            f"eval.masks: the frozen set {folder} is {height}x{width} but data.resolution="
            f"{res}; freeze one at {res} (python -m masks.freeze --resolution {res} ...) or set "
            f"data.resolution={height}" + ("" if height == width else " (square sets only)")
        )
    if manifest["count"] != count:
        raise DataError(
            f"eval.masks: the frozen set {folder} holds {manifest['count']} masks but the test "
            f"set has {count} images (mask i belongs to test image i); freeze it with "
            f"--count {count}"
        )
    arrays = maskslib.load_frozen(folder)  # refuses a changed, missing or extra file
    manifest_bytes = (folder / maskslib.frozen.MANIFEST).read_bytes()
    info = {
        **_test_mask_info(cfg),
        "family": manifest["family"],
        "params": manifest["params"],
        "seed": manifest["seed"],
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
    }
    return maskslib.to_tensor(arrays), info


def protocol(cfg: DictConfig) -> dict[str, Any]:
    """The configured protocol (what the reports' headers state), from the config alone."""
    data = cfg.data
    external = cfg.eval.predictions is not None
    return {
        "data": {
            "name": data.name,
            "root": data.root,
            "test_root": data.test_root,
            "resolution": int(data.resolution),
            "test_policy": data.test_policy,
            "test_crops": int(data.test_crops),
            "test_fraction": float(data.test_fraction),
        },
        "train_masks": _mask_spec(cfg),
        "test_masks": _test_mask_info(cfg),
        "train": {"steps": int(cfg.train.steps), "batch_size": int(cfg.train.batch_size)},
        "convention": cfg.eval.convention,
        "seed": int(cfg.seed),
        "device": cfg.device,
        "loss_vgg": cfg.loss.vgg if not external and accepts(cfg.model.name, "vgg") else None,
        "external_predictions": external,
    }


def baseline_models(cfg: DictConfig) -> dict[str, zoo.InpaintModel]:
    """The ``eval.baselines`` models (untrained ones only), less the run's own model."""
    known = set(zoo.list_models())
    out = {}
    for name in cfg.eval.baselines:
        if name not in known:
            raise ValueError(f"eval.baselines: unknown model {name!r} (known: {sorted(known)})")
        if name == cfg.model.name and cfg.eval.predictions is None:
            continue
        out[name] = zoo.create_model(name)
        if out[name].trainable:
            raise ValueError(f"eval.baselines: {name!r} needs training; list untrained models")
    return out


def score_baselines(
    cfg: DictConfig,
    images: torch.Tensor,
    masks: torch.Tensor,
    names: list[str],
    lpips: LPIPSScorer,
    device: torch.device,
) -> dict[str, dict[str, Any]]:
    """Overall metrics of each ``eval.baselines`` model on the run's own test images and masks.

    Every metrics.json then carries its classical reference, scored by the same code on the
    same pixels (the model itself is skipped when it is one of the baselines).
    """
    out = {}
    for name, baseline in baseline_models(cfg).items():
        pred = predict(baseline, images, masks, int(cfg.eval.batch_size), device)
        frame = score(
            pred["composite"], images, masks, names, lpips, convention=cfg.eval.convention
        )
        out[name] = summarize(frame, cfg.eval.convention)["overall"]
    return out


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
    convention = cfg.eval.convention
    check_convention(convention)
    for section in (cfg.eval, cfg.train):  # speed options: a bad value fails before any work
        accel.validate(section, device)
    mask_spec = _mask_spec(cfg)
    external = cfg.eval.predictions is not None
    baseline_models(cfg)  # a wrong baseline name fails now, not after training

    # Data and masks first: every data error surfaces before a model is built.
    train_src, test_src = _sources(cfg)
    images, names = make_test_set(
        test_src, res, seed, cfg.data.test_policy, int(cfg.data.test_crops), cfg.data.skip_bad
    )
    masks, mask_info = load_test_masks(cfg, len(images))
    lpips = LPIPSScorer(cfg.eval.lpips, device)
    record: dict[str, Any] = {
        "status": "running",
        "model": cfg.model.name,
        "mask": mask_info["name"],
        "data": cfg.data.name,
        "resolution": res,
        "seed": seed,
        "protocol": {**protocol(cfg), "test_images": len(images), "test_masks": mask_info},
        "environment": environment(device),
    }

    if external:
        preds = load_predictions(cfg.eval.predictions, names, res, res)
        known = (1 - masks).expand_as(preds) > 0
        diff = ((preds - images).abs() * 127.5)[known]
        record.update(
            {
                "params": None,
                "model_kwargs": None,
                "loss_vgg": None,
                "train": None,
                "predictions": {
                    "external": True,
                    "folder": str(Path(cfg.eval.predictions).expanduser().resolve()),
                    # a composite keeps the known pixels: 0 here unless the files are raw outputs
                    "known_region_max_abs_diff_levels": float(diff.max()) if diff.numel() else 0.0,
                },
                "predict_seconds": None,
                "predict_seconds_per_image": None,
            }
        )
        pred = {"output": preds, "composite": preds}
    else:
        model = build_model(cfg)
        record.update(
            {
                "params": model.num_params(),
                "model_kwargs": model_kwargs(cfg),
                "loss_vgg": record["protocol"]["loss_vgg"],
                "predictions": {"external": False},
            }
        )
        if model.trainable and cfg.train.steps > 0:
            sampler = TrainSampler(train_src, res, seed, cfg.data.skip_bad)
            bs = int(cfg.train.batch_size)

            def batches(step: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
                rng = np.random.default_rng([seed, 3, step, k])
                return sampler.batch(step, bs, k), _mask_batch(mask_spec, rng, bs, res)

            options = TrainOptions(**OmegaConf.to_container(cfg.train, resolve=True))
            extra = {"model_name": cfg.model.name, "config": OmegaConf.to_container(cfg)}
            record["train"] = train(model, batches, options, run_dir, device, extra)
            if not is_main_process():  # DDP: rank 0 alone predicts, scores, writes
                record["status"] = "trained (DDP rank > 0)"
                return record
        else:
            record["train"] = None
        t_pred = time.perf_counter()
        pred = predict(
            model,
            images,
            masks,
            int(cfg.eval.batch_size),
            device,
            amp=cfg.eval.amp,
            channels_last=cfg.eval.channels_last,
            compile=cfg.eval.compile,
            compile_mode=cfg.eval.compile_mode,
        )
        record["predict_seconds"] = time.perf_counter() - t_pred
        record["predict_seconds_per_image"] = record["predict_seconds"] / len(images)

    frame = score(pred["composite"], images, masks, names, lpips, convention=convention)
    frame.to_csv(run_dir / "per_image.csv", index=False)
    if cfg.eval.save_predictions:
        if not external:
            save_pngs(run_dir / "predictions", pred["composite"], names)
        save_pngs(run_dir / "ground_truth", images, names)
        save_masks(run_dir / "test_masks", masks, names)
    save_grid(
        run_dir / "grid.png",
        images,
        masks,
        pred["output"],
        pred["composite"],
        int(cfg.eval.grid_rows),
    )
    record.update(summarize(frame, convention))
    record["baselines"] = score_baselines(cfg, images, masks, names, lpips, device)
    record["lpips"] = {"available": lpips.available, "reason": lpips.reason}
    record["status"] = "ok"
    record["seconds"] = time.perf_counter() - t_start
    write_json(run_dir / "metrics.json", record)
    return record


def record_failure(run_dir: str | os.PathLike, cfg: DictConfig, exc: BaseException) -> None:
    """Leave a ``metrics.json`` with ``status: failed`` and the error (for sweeps)."""
    try:
        proto: dict[str, Any] | None = protocol(cfg)
    except Exception:  # noqa: BLE001 - the failure record must be written regardless
        proto = None
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_json(
        Path(run_dir) / "metrics.json",
        {
            "status": "failed",
            "model": cfg.model.name,
            "mask": cfg.mask.name,
            "data": cfg.data.name,
            "resolution": int(cfg.data.resolution),
            "seed": int(cfg.seed),
            "protocol": proto,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        },
    )
