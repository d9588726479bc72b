"""Predict, score and summarise: the evaluation half of a benchmark run.

Prediction and scoring are separate steps: :func:`predict` runs a model, :func:`score`
compares any composites with the ground truth under a metric convention (so saved
predictions, or an official repository's outputs read by :func:`load_predictions`, go
through the same code).  :func:`summarize` averages per image, overall and per hole-ratio
bucket.  :func:`save_pngs` / :func:`save_masks` write the lossless PNGs a run keeps
(predictions, ground truth, test masks) for re-scoring and for the reports' image grids.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

import masks as maskslib

from . import accel
from .data import DataError, decode_workers, load_image
from .metrics import METRICS, LPIPSScorer, aggregate, check_convention, image_metrics, quantize

__all__ = [
    "predict",
    "score",
    "summarize",
    "load_predictions",
    "save_pngs",
    "save_masks",
    "save_grid",
    "write_json",
]


def predict(
    model: torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_size: int,
    device: torch.device,
    *,
    amp: str | bool = "none",
    channels_last: bool = False,
    compile: bool = False,  # torch.compile the generator forward (eval.compile)
    compile_mode: str = "default",
) -> dict[str, torch.Tensor]:
    """``output`` and ``composite`` for every test image (CPU float32 tensors in [-1, 1]).

    The forward runs under ``torch.inference_mode`` (no autograd graph is recorded) with
    the speed options of :mod:`benchmarks.accel`: ``amp`` (``none`` | ``bf16`` | ``fp16``
    autocast), ``channels_last`` (model and inputs) and ``compile`` (``compile_mode``); the
    model is restored afterwards.  The returned tensors are ordinary tensors, made outside
    inference mode, so callers may use them in autograd.
    """
    device = torch.device(device)
    amp = accel.resolve_amp(amp, device)
    model.to(device).eval()
    outs: dict[str, list[torch.Tensor]] = {"output": [], "composite": []}
    with (
        accel.accelerated(
            model, channels_last=channels_last, compile=compile, compile_mode=compile_mode
        ),
        torch.inference_mode(),
    ):
        for i in range(0, len(images), batch_size):
            image = accel.to_memory_format(images[i : i + batch_size].to(device), channels_last)
            mask = accel.to_memory_format(masks[i : i + batch_size].to(device), channels_last)
            with accel.autocast_context(device, amp):
                res = model(image, mask)
            for key in outs:
                outs[key].append(res[key].float().clamp(-1, 1).cpu())
    # outside inference mode, cat makes normal (autograd-usable) tensors; it keeps the memory
    # layout of the inputs, on which float reductions in scoring depend in the last bit
    return {k: torch.cat(v) for k, v in outs.items()}


def score(
    composite: torch.Tensor,
    target: torch.Tensor,
    masks: torch.Tensor,
    names: list[str],
    lpips: LPIPSScorer | None = None,
    batch_size: int = 32,
    convention: str = "inpaintbench",
) -> pd.DataFrame:
    """One row per image: name, hole ratio, bucket and every metric under ``convention``."""
    check_convention(convention)
    if not len(composite) == len(target) == len(masks) == len(names):
        raise ValueError(
            f"{len(composite)} predictions, {len(target)} targets, {len(masks)} masks and "
            f"{len(names)} names: they must correspond one to one"
        )
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in METRICS}
    for i in range(0, len(target), batch_size):
        sl = slice(i, i + batch_size)
        vals = image_metrics(composite[sl], target[sl], masks[sl], convention)
        vals["lpips"] = (
            lpips(composite[sl], target[sl])
            if lpips is not None
            else torch.full((len(target[sl]),), math.nan, dtype=torch.float64)
        )
        for m in METRICS:
            parts[m].append(vals[m])
    ratio = masks.flatten(1).double().mean(dim=1).numpy()
    frame = pd.DataFrame({"name": names, "hole_ratio": ratio})
    frame["bucket"] = [maskslib.bucket_of(float(r)) or "other" for r in ratio]
    for m in METRICS:
        frame[m] = torch.cat(parts[m]).numpy()
    return frame


def summarize(frame: pd.DataFrame, convention: str = "inpaintbench") -> dict[str, Any]:
    """Overall means and per-bucket means (NaN-aware, with counts), and the definitions."""
    overall = aggregate({m: frame[m].to_numpy() for m in METRICS})
    overall["hole_ratio"] = float(frame["hole_ratio"].mean())
    buckets = {}
    for bucket, sub in frame.groupby("bucket", sort=True):
        buckets[bucket] = aggregate({m: sub[m].to_numpy() for m in METRICS})
    return {"overall": overall, "buckets": buckets, "convention": check_convention(convention)}


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """3 x H x W in [-1, 1] -> H x W x 3 uint8 (the quantisation the metrics use)."""
    return (quantize(x) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_pngs(folder: str | os.PathLike, images: torch.Tensor, names: list[str]) -> None:
    """Save each image losslessly as ``<name>.png`` (8-bit RGB, rounded)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for img, name in zip(images, names):
        Image.fromarray(_to_uint8(img)).save(folder / f"{name}.png")


def save_masks(folder: str | os.PathLike, masks: torch.Tensor, names: list[str]) -> None:
    """Save each N x 1 x H x W mask as ``<name>.png``: 8-bit grayscale, 255 = hole."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for m, name in zip(masks, names):
        Image.fromarray((m[0].numpy() > 0.5).astype(np.uint8) * 255).save(folder / f"{name}.png")


def load_predictions(
    folder: str | os.PathLike,
    names: list[str],
    height: int,
    width: int,
    workers: int | None = None,
) -> torch.Tensor:
    """Read ``<folder>/<name>.png`` for every test image name, as N x 3 x H x W in [-1, 1].

    The layout a run's ``predictions/`` has (and what an official repository's outputs must
    be renamed to).  Missing files and wrong sizes are ``DataError`` naming the files;
    grayscale or RGBA files are read as RGB (``benchmarks.data.load_image``), decoded on
    ``workers`` threads (default :func:`benchmarks.data.decode_workers`).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"eval.predictions: {folder} is not a folder")
    missing = [n for n in names if not (folder / f"{n}.png").is_file()]
    if missing:
        raise DataError(
            f"eval.predictions: {len(missing)} of {len(names)} prediction files are missing "
            f"in {folder}, e.g. {', '.join(m + '.png' for m in missing[:3])} (one PNG per test "
            f"image, named <test image name>.png as a run's predictions/ folder)"
        )
    workers = workers or decode_workers()
    with ThreadPoolExecutor(workers, thread_name_prefix="load-predictions") as pool:
        arrays = list(pool.map(lambda n: load_image(folder / f"{n}.png"), names))  # PIL decodes
    for name, arr in zip(names, arrays):  # without the GIL: the files decode in parallel
        if arr.shape[:2] != (height, width):
            raise DataError(
                f"eval.predictions: {folder / (name + '.png')} is {arr.shape[0]}x{arr.shape[1]} "
                f"(HxW) but the test images are {height}x{width} (data.resolution)"
            )
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # N x H x W x 3 -> N x 3 x H x W
    return x.float() / 127.5 - 1.0


def save_grid(
    path: str | os.PathLike,
    image: torch.Tensor,
    mask: torch.Tensor,
    output: torch.Tensor,
    composite: torch.Tensor,
    rows: int = 8,
) -> None:
    """A PNG with one row per test image: masked input | raw output | composite | truth."""
    masked = image * (1 - mask) + mask  # hole shown in white
    n = min(rows, len(image))
    tiles = [
        np.concatenate([_to_uint8(t[i]) for t in (masked, output, composite, image)], axis=1)
        for i in range(n)
    ]
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write JSON atomically (NaN written as null)."""
    path = Path(path)

    def clean(o: Any) -> Any:
        if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, (np.floating, np.integer)):
            return clean(o.item())
        return o

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(clean(payload), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
